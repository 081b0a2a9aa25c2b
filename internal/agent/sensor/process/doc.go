// Package process is the agent's process sensor: it reports every program
// execution on the host as one Sigma process_creation event (product
// "linux"), including processes that live for a millisecond, because the
// kernel itself records each execve before the process can exit.
//
// # Mechanism
//
// On Linux the sensor uses the kernel audit subsystem over netlink
// (NETLINK_AUDIT), with github.com/elastic/go-libaudit/v2 for the protocol
// (status, rules) and a socket of our own underneath it (a receive timeout
// so Run can stop, a large receive buffer). At start it probes the kernel
// and Status reports what it chose or why it could not run:
//
//   - "audit-netlink unicast": no audit daemon holds the audit PID, so the
//     sensor becomes the audit daemon (AUDIT_SET pid). The kernel then
//     queues records for it and blocks, rather than drops, when the socket
//     is full. The sensor raises the backlog limit and backlog_wait_time
//     (never lowers them) so bursts wait in the kernel instead of being
//     lost, and enables auditing if it was off.
//   - "audit-netlink multicast": another live process (auditd, go-audit …)
//     holds the audit PID. The sensor leaves that daemon's settings alone
//     and joins the read-only multicast group AUDIT_NLGRP_READLOG. The kernel
//     drops multicast records when our socket buffer is full; each such
//     overrun (ENOBUFS) is counted in Status.Lost.
//   - "unavailable": no audit in the kernel, no privilege
//     (CAP_AUDIT_CONTROL, CAP_AUDIT_READ), a container's network namespace,
//     or locked audit rules (enabled=2). Run returns an error wrapping
//     ErrUnavailable and Status.Err says why.
//
// In both working modes the sensor installs
//
//	-a always,exit -F arch=b64 -S execve,execveat -k vigil_exec_<agent>
//
// plus the b32 equivalent on 64-bit machines with 32-bit compatibility
// (amd64, arm64), and removes exactly those rules when Run ends, then
// restores the settings it changed and releases the audit PID. The key is
// the agent's own (Options.RuleKey, RuleKeyFor the agent id), so two agents
// on one host (a service and `vigil up`'s in-process agent) never remove
// each other's rule: the kernel reports each exec once, under the first
// matching rule's key, and the sensor takes exec records whatever their
// key. A rule with our key found at start was left by a run of this agent
// that did not stop cleanly: it is adopted and removed at the end. Auditing
// that the sensor turned on is turned off again only if no audit rule is
// left (another agent may still be using it). The kernel's
// own lost counter (audit status "lost") is read every Options.StatusEvery;
// increases are added to Status.Lost and logged.
//
// # Records to events
//
// Each netlink message becomes the text line "type=NAME msg=audit(…): …"
// and goes through internal/hunt/auditd: ParseRecord decodes it (hex
// arguments, quoting) and a Coalescer groups the SYSCALL, EXECVE, CWD and
// EOE records of one serial into one event (PATH and PROCTITLE records are
// skipped unparsed: SYSCALL exe= and EXECVE say the same). The kernel splits a
// long argument list over several EXECVE records; the sensor merges them
// into one before the Coalescer sees them, so CommandLine is the whole argv.
// Failed execs (success=no) are not process creations and are dropped.
//
// Each event then gets: User (name from /etc/passwd, cached; the number in
// UserId), LogonId (auid), Terminal (tty), SessionId (ses), ParentImage and
// ParentCommandLine (from a table of recent exec events by pid, else
// /proc/<ppid>), Cgroup, CgroupId and ContainerId (from /proc/<pid>/cgroup
// while the process still exists, else from its parent's, with
// CgroupSource "parent", unless the parent is pid 1, which moves the
// services it starts), ProcessStartTime (field 22 of /proc/<pid>/stat,
// clock ticks since boot, parsed by internal/agent/procfs: with ProcessId it
// names the process for the kill action and the alert page's Kill button),
// only while the process still exists and /proc's ppid and command name
// are the event's (otherwise its pid may have been reused, and the field is
// left out, never guessed), ParentProcessStartTime (the parent's, from the
// same table as ParentImage, so it may be stale just as that is; kill
// checks it and refuses a mismatch), and Hashes "SHA256=<hex>" of the
// executable, cached by device, inode, size and mtime and computed by
// Options.HashWorkers goroutines off the receive path. ev.Time is the audit
// timestamp and ev.Record the audit serial.
//
// # Importers
//
// The agent (internal/agent, cmd/vigil-agent) imports this package. It
// imports the standard library, internal/event, internal/hunt/auditd,
// internal/agent/procfs, internal/agent/usernames and throttle, and
// go-libaudit, and never a server package.
//
// # Concurrency and ordering
//
// Run uses one goroutine to receive, parse and enrich (it must keep up with
// the kernel), the hash workers, and one output goroutine. out is called in
// the order the kernel completed the execs, one event at a time, each a
// fresh *event.Event that out may keep. The receiver keeps the socket out
// of the Go runtime's poller (package fdwait), starts a round of reading at
// most every Options.Round (100 ms: the records of the execs in between wait
// in the kernel and wake nothing), reads up to 32 records per recvmmsg
// without waiting, and waits in poll(2) only when a read found nothing. It
// calls out itself for an event whose hash is
// known when nothing is queued before it; an event that waits for its hash,
// and those behind it, go through a bounded queue (Options.QueueSize) to the
// output goroutine. When the queue is full the receiver blocks and
// records wait in the kernel backlog, so a slow out slows execs down rather
// than losing them (up to backlog_wait_time, after which the kernel counts
// them lost). An event whose hash is not ready within Options.HashWait is
// sent without Hashes. While Options.Throttle is on (the agent is over its
// CPU budget) the receiver pauses Options.ThrottleRound between rounds, so
// records gather in the kernel backlog and are read in fewer wake-ups, and
// executables not hashed yet are not hashed (Status.Deferred). Status is
// safe to call from any goroutine. A Sensor
// runs once at a time.
package process
