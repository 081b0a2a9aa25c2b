package syslog

import (
	"errors"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
)

// ErrMalformed reports a line whose header (priority, timestamp, host, tag)
// could not be read. Parse still fills the event with the whole line as
// Message so that nothing is lost to a keyword search.
var ErrMalformed = errors.New("syslog: malformed line")

// ErrEmpty reports a line that holds only white space.
var ErrEmpty = errors.New("syslog: empty line")

// Options controls how lines are read. The zero value is usable: timestamps
// without a year take the current year and timestamps without a zone are UTC.
type Options struct {
	// Reference dates timestamps that carry no year. A reader passes the
	// log file's modification time. When zero, the current time is used.
	Reference time.Time
	// Location is the zone of timestamps that carry no offset. Nil means UTC.
	Location *time.Location
	// Source is copied into every event a Reader fills (Parse ignores it).
	Source string
	// MaxLineBytes bounds the line a Reader keeps; longer lines are cut to
	// this length and counted in Stats.Truncated. Zero means DefaultMaxLine.
	MaxLineBytes int
}

// DefaultMaxLine is the line length a Reader keeps when Options.MaxLineBytes
// is zero.
const DefaultMaxLine = 64 << 10

// Field names this package writes. Generic syslog fields first, then the
// authentication facts; where the Sigma taxonomy has a name (SourceIp,
// SourcePort, SourceHostname, User, TargetUser, Command) it is used.
const (
	FieldHostname       = "Hostname"
	FieldProgram        = "Program" // the syslog tag / APP-NAME, e.g. "sshd" or "sshd(pam_unix)"
	FieldPid            = "Pid"     // the tag's [pid] / PROCID
	FieldFacility       = "Facility"
	FieldSeverity       = "Severity"
	FieldMsgID          = "MsgID"          // RFC 5424 MSGID
	FieldStructuredData = "StructuredData" // RFC 5424 STRUCTURED-DATA as written
	FieldMessage        = "Message"

	FieldEventType      = "EventType" // see the EventType constants
	FieldUser           = "User"      // the acting or authenticating account
	FieldTargetUser     = "TargetUser"
	FieldSourceIP       = "SourceIp"
	FieldSourcePort     = "SourcePort"
	FieldSourceHostname = "SourceHostname"
	FieldAuthMethod     = "AuthMethod"
	FieldCommand        = "Command"
	FieldTty            = "Tty"
	FieldPwd            = "Pwd"
	FieldUID            = "Uid"
	FieldEUID           = "Euid"
	FieldGID            = "Gid"
	FieldGroup          = "Group"
	FieldHome           = "Home"
	FieldShell          = "Shell"
	FieldPamService     = "PamService" // e.g. "sshd" in pam_unix(sshd:auth)
	FieldPamModule      = "PamModule"  // e.g. "pam_unix"
	FieldCount          = "Count"      // repeat counts: "message repeated N times", "PAM N more …"
	FieldReason         = "Reason"
)

// EventType values.
const (
	EventSSHLoginSuccess   = "ssh_login_success"
	EventSSHLoginFailed    = "ssh_login_failed"
	EventSSHInvalidUser    = "ssh_invalid_user"
	EventSSHBreakIn        = "ssh_break_in_attempt"
	EventSSHConnection     = "ssh_connection"
	EventSSHConnClosed     = "ssh_connection_closed"
	EventSSHDisconnect     = "ssh_disconnect"
	EventSSHNoIdent        = "ssh_no_identification"
	EventSSHTooManyFails   = "ssh_too_many_auth_failures"
	EventSSHSessionOpen    = "ssh_session_open"
	EventSSHSessionClose   = "ssh_session_close"
	EventSudoCommand       = "sudo_command"
	EventSudoAuthFailure   = "sudo_auth_failure"
	EventSudoNotAllowed    = "sudo_not_allowed"
	EventSudoSessionOpen   = "sudo_session_open"
	EventSudoSessionClose  = "sudo_session_close"
	EventSuSuccess         = "su_success"
	EventSuFailed          = "su_failed"
	EventSuSessionOpen     = "su_session_open"
	EventSuSessionClose    = "su_session_close"
	EventSessionOpen       = "session_open"
	EventSessionClose      = "session_close"
	EventPamAuthFailure    = "pam_auth_failure"
	EventPamUserUnknown    = "pam_user_unknown"
	EventPamMaxRetries     = "pam_max_retries"
	EventPasswordChanged   = "password_changed"
	EventUserAdded         = "user_added"
	EventUserDeleted       = "user_deleted"
	EventUserModified      = "user_modified"
	EventUserAddedToGroup  = "user_added_to_group"
	EventGroupAdded        = "group_added"
	EventGroupDeleted      = "group_deleted"
	EventGroupModified     = "group_modified"
	EventLoginRoot         = "login_root"
	EventLoginFailed       = "login_failed"
	EventCronCommand       = "cron_command"
	EventFTPConnection     = "ftp_connection"
	EventFTPLoginSuccess   = "ftp_login_success"
	EventFTPLoginFailed    = "ftp_login_failed"
	EventFTPLoginAnonymous = "ftp_login_anonymous"
)

// Parse reads one log line into ev, which it resets first. It sets Time,
// Product, Services and the fields; Source and Record are left for the
// caller. On ErrMalformed the event holds the line as Message.
func Parse(line []byte, opts Options, ev *event.Event) error {
	ev.Reset()
	return parseString(string(line), &opts, ev)
}

func parseString(s string, opts *Options, ev *event.Event) error {
	ev.Product = "linux"
	ev.Services = svcSyslog
	s = strings.TrimRight(s, "\r\n")
	if strings.TrimSpace(s) == "" {
		return ErrEmpty
	}
	var h header
	ok := h.parse(s, opts)
	if !ok {
		ev.Add(FieldMessage, trimMessage(s))
		return ErrMalformed
	}
	ev.Time = h.time
	add := func(name, value string) {
		if value != "" && value != "-" {
			ev.Add(name, value)
		}
	}
	add(FieldHostname, h.host)
	add(FieldProgram, h.tag)
	add(FieldPid, h.pid)
	if h.pri >= 0 {
		ev.Add(FieldFacility, facilityName(h.pri>>3))
		ev.Add(FieldSeverity, severityNames[h.pri&7])
	}
	add(FieldMsgID, h.msgID)
	if h.sd != "" && h.sd != "-" {
		ev.Add(FieldStructuredData, h.sd)
		addStructuredData(ev, h.sd)
	}
	msg := trimMessage(h.msg)
	add(FieldMessage, msg)
	ev.Services = classify(h.tag, h.pri, msg)
	extract(ev, h.tag, msg)
	return nil
}

func trimMessage(s string) string {
	s = strings.TrimPrefix(s, "\ufeff") // RFC 5424 BOM
	return strings.TrimRight(s, " \t\r\n")
}

// header is the part of a line before the message.
type header struct {
	pri   int // -1 when absent
	time  time.Time
	host  string
	tag   string
	pid   string
	msgID string
	sd    string
	msg   string
}

func (h *header) parse(s string, opts *Options) bool {
	h.pri = -1
	if len(s) > 0 && s[0] == '<' {
		end := strings.IndexByte(s, '>')
		if end < 2 || end > 4 {
			return false
		}
		p, ok := atoi(s[1:end])
		if !ok || p > 191 {
			return false
		}
		h.pri = p
		s = s[end+1:]
		// RFC 5424: VERSION SP after the PRI.
		if len(s) >= 2 && s[0] >= '1' && s[0] <= '9' && (s[1] == ' ' || (len(s) >= 3 && isDigit(s[1]) && s[2] == ' ')) {
			return h.parse5424(s[strings.IndexByte(s, ' ')+1:], opts)
		}
	}
	var rest string
	var ok bool
	switch {
	case len(s) >= 15 && isMonth(s):
		h.time, rest, ok = parse3164Time(s, opts)
	case len(s) >= 20 && isDigit(s[0]) && s[4] == '-' && s[10] == 'T':
		h.time, rest, ok = parseISOTime(s, opts)
	}
	if !ok {
		return false
	}
	rest = strings.TrimLeft(rest, " ")
	// Hostname, unless the next token is already the tag (a message sent to
	// /dev/log without a host, or a kernel line "kernel: …").
	tok, after, _ := strings.Cut(rest, " ")
	if tok != "" && !strings.HasSuffix(tok, ":") && !strings.ContainsRune(tok, '[') {
		h.host = tok
		rest = strings.TrimLeft(after, " ")
	}
	h.tag, h.pid, h.msg = splitTag(rest)
	return true
}

// splitTag splits "tag[pid]: msg", "tag: msg" or "tag[pid] msg". A tag is at
// most 64 bytes and holds at most one space ("syslogd 1.4.1: restart."); a
// rest that does not start with a tag is all message ("last message repeated
// 3 times").
func splitTag(s string) (tag, pid, msg string) {
	spaces := 0
	for i := 0; i < len(s) && i <= 64; i++ {
		switch s[i] {
		case ':':
			if i == 0 || (i+1 < len(s) && s[i+1] != ' ') {
				return "", "", s // "12:00" inside a message, not a tag
			}
			return strings.TrimRight(s[:i], " "), "", cutSpace(s[i+1:])
		case '[':
			end := strings.IndexByte(s[i:], ']')
			if i == 0 || end < 0 {
				return "", "", s
			}
			tag, pid = strings.TrimRight(s[:i], " "), s[i+1:i+end]
			rest := s[i+end+1:]
			if strings.HasPrefix(rest, ":") {
				rest = rest[1:]
			} else if !strings.HasPrefix(rest, " ") && rest != "" {
				return "", "", s
			}
			return tag, pid, cutSpace(rest)
		case ' ':
			spaces++
			if spaces > 1 {
				return "", "", s
			}
		}
	}
	return "", "", s
}

func cutSpace(s string) string {
	if len(s) > 0 && s[0] == ' ' {
		return s[1:]
	}
	return s
}

func (h *header) parse5424(s string, opts *Options) bool {
	var ts string
	var ok bool
	ts, s, ok = strings.Cut(s, " ")
	if !ok {
		return false
	}
	if ts != "-" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return false
		}
		h.time = t.UTC()
	}
	fields := [4]*string{&h.host, &h.tag, &h.pid, &h.msgID}
	for _, f := range fields {
		*f, s, ok = strings.Cut(s, " ")
		if !ok && f != &h.msgID {
			return false
		}
		if *f == "-" {
			*f = ""
		}
	}
	if !ok {
		return false // MSGID must be followed by STRUCTURED-DATA
	}
	if strings.HasPrefix(s, "-") {
		h.sd, s = "", s[1:]
	} else {
		n := sdLen(s)
		if n <= 0 {
			return false
		}
		h.sd, s = s[:n], s[n:]
	}
	h.msg = cutSpace(s)
	return true
}

// sdLen returns the length of the SD-ELEMENTs at the start of s, or -1.
func sdLen(s string) int {
	i := 0
	for i < len(s) && s[i] == '[' {
		n := sdElemLen(s[i:])
		if n < 0 {
			return -1
		}
		i += n
	}
	if i == 0 {
		return -1
	}
	return i
}

// sdElemLen returns the length of the one SD-ELEMENT "[…]" at the start of s,
// or -1. A ']' inside a quoted PARAM-VALUE does not end it.
func sdElemLen(s string) int {
	inQuote := false
	for j := 1; j < len(s); j++ {
		c := s[j]
		if inQuote {
			if c == '\\' {
				j++
			} else if c == '"' {
				inQuote = false
			}
			continue
		}
		if c == '"' {
			inQuote = true
		} else if c == ']' {
			return j + 1
		}
	}
	return -1
}

// addStructuredData adds each SD-PARAM as a field named "SD-ID.PARAM-NAME",
// with the \" \\ \] escapes removed.
func addStructuredData(ev *event.Event, sd string) {
	for len(sd) > 0 && sd[0] == '[' {
		n := sdElemLen(sd)
		if n <= 0 {
			return
		}
		elem := sd[1 : n-1]
		sd = sd[n:]
		id, params, _ := strings.Cut(elem, " ")
		for params != "" {
			params = strings.TrimLeft(params, " ")
			name, rest, ok := strings.Cut(params, "=\"")
			if !ok {
				break
			}
			var val strings.Builder
			j := 0
			for ; j < len(rest); j++ {
				c := rest[j]
				if c == '\\' && j+1 < len(rest) && (rest[j+1] == '"' || rest[j+1] == '\\' || rest[j+1] == ']') {
					j++
					c = rest[j]
				} else if c == '"' {
					break
				}
				val.WriteByte(c)
			}
			ev.Add(id+"."+name, val.String())
			if j >= len(rest) {
				break
			}
			params = rest[j+1:]
		}
	}
}

var monthIndex = map[string]time.Month{
	"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6,
	"Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12,
}

func isMonth(s string) bool {
	_, ok := monthIndex[s[:3]]
	return ok && s[3] == ' '
}

// parse3164Time reads "Mmm dd hh:mm:ss" with an optional fraction.
func parse3164Time(s string, opts *Options) (time.Time, string, bool) {
	mon := monthIndex[s[:3]]
	d := s[4:6]
	if d[0] == ' ' {
		d = d[1:]
	}
	day, ok1 := atoi(d)
	if s[6] != ' ' || s[9] != ':' || s[12] != ':' {
		return time.Time{}, "", false
	}
	hh, ok2 := atoi(s[7:9])
	mm, ok3 := atoi(s[10:12])
	ss, ok4 := atoi(s[13:15])
	if !ok1 || !ok2 || !ok3 || !ok4 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, "", false
	}
	rest := s[15:]
	nsec := 0
	if len(rest) > 1 && rest[0] == '.' && isDigit(rest[1]) {
		i := 1
		scale := 100000000
		for ; i < len(rest) && isDigit(rest[i]); i++ {
			nsec += int(rest[i]-'0') * scale
			scale /= 10
		}
		rest = rest[i:]
	}
	if rest != "" && rest[0] != ' ' {
		return time.Time{}, "", false
	}
	loc := opts.Location
	if loc == nil {
		loc = time.UTC
	}
	ref := opts.Reference
	if ref.IsZero() {
		ref = time.Now()
	}
	t := time.Date(ref.Year(), mon, day, hh, mm, ss, nsec, loc)
	if t.After(ref.Add(24 * time.Hour)) {
		t = time.Date(ref.Year()-1, mon, day, hh, mm, ss, nsec, loc)
	}
	return t.UTC(), rest, true
}

// parseISOTime reads an RFC 3339 timestamp; one without an offset is taken in
// opts.Location.
func parseISOTime(s string, opts *Options) (time.Time, string, bool) {
	ts, rest, _ := strings.Cut(s, " ")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		loc := opts.Location
		if loc == nil {
			loc = time.UTC
		}
		t, err = time.ParseInLocation("2006-01-02T15:04:05.999999999", ts, loc)
		if err != nil {
			return time.Time{}, "", false
		}
	}
	return t.UTC(), rest, true
}

var facilityNames = [...]string{
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
}

func facilityName(f int) string { return facilityNames[f] }

var severityNames = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// atoi parses a short run of decimal digits.
func atoi(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}
