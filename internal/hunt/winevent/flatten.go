package winevent

import (
	"strconv"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
)

// section is the top-level part of the Event XML an element belongs to.
type section uint8

const (
	secRoot      section = iota // the Event element itself
	secSystem                   // Event/System
	secEventData                // Event/EventData
	secUserData                 // Event/UserData
	secOther                    // RenderingInfo, ProcessingErrorData, …
)

// maxInterned bounds the name tables, so hostile input with endless distinct
// names cannot grow them without limit; names beyond it are still correct,
// just allocated per use.
const maxInterned = 8192

type frame struct {
	name      string
	field     string // field name from <Data Name="…">, if any
	sect      section
	depth     int32
	textStart int32 // offset in buf where this element's text starts
	itemStart int32 // index in items of this element's first array item
	hasChild  bool
	content   bool // saw text (possibly empty)
	null      bool // saw a null value
}

type span struct{ off, end int32 }

type pending struct {
	name     string
	off, end int32
}

// Flattener turns a stream of XML-like calls (Start, Attr, Text, Null,
// ArraySep, End) into flat event fields, following the rules in the package
// documentation. All values of one event are collected in one buffer and
// become one string in Finish, so an event costs one allocation for its
// values; field names are interned.
//
// The zero value is ready to use. A Flattener is reused for every event of a
// reader; it is not safe for concurrent use.
type Flattener struct {
	stack []frame
	buf   []byte
	pend  []pending
	items []span
	names map[string]string    // interned Data Name values
	pairs map[[2]string]string // interned Element_Attribute names
}

// Start opens an element.
func (f *Flattener) Start(name string) {
	fr := frame{name: name, textStart: int32(len(f.buf)), itemStart: int32(len(f.items))}
	if n := len(f.stack); n > 0 {
		parent := &f.stack[n-1]
		parent.hasChild = true
		fr.depth = parent.depth + 1
		fr.sect = parent.sect
		if fr.depth == 1 {
			switch name {
			case "System":
				fr.sect = secSystem
			case "EventData":
				fr.sect = secEventData
			case "UserData":
				fr.sect = secUserData
			default:
				fr.sect = secOther
			}
		}
	}
	f.stack = append(f.stack, fr)
}

// Attr adds an attribute of the element opened last. It must come before the
// element's content. value is copied.
func (f *Flattener) Attr(name string, value []byte) {
	n := len(f.stack)
	if n == 0 || strings.HasPrefix(name, "xmlns") {
		return
	}
	fr := &f.stack[n-1]
	if fr.depth < 2 {
		return // attributes of Event, System, EventData, UserData
	}
	if fr.sect == secEventData && fr.depth == 2 && name == "Name" && fr.name == "Data" {
		fr.field = f.intern(value)
		fr.textStart = int32(len(f.buf))
		return
	}
	off := int32(len(f.buf))
	f.buf = append(f.buf, value...)
	f.pend = append(f.pend, pending{name: f.pairName(fr.name, name), off: off, end: int32(len(f.buf))})
	fr.textStart = int32(len(f.buf))
}

// AttrString is Attr for a string value.
func (f *Flattener) AttrString(name, value string) {
	n := len(f.stack)
	if n == 0 || strings.HasPrefix(name, "xmlns") {
		return
	}
	fr := &f.stack[n-1]
	if fr.depth < 2 {
		return
	}
	if fr.sect == secEventData && fr.depth == 2 && name == "Name" && fr.name == "Data" {
		fr.field = f.internString(value)
		return
	}
	off := int32(len(f.buf))
	f.buf = append(f.buf, value...)
	f.pend = append(f.pend, pending{name: f.pairName(fr.name, name), off: off, end: int32(len(f.buf))})
	fr.textStart = int32(len(f.buf))
}

// Text appends content to the element opened last. An empty b still marks the
// element as having a (empty) value. b is copied.
func (f *Flattener) Text(b []byte) {
	if fr := f.top(); fr != nil {
		fr.content = true
		f.buf = append(f.buf, b...)
	}
}

// TextString is Text for a string.
func (f *Flattener) TextString(s string) {
	if fr := f.top(); fr != nil {
		fr.content = true
		f.buf = append(f.buf, s...)
	}
}

// Null records a null value (a null substitution, a JSON null) in the element
// opened last. An element whose only content is null yields no field.
func (f *Flattener) Null() {
	if fr := f.top(); fr != nil {
		fr.null = true
	}
}

// ArraySep ends one item of an array value: the element yields one field per
// item.
func (f *Flattener) ArraySep() {
	fr := f.top()
	if fr == nil {
		return
	}
	fr.content = true
	f.items = append(f.items, span{fr.textStart, int32(len(f.buf))})
	fr.textStart = int32(len(f.buf))
}

// End closes the element opened last.
func (f *Flattener) End() {
	n := len(f.stack)
	if n == 0 {
		return
	}
	fr := f.stack[n-1]
	f.stack = f.stack[:n-1]
	items := f.items[fr.itemStart:]
	f.items = f.items[:fr.itemStart]
	if fr.hasChild || fr.depth < 2 {
		return
	}
	name := fr.name
	switch fr.sect {
	case secSystem:
		if !fr.content {
			return // <Correlation/>, <Security/>: attributes only
		}
	case secEventData:
		if fr.field != "" {
			name = fr.field
		}
		fallthrough
	default:
		if !fr.content && fr.null {
			return
		}
	}
	for _, it := range items {
		f.pend = append(f.pend, f.trimmed(name, it.off, it.end))
	}
	f.pend = append(f.pend, f.trimmed(name, fr.textStart, int32(len(f.buf))))
}

// trimmed returns the pending field for buf[off:end] without trailing
// white space, as the JSON rendering has it.
func (f *Flattener) trimmed(name string, off, end int32) pending {
	for end > off && isSpace(f.buf[end-1]) {
		end--
	}
	return pending{name: name, off: off, end: end}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// Depth returns the number of open elements.
func (f *Flattener) Depth() int { return len(f.stack) }

// Finish adds the collected fields to ev, sets ev.Time from
// TimeCreated_SystemTime and ev.Record from EventRecordID (when present), and
// makes f ready for the next event. Unclosed elements are discarded.
func (f *Flattener) Finish(ev *event.Event) {
	all := string(f.buf)
	for _, p := range f.pend {
		ev.Add(p.name, all[p.off:p.end])
	}
	if v, ok := ev.Get("TimeCreated_SystemTime"); ok {
		if t, ok := ParseTime(v); ok {
			ev.Time = t
		}
	}
	if v, ok := ev.Get("EventRecordID"); ok {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			ev.Record = n
		}
	}
	f.Reset()
}

// Reset discards any partial event.
func (f *Flattener) Reset() {
	clear(f.stack)
	f.stack = f.stack[:0]
	f.buf = f.buf[:0]
	clear(f.pend)
	f.pend = f.pend[:0]
	f.items = f.items[:0]
}

func (f *Flattener) top() *frame {
	if n := len(f.stack); n > 0 {
		return &f.stack[n-1]
	}
	return nil
}

func (f *Flattener) intern(b []byte) string {
	if s, ok := f.names[string(b)]; ok {
		return s
	}
	return f.internString(string(b))
}

func (f *Flattener) internString(s string) string {
	if v, ok := f.names[s]; ok {
		return v
	}
	if f.names == nil {
		f.names = make(map[string]string)
	}
	if len(f.names) < maxInterned {
		f.names[s] = s
	}
	return s
}

func (f *Flattener) pairName(elem, attr string) string {
	key := [2]string{elem, attr}
	if s, ok := f.pairs[key]; ok {
		return s
	}
	s := elem + "_" + attr
	if f.pairs == nil {
		f.pairs = make(map[[2]string]string)
	}
	if len(f.pairs) < maxInterned {
		f.pairs[key] = s
	}
	return s
}

// ParseTime parses the SystemTime text form ("2026-07-17T14:18:34.072213Z",
// any number of fraction digits, or an RFC 3339 offset) into a UTC time.
func ParseTime(s string) (time.Time, bool) {
	// Fast path for the fixed form the EVTX reader and evtx_dump produce.
	if len(s) >= 20 && s[len(s)-1] == 'Z' && s[4] == '-' && s[7] == '-' && s[10] == 'T' &&
		s[13] == ':' && s[16] == ':' {
		year, ok1 := digits(s[0:4])
		mon, ok2 := digits(s[5:7])
		day, ok3 := digits(s[8:10])
		hh, ok4 := digits(s[11:13])
		mm, ok5 := digits(s[14:16])
		ss, ok6 := digits(s[17:19])
		nsec, ok7 := 0, true
		if rest := s[19 : len(s)-1]; rest != "" {
			if rest[0] != '.' || len(rest) < 2 || len(rest) > 10 {
				ok7 = false
			} else {
				nsec, ok7 = digits(rest[1:])
				for i := len(rest) - 1; i < 9; i++ {
					nsec *= 10
				}
			}
		}
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && mon >= 1 && mon <= 12 && day >= 1 && day <= 31 &&
			hh < 24 && mm < 60 && ss < 61 {
			return time.Date(year, time.Month(mon), day, hh, mm, ss, nsec, time.UTC), true
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(s) > 0
}
