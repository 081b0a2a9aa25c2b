// Package inventory is the agent's inventory sensor: it reports what the host
// is made of (operating system and kernel, installed packages, users and
// groups, listening ports with their process, systemd services, kernel
// modules) as full snapshots, and every change to it as an event of its own
// kind (package installed, user added, port opened, service enabled, kernel
// module loaded, …) that Sigma rules can match. The server keeps the latest
// complete snapshot per host for hygiene and vulnerability matching.
//
// Event kinds and fields are documented in docs/inventory.md.
//
// # When it collects
//
//   - At start: a collection, compared with the one saved in
//     StateDir/inventory.json by the previous run (changes made while the
//     agent was down have Trigger "start"), then a full snapshot.
//   - Every DiffEvery (60 s): a collection compared with the last one
//     (Trigger "scan"). It is cheap: the dpkg status file and the rpm
//     database are parsed again only when their size, mtime or inode
//     changed, and /proc/*/fd is walked for socket owners only when the set
//     of listening sockets changed.
//   - When a trigger file changes (Trigger "watch"): /var/lib/dpkg/status,
//     the rpm database files, /etc/passwd, /etc/group, the systemd unit
//     directories and /etc/systemd/system/*.wants are stat'ed every
//     WatchEvery (2 s); a change starts a comparison once the files have
//     been quiet for one tick (dpkg rewrites its status file many times per
//     run).
//   - When the kernel announces a module (Trigger "uevent"): the sensor
//     joins the kernel's uevent netlink group (NETLINK_KOBJECT_UEVENT, the
//     one udev reads; no privilege needed) and compares /proc/modules at
//     once on an add or remove event of the "module" subsystem, and again a
//     second later (a removed module can still be listed as Unloading).
//     Without uevents (another network namespace, a seccomp filter) Status
//     says why and module changes are found by the periodic comparison.
//   - Every SnapshotEvery (12 h): a full snapshot.
//
// While Options.Throttle is on (the agent is over its CPU budget), the
// periodic and trigger-file collections are postponed (Status.Postponed),
// a due snapshot is taken at the first comparison after; uevents are still
// followed.
//
// A kind whose collection fails (an unreadable file, rpm exiting with an
// error) is neither compared nor sent: its last good state is kept, so a
// failure never looks like everything having been removed. Status.Err says
// which kind failed and why.
//
// # Sources
//
// os-release(5) and uname(2); /var/lib/dpkg/status parsed directly; for rpm,
// `rpm -qa --queryformat` is run when the rpm binary and a database exist
// (modern rpm databases are SQLite, which the agent does not link);
// /etc/passwd and /etc/group (password fields are never read into memory
// beyond the line being split, and never reported); /proc/net/{tcp,tcp6,
// udp,udp6} of the agent's network namespace with owners from
// /proc/<pid>/fd socket links; systemd unit files under /etc, /run and
// /usr/lib (enabled = linked from a .wants or .requires directory under
// /etc/systemd/system, masked = linked to /dev/null, running = a populated
// cgroup of the unit's name under system.slice; no D-Bus); /proc/modules.
// Every parser bounds lines (MaxLine), values (MaxValue) and items
// (MaxItems), and makes values valid UTF-8.
//
// # Importers
//
// The agent (internal/agent, cmd/vigil-agent) imports this package. It
// imports the standard library, golang.org/x/sys/unix and internal/event,
// and never a server package.
//
// # Concurrency
//
// Run does its work in the calling goroutine, plus one goroutine reading
// uevents, and calls out from the calling goroutine only. Every event
// passed to out is fresh and may be kept. Status is safe to call from any
// goroutine at any time. A Sensor runs once at a time.
package inventory
