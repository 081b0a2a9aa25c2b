// Package syslog turns Linux text logs into events for offline hunting: the
// traditional /var/log formats (auth.log, secure, syslog, messages), RFC 3164
// and RFC 5424 messages, and the ISO 8601 timestamps of modern rsyslog.
//
// Parse handles one line; Reader streams a whole file with bounded memory.
// Both fill an event.Event with generic syslog fields (Hostname, Program,
// Pid, Facility, Severity, MsgID, StructuredData, Message) and, for the
// programs that write authentication records (sshd, sudo, su, pam_unix, the
// shadow user tools, passwd, login, cron, ftpd/vsftpd), the facts of that
// record: EventType, User, TargetUser, SourceIp, SourcePort, AuthMethod,
// Command, Tty, Pwd and a few more; see the field constants in fields.go.
// Events are classified as product "linux" with the Sigma services that
// apply (sshd, sudo, auth, cron, vsftpd, clamav, guacamole, syslog).
//
// # Importers
//
// The hunt readers and the agent's auth-log sensor may import this package.
// It imports only the standard library and internal/event.
//
// # Timestamps
//
// RFC 3164 and /var/log timestamps carry no year and no zone. Options gives a
// reference time (a reader passes the file's modification time) and a
// location: a timestamp takes the reference's year, or the year before when it
// would otherwise lie more than a day after the reference (a log that crosses
// New Year). Event.Time is always UTC.
//
// # Concurrency
//
// Parse is safe for concurrent use. A Reader is not; use one per goroutine.
// The strings an event holds stay valid after the next call (they are
// immutable), but the event itself is reset by every call that fills it.
package syslog
