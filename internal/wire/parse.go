package wire

import (
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/vigil-edr/vigil/internal/event"
)

// parser is a strict JSON parser for the batch schema, without reflection:
// it reads the known keys straight into a Batch, validates and skips unknown
// ones, and refuses null, lone surrogate escapes and anything encoding/json
// would refuse. Nesting depth is bounded by scan before it runs.
type parser struct {
	b      []byte
	i      int
	lim    Limits
	intern map[string]string // field names and log source strings repeat in every event
	chk    *checker          // set by Check: events are validated, not kept
}

// internString returns b as a string, shared with earlier equal strings of
// this body when b is short.
func (p *parser) internString(b []byte) string {
	if len(b) > 64 {
		return string(b)
	}
	if s, ok := p.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if p.intern == nil {
		p.intern = make(map[string]string, 64)
	}
	if len(p.intern) < 1024 {
		p.intern[s] = s
	}
	return s
}

func (p *parser) syntax(what string) *Error {
	if p.i >= len(p.b) {
		return errorf(CodeBadJSON, "unexpected end of JSON, want %s", what)
	}
	return errorf(CodeBadJSON, "byte %d: unexpected %q, want %s", p.i, p.b[p.i], what)
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next skips white space and returns the next byte, 0 at the end.
func (p *parser) next() byte {
	p.ws()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *parser) expect(c byte, what string) *Error {
	if p.next() != c {
		return p.syntax(what)
	}
	p.i++
	return nil
}

// object calls member for every key of an object, positioned at its value.
func (p *parser) object(what string, member func(key []byte) *Error) *Error {
	if err := p.expect('{', what+" object"); err != nil {
		return err
	}
	if p.next() == '}' {
		p.i++
		return nil
	}
	for {
		key, err := p.rawString()
		if err != nil {
			return err
		}
		if err := p.expect(':', "':'"); err != nil {
			return err
		}
		if err := member(key); err != nil {
			return err
		}
		switch p.next() {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return p.syntax("',' or '}'")
		}
	}
}

// array calls elem for every element of an array, positioned at it.
func (p *parser) array(what string, elem func(i int) *Error) *Error {
	if err := p.expect('[', what+" array"); err != nil {
		return err
	}
	if p.next() == ']' {
		p.i++
		return nil
	}
	for n := 0; ; n++ {
		if err := elem(n); err != nil {
			return err
		}
		switch p.next() {
		case ',':
			p.i++
		case ']':
			p.i++
			return nil
		default:
			return p.syntax("',' or ']'")
		}
	}
}

// rawString reads a string and returns its decoded bytes: a view into the
// input when it has no escapes, a fresh slice otherwise.
func (p *parser) rawString() ([]byte, *Error) {
	if p.next() != '"' {
		return nil, p.syntax("a string")
	}
	p.i++
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, nil
		case c == '\\':
			return p.unescape(start)
		case c < 0x20:
			return nil, errorf(CodeBadJSON, "byte %d: control character in a string", p.i)
		}
		p.i++
	}
	return nil, p.syntax("'\"'")
}

// unescape continues a string that has an escape at p.i.
func (p *parser) unescape(start int) ([]byte, *Error) {
	out := make([]byte, 0, p.i-start+16)
	out = append(out, p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return out, nil
		case c < 0x20:
			return nil, errorf(CodeBadJSON, "byte %d: control character in a string", p.i)
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.b) {
			break
		}
		e := p.b[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(p.b, p.i)
			if !ok {
				return nil, errorf(CodeBadJSON, "byte %d: bad \\u escape", p.i-2)
			}
			p.i += 4
			if utf16.IsSurrogate(r) {
				lo, ok := rune(0), false
				if r < 0xDC00 && p.i+6 <= len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
					lo, ok = hex4(p.b, p.i+2)
				}
				r = utf16.DecodeRune(r, lo)
				if !ok || r == utf8.RuneError {
					return nil, errorf(CodeInvalidUTF8, "byte %d: lone surrogate escape", p.i-6)
				}
				p.i += 6
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, errorf(CodeBadJSON, "byte %d: bad escape \\%c", p.i-2, e)
		}
	}
	return nil, p.syntax("'\"'")
}

func (p *parser) strings(what string) ([]string, *Error) {
	out := []string{}
	err := p.array(what, func(int) *Error {
		b, err := p.rawString()
		out = append(out, p.internString(b))
		return err
	})
	return out, err
}

// uint reads a JSON number that must be a non-negative integer.
func (p *parser) uint(what string) (uint64, *Error) {
	p.ws()
	start := p.i
	if err := p.number(); err != nil {
		return 0, err
	}
	num := p.b[start:p.i]
	var n uint64
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, errorf(CodeBadJSON, "%s must be a non-negative integer, not %s", what, num)
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, errorf(CodeBadJSON, "%s %s does not fit 64 bits", what, num)
		}
		n = n*10 + d
	}
	return n, nil
}

// number checks the JSON number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *parser) number() *Error {
	b, i := p.b, p.i
	digits := func() bool {
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > s
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return p.syntax("a number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			p.i = i
			return p.syntax("a digit")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			p.i = i
			return p.syntax("a digit")
		}
	}
	p.i = i
	return nil
}

// skip validates and skips any value (an unknown key's).
func (p *parser) skip() *Error {
	switch c := p.next(); {
	case c == '{':
		return p.object("", func([]byte) *Error { return p.skip() })
	case c == '[':
		return p.array("", func(int) *Error { return p.skip() })
	case c == '"':
		_, err := p.rawString()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't' && len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "true":
		p.i += 4
	case c == 'f' && len(p.b)-p.i >= 5 && string(p.b[p.i:p.i+5]) == "false":
		p.i += 5
	case c == 'n':
		return errorf(CodeBadJSON, "byte %d: null is not allowed (omit the key instead)", p.i)
	default:
		return p.syntax("a value")
	}
	return nil
}

// once refuses a repeated key among the known ones (bit k of seen).
func once(seen *uint8, k uint8, key string) *Error {
	if *seen&(1<<k) != 0 {
		return errorf(CodeBadJSON, "key %q repeats", key)
	}
	*seen |= 1 << k
	return nil
}

func (p *parser) batch() (*Batch, *Error) {
	b := &Batch{}
	var seen uint8
	err := p.object("batch", func(key []byte) *Error {
		switch string(key) {
		case "v":
			if err := once(&seen, 0, "v"); err != nil {
				return err
			}
			v, err := p.uint("v")
			if err != nil || v > 1<<20 {
				return errorf(CodeBadVersion, "v must be a small non-negative integer")
			}
			b.Version = int(v)
		case "boot_epoch":
			if err := once(&seen, 1, "boot_epoch"); err != nil {
				return err
			}
			v, err := p.uint("boot_epoch")
			b.BootEpoch = v
			return err
		case "events":
			if err := once(&seen, 2, "events"); err != nil {
				return err
			}
			if b.Version != 0 && b.Version != Version {
				return p.skip() // reported as bad_version below
			}
			return p.events(b)
		default:
			return p.skip()
		}
		return nil
	})
	if err == nil && p.next() != 0 {
		err = p.syntax("the end of the body")
	}
	if (err == nil || (seen&1 != 0 && (err.Code == CodeBadJSON || err.Code == CodeBadEvent))) && b.Version != Version {
		return nil, errorf(CodeBadVersion, "version %d is not supported (want %d)", b.Version, Version)
	}
	return b, err
}

func (p *parser) events(b *Batch) *Error {
	if p.chk == nil {
		b.Events = make([]Event, 0, min(p.lim.MaxEvents, 1+len(p.b)/128))
	}
	return p.array("events", func(n int) *Error {
		if n >= p.lim.MaxEvents {
			return errorf(CodeTooManyEvents, "more than %d events in one batch", p.lim.MaxEvents)
		}
		start := p.i
		var e *Event
		if p.chk != nil {
			e = &p.chk.ev
			*e = Event{}
		} else {
			b.Events = append(b.Events, Event{})
			e = &b.Events[n]
		}
		if err := p.event(e); err != nil {
			return &Error{Code: err.Code, Message: "event " + itoa(n) + ": " + err.Message}
		}
		if size := p.i - start; size > p.lim.MaxEventBytes {
			return errorf(CodeEventTooLarge, "event %d is %d bytes of JSON, over the %d-byte limit", n, size, p.lim.MaxEventBytes)
		}
		if p.chk != nil {
			p.chk.note(n)
		}
		return nil
	})
}

func (p *parser) event(e *Event) *Error {
	var seen uint8
	return p.object("event", func(key []byte) *Error {
		var err *Error
		switch string(key) {
		case "seq":
			if err = once(&seen, 0, "seq"); err == nil {
				e.Seq, err = p.uint("seq")
			}
		case "time":
			if err = once(&seen, 1, "time"); err == nil {
				var s []byte
				if s, err = p.rawString(); err == nil {
					t, perr := time.Parse(time.RFC3339Nano, string(s))
					if perr != nil {
						return errorf(CodeBadEvent, "time %q is not RFC 3339", s)
					}
					e.Time = t
				}
			}
		case "product":
			if err = once(&seen, 2, "product"); err == nil {
				var b []byte
				b, err = p.rawString()
				e.Product = p.internString(b)
			}
		case "services":
			if err = once(&seen, 3, "services"); err == nil {
				e.Services, err = p.strings("services")
			}
		case "categories":
			if err = once(&seen, 4, "categories"); err == nil {
				e.Categories, err = p.strings("categories")
			}
		case "fields":
			if err = once(&seen, 5, "fields"); err == nil {
				e.Fields, err = p.fields()
			}
		default:
			err = p.skip()
		}
		return err
	})
}

// fields reads an event's fields. Under Check it keeps only the names (all
// Validate looks at), in the checker's reused slice.
func (p *parser) fields() (Fields, *Error) {
	var out Fields
	if p.chk != nil {
		out = p.chk.fields[:0]
	} else {
		out = make(Fields, 0, 16)
	}
	err := p.array("fields", func(n int) *Error {
		if p.next() != '[' {
			return errorf(CodeBadEvent, "field %d is not a [name, value] array", n)
		}
		p.i++
		if p.next() != '"' {
			return notPair(n)
		}
		name, err := p.rawString()
		if err != nil {
			return err
		}
		if p.next() != ',' {
			return notPair(n)
		}
		p.i++
		if p.next() != '"' {
			return notPair(n)
		}
		value, err := p.rawString()
		if err != nil {
			return err
		}
		if p.next() != ']' {
			return notPair(n)
		}
		p.i++
		if p.chk != nil {
			// Validate only asks whether the name is empty.
			out = append(out, event.Field{Name: nonEmpty[:min(len(name), 1)]})
			return nil
		}
		out = append(out, event.Field{Name: p.internString(name), Value: string(value)})
		return nil
	})
	return out, err
}

// nonEmpty stands in for a field name Check does not keep.
const nonEmpty = "x"

func notPair(n int) *Error {
	return errorf(CodeBadEvent, "field %d is not a [name, value] pair of strings", n)
}
