// Package auditd reads raw Linux audit logs (/var/log/audit/audit.log) for
// offline hunting.
//
// ParseRecord splits one record,
//
//	[node=NODE ]type=TYPE msg=audit(SECONDS.MILLIS:SERIAL): key=value …[\x1dENRICHED]
//
// into its type, time, serial and ordered key/value pairs, with the values
// interpreted the way the audit userspace writes them: double quotes removed,
// hex-encoded untrusted strings (proctitle, EXECVE arguments, name, cwd, exe,
// comm, acct, cmd, key, data …) decoded, the nested msg='…' of user-space
// records flattened into the record, and the enriched section that auditd
// appends after a 0x1d byte (ARCH=x86_64 SYSCALL=execve UID="root" …) added
// with its upper-case names. A value of (null) means the kernel had none and
// is left out, as is an empty unquoted value (mac=); "?" is kept.
//
// Reader streams a log into events, one per record, named exactly as the
// record names them plus "type" for the record type (the shape SigmaHQ's
// auditd rules expect: type: EXECVE with a0, a1 …; type: SYSCALL with exe and
// SYSCALL; type: PATH with name). A Coalescer groups the records that share a
// serial and turns execve syscalls into one Sigma process_creation event
// (Image, CommandLine, CurrentDirectory, ProcessId, ParentProcessId, User,
// LogonId); Reader emits those in addition to the per-record events when
// Options.Coalesce is set.
//
// # Importers
//
// The hunt readers and the agent's audit sensor may import this package. It
// imports only the standard library and internal/event.
//
// # Memory
//
// A Reader keeps one line (at most Options.MaxLineBytes; longer lines are cut
// and counted) and at most Options.MaxPending serials in its Coalescer; when
// more are pending the oldest is emitted as it stands and counted.
//
// # Concurrency
//
// ParseRecord is safe for concurrent use. Reader and Coalescer are not; use
// one per goroutine. Strings in records and events are immutable and stay
// valid; the event passed to Next is reset by every call.
package auditd
