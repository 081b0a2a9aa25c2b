// Package fim is the agent's file integrity sensor: it reports files that
// are created, modified, deleted, renamed, or have their permissions or owner
// changed under the watched paths (system binaries, /etc, /boot, cron,
// systemd units, SSH authorized keys, shell profiles, /etc/ld.so.preload),
// together with the process that made the change where the kernel tells.
//
// # Events
//
// Each change is one event of product "linux" and category "file_event" with
// the fields TargetFilename, Action (created, modified, deleted, renamed,
// permissions_changed, owner_changed), FileType (file, dir, symlink, other)
// and, as they apply: Hash and PreviousHash (hex SHA-256 of the content after
// and before; files up to MaxHashBytes), LinkTarget and PreviousLinkTarget
// for symbolic links, Mode/PreviousMode (octal, with setuid/setgid/sticky),
// Uid/PreviousUid and Gid/PreviousGid, SourceFilename (the old name of a
// renamed file), and ProcessId, Image and User (effective user) of the acting
// process. A path where an attacker can make code run again also carries
// PersistenceType (cron, systemd, ssh_authorized_keys, shell_profile,
// ld_preload) and the categories {"file_event", "persistence"}. A file
// renamed over an existing one (how editors, sed -i and package managers
// write) is reported as renamed and, when the content differs, as a
// modification of the target.
//
// # How changes are seen
//
// With fanotify (Linux 5.9+ for directory file handles, run as root), every
// directory under a watched path is marked with an inode mark for create,
// delete, rename, modify, close-after-write and attribute changes of its
// children; filesystem-wide marks are not used, because on a root
// filesystem they would deliver every write on the machine. Events carry the
// directory's file handle and the name; handles recorded while marking name
// the directory without a system call, others are opened with
// open_by_handle_at. The acting process comes from the event's pid: its
// image from /proc/<pid>/exe and its user from /proc/<pid>/status, kept only
// when the process still ran after /proc was read (checked on the pidfd the
// kernel hands out since 5.15), so a reused pid cannot be blamed. Content is
// hashed when the writer closes the file, or after 2 s without writes for a
// file kept open. A queue overflow triggers a rescan. Directories created or
// moved in later are marked as they appear; a glob such as /home/*/.ssh is
// expanded when Run starts.
//
// Without fanotify file handle support (older kernels, no CAP_SYS_ADMIN,
// filesystems without file handles) the sensor rescans the baseline every
// PollInterval instead; Status.Source is "poll" and Status.Err says why.
// Polled changes carry no process.
//
// # Baseline file
//
// The baseline is StateDir/baseline.json, written atomically (a temporary
// file in StateDir, fsync, rename) after the first walk, at most every 30 s
// while changes arrive, and when Run returns. It is one JSON object:
//
//	{"version": 1, "saved": RFC 3339 time,
//	 "entries": {ABSOLUTE PATH: {"type": "file"|"dir"|"symlink"|"other",
//	   "sha256": hex (files up to MaxHashBytes only), "link": symlink target,
//	   "mode": permission bits incl. 07000, "uid": n, "gid": n, "size": bytes,
//	   "mtime_ns": n, "ctime_ns": n, "ino": n}}}
//
// Directories record mode and owner only (size and times zero). At start a
// saved baseline is compared with the disk and the differences are reported
// (changes made while the agent was down, without a process); a file whose
// inode, size, mtime and ctime are unchanged is not hashed again. A baseline
// of another version is ignored and rebuilt.
//
// # Importers
//
// The agent (internal/agent, cmd/vigil-agent) imports this package. It
// imports the standard library, golang.org/x/sys/unix and internal/event,
// and never a server package.
//
// # Concurrency
//
// Run does all its work in the calling goroutine and calls out from it, one
// event at a time. The event passed to out is reused: out must copy
// whatever it keeps (event.Clone). Status is safe to call from any goroutine
// at any time. A Sensor runs once; create a new one to run again.
package fim
