// Package authlog is the agent's authentication sensor: it follows the host's
// authentication log and turns each record (sshd logins and failures, sudo,
// su, the shadow user tools, PAM sessions, …) into an event, using the same
// parser as offline hunting (internal/hunt/syslog), so an event from the
// agent and an event from `vigil hunt auth.log` carry the same fields
// (EventType, User, TargetUser, SourceIp, SourcePort, Command, …) and the same
// Sigma log source (product "linux", services sshd/sudo/auth/…).
//
// # Sources
//
// The first of these that the host has is used, and Status says which:
//
//   - Options.Path, when set: that file is tailed (tests, unusual layouts).
//   - The systemd journal, when journalctl exists and the journal holds
//     entries: `journalctl -f -o json` runs as a child process, restricted to
//     the auth and authpriv facilities (what rsyslog writes to auth.log).
//     Each record becomes a syslog line "<PRI>TIMESTAMP HOST IDENT[PID]: MESSAGE"
//     for the parser; the event time is the journal's __REALTIME_TIMESTAMP.
//     If journalctl exits, it is restarted after the last cursor seen, so
//     nothing is read twice and nothing in between is lost.
//   - /var/log/auth.log (Debian, Ubuntu) or /var/log/secure (RHEL, Fedora):
//     tailed from its end at start, following rotation. The path is checked
//     every poll interval: a different inode means the file was rotated (the
//     rest of the old file is read first, then the new one from its start);
//     a size below the read offset means it was truncated (read from 0).
//
// With none of these, Run returns ErrNoSource.
//
// # Importers
//
// The agent (internal/agent, cmd/vigil-agent) imports this package. It
// imports the standard library, internal/event and internal/hunt/syslog, and
// never a server package.
//
// # Concurrency
//
// Run reads in the calling goroutine (plus, for the journal, the child
// process) and calls out from that goroutine only, one event at a time. The
// event passed to out is reused for the next record: out must copy whatever
// it keeps (event.Clone). Status is safe to call from any goroutine at any
// time. A Sensor runs once; create a new one to run again.
package authlog
