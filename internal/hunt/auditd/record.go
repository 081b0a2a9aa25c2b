package auditd

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
)

// ErrMalformed reports a line that is not an audit record.
var ErrMalformed = errors.New("auditd: malformed record")

// enrichSep separates the raw record from the section auditd adds when
// log_format = ENRICHED.
const enrichSep = '\x1d'

// Record is one audit record.
type Record struct {
	Node   string    // the node= prefix, when auditd runs with name_format
	Type   string    // "SYSCALL", "EXECVE", "USER_LOGIN" …
	Time   time.Time // UTC
	Serial uint64    // the event serial shared by the records of one event
	// Fields holds the key/value pairs in record order, values decoded. A
	// name may repeat: a key= holding several rule keys yields one field per
	// key.
	Fields []event.Field
}

// Get returns the first value of the field called name (exact match).
func (r *Record) Get(name string) (string, bool) {
	for _, f := range r.Fields {
		if f.Name == name {
			return f.Value, true
		}
	}
	return "", false
}

// ParseRecord parses one audit record.
func ParseRecord(line []byte) (Record, error) {
	var r Record
	err := parseRecord(string(line), &r)
	return r, err
}

// parseRecord fills r, reusing r.Fields.
func parseRecord(s string, r *Record) error {
	r.Node, r.Type, r.Time, r.Serial = "", "", time.Time{}, 0
	clear(r.Fields)
	r.Fields = r.Fields[:0]
	s = strings.TrimRight(s, "\r\n")
	s = strings.TrimLeft(s, " ")
	if rest, ok := strings.CutPrefix(s, "node="); ok {
		r.Node, s, ok = strings.Cut(rest, " ")
		if !ok {
			return fmt.Errorf("%w: nothing after node=", ErrMalformed)
		}
	}
	rest, ok := strings.CutPrefix(s, "type=")
	if !ok {
		return fmt.Errorf("%w: no type=", ErrMalformed)
	}
	r.Type, rest, ok = strings.Cut(rest, " ")
	if !ok || r.Type == "" {
		return fmt.Errorf("%w: no msg after type", ErrMalformed)
	}
	rest, ok = strings.CutPrefix(strings.TrimLeft(rest, " "), "msg=audit(")
	if !ok {
		return fmt.Errorf("%w: no msg=audit(…)", ErrMalformed)
	}
	stamp, body, ok := strings.Cut(rest, ")")
	if !ok {
		return fmt.Errorf("%w: unterminated msg=audit(", ErrMalformed)
	}
	body = strings.TrimPrefix(body, ":") // DAEMON_CONFIG of some versions has no colon
	if err := r.parseStamp(stamp); err != nil {
		return err
	}
	body, enriched, hasEnriched := strings.Cut(body, string(enrichSep))
	if strings.HasPrefix(strings.TrimLeft(body, " "), "avc:") {
		parseAVC(r, body)
	}
	parseKV(r, body, r.Type == "EXECVE", true)
	if hasEnriched {
		parseKV(r, enriched, false, false)
	}
	return nil
}

// parseStamp reads "1234567890.123:456".
func (r *Record) parseStamp(s string) error {
	ts, serial, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("%w: bad timestamp %q", ErrMalformed, s)
	}
	sec, frac, _ := strings.Cut(ts, ".")
	secs, ok1 := parseUint(sec)
	ser, ok2 := parseUint(serial)
	if !ok1 || !ok2 || len(frac) > 9 {
		return fmt.Errorf("%w: bad timestamp %q", ErrMalformed, s)
	}
	nsec := uint64(0)
	scale := uint64(100000000)
	for i := 0; i < len(frac); i++ {
		c := frac[i]
		if c < '0' || c > '9' {
			return fmt.Errorf("%w: bad timestamp %q", ErrMalformed, s)
		}
		nsec += uint64(c-'0') * scale
		scale /= 10
	}
	if secs > 1<<40 {
		return fmt.Errorf("%w: timestamp out of range %q", ErrMalformed, s)
	}
	r.Time = time.Unix(int64(secs), int64(nsec)).UTC()
	r.Serial = ser
	return nil
}

func parseUint(s string) (uint64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// parseAVC reads the SELinux "avc:  denied  { read write } for …" preamble
// into seresult and seperms, as auparse does.
func parseAVC(r *Record, body string) {
	_, rest, _ := strings.Cut(body, "avc:")
	rest = strings.TrimLeft(rest, " ")
	result, rest, ok := strings.Cut(rest, " ")
	if !ok {
		return
	}
	open := strings.IndexByte(rest, '{')
	end := strings.IndexByte(rest, '}')
	if open < 0 || end < open {
		return
	}
	r.Fields = append(r.Fields, event.Field{Name: "seresult", Value: result})
	perms := strings.Fields(rest[open+1 : end])
	r.Fields = append(r.Fields, event.Field{Name: "seperms", Value: strings.Join(perms, ",")})
}

func isKeyChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '-' || c == '[' || c == ']'
}

// parseKV appends the key=value pairs of s. Words that are not pairs ("user",
// "avc:", "{ read }") are skipped, except "old"/"new" before a pair, which
// prefix its name as in the old LOGIN record "old auid=… new auid=…".
// nested says whether a msg='…' value is to be flattened.
func parseKV(r *Record, s string, execve, nested bool) {
	prefix := ""
	for i := 0; i < len(s); {
		c := s[i]
		if c == ' ' || c == '\t' || !isKeyChar(c) {
			i++
			continue
		}
		start := i
		for i < len(s) && isKeyChar(s[i]) {
			i++
		}
		if i >= len(s) || s[i] != '=' {
			word := s[start:i]
			for i < len(s) && s[i] != ' ' {
				i++
			}
			if word == "old" || word == "new" {
				prefix = word + "_"
			} else {
				prefix = ""
			}
			continue
		}
		key := s[start:i]
		i++ // '='
		var val string
		quoted := false
		switch {
		case i < len(s) && s[i] == '"':
			end := strings.IndexByte(s[i+1:], '"')
			if end < 0 {
				val, i = s[i+1:], len(s)
			} else {
				val, i = s[i+1:i+1+end], i+1+end+1
			}
			quoted = true
		case i < len(s) && s[i] == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				val, i = s[i+1:], len(s)
			} else {
				val, i = s[i+1:i+1+end], i+1+end+1
			}
			if nested && key == "msg" {
				n := len(r.Fields)
				parseKV(r, val, false, false)
				if len(r.Fields) > n {
					prefix = ""
					continue
				}
			}
			quoted = true
		default:
			end := strings.IndexAny(s[i:], " \t")
			if end < 0 {
				end = len(s) - i
			}
			if end > 6 && strings.HasPrefix(s[i:], "(null)") {
				end = 6 // key=(null)ARCH=… : an enriched section whose 0x1d was lost
			}
			val = s[i : i+end]
			i += end
			// The legacy "(hostname=?, addr=?, terminal=cron res=success)",
			// and a stray closing quote after hex (key=6578…74").
			val = strings.TrimRight(val, ",\"'")
			if strings.HasSuffix(val, ")") && !strings.Contains(val, "(") {
				val = val[:len(val)-1]
			}
		}
		// Trailing junk after a closing quote (seen in real logs: a2="x"').
		for quoted && i < len(s) && s[i] != ' ' && s[i] != '\t' {
			i++
		}
		if prefix != "" {
			key = prefix + key
			prefix = ""
		}
		if !quoted && (val == "(null)" || val == "") {
			continue
		}
		if !quoted && (execve && isArgKey(key) || encodedKeys[key]) {
			if dec, ok := decodeHex(val); ok {
				val = dec
				if key == "proctitle" {
					val = strings.TrimRight(strings.ReplaceAll(val, "\x00", " "), " ")
				}
			}
		}
		if key == "key" && strings.IndexByte(val, '\x01') >= 0 {
			// Several rule keys, joined by 0x01.
			for _, k := range strings.Split(val, "\x01") {
				r.Fields = append(r.Fields, event.Field{Name: key, Value: k})
			}
			continue
		}
		r.Fields = append(r.Fields, event.Field{Name: key, Value: val})
	}
}

// encodedKeys are the fields the kernel and audit userspace hex-encode when
// the value holds a space, a quote or a control character.
var encodedKeys = map[string]bool{
	"acct": true, "cmd": true, "comm": true, "cwd": true, "data": true, "dir": true,
	"exe": true, "file": true, "grp": true, "key": true, "name": true, "new_group": true,
	"ocomm": true, "path": true, "proctitle": true, "root_dir": true, "vm": true,
	"watch": true, "new-disk": true, "old-disk": true, "new-chardev": true,
	"old-chardev": true, "new-fs": true, "old-fs": true, "new-net": true,
	"old-net": true, "cgroup": true, "device": true, "sw": true,
}

// isArgKey reports whether k names an EXECVE argument: a0, a12, a1[3].
func isArgKey(k string) bool {
	if len(k) < 2 || k[0] != 'a' {
		return false
	}
	for i := 1; i < len(k); i++ {
		c := k[i]
		if c == '[' {
			return i > 1 && strings.HasSuffix(k, "]")
		}
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// decodeHex decodes an even-length run of hex digits.
func decodeHex(s string) (string, bool) {
	if len(s) < 2 || len(s)%2 != 0 {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(s) / 2)
	for i := 0; i < len(s); i += 2 {
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return "", false
		}
		b.WriteByte(hi<<4 | lo)
	}
	return b.String(), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
