// Package event defines Vigil's canonical event: one observation from an
// endpoint sensor, a log file or a network source, with its fields named after
// the Sigma taxonomy so that SigmaHQ rules match it unmodified.
//
// Every other package may import event; event imports only the standard
// library.
//
// # Layout
//
// An Event is a flat, ordered list of name/value pairs plus the log source it
// came from (product, service, categories). A field may occur more than once
// (a multi-valued field, such as the unnamed Data elements of a classic
// Windows event); a matcher treats the field as matching when any of its
// values matches. Values are strings: numbers and times are kept in the text
// form the source used, so nothing is lost before a rule looks at them.
//
// Matchers read fields by scanning the list; with the 10 to 60 fields a real
// event has this is faster than building a map per event, and it allocates
// nothing.
//
// # Lower-case view
//
// Sigma compares strings case-insensitively by default. Lower fills, once per
// event, a lower-case copy of every value in one reused buffer; LowerValue and
// Haystack return views into it. The views are valid until the next Reset or
// Add; a caller that keeps a value beyond that must copy it.
//
// # Concurrency
//
// An Event is not safe for concurrent use. Readers reuse one Event per
// goroutine; whatever a consumer keeps must be copied (see Clone).
package event

import (
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Field is one name/value pair of an event.
type Field struct {
	Name  string
	Value string
}

// Event is one observation. The zero value is an empty event ready for use.
type Event struct {
	// Time is when the event happened, as the source recorded it (UTC).
	Time time.Time
	// Product, Services and Categories place the event in the Sigma log source
	// taxonomy, e.g. windows/[sysmon]/[process_creation] or linux/[auditd]/[].
	// An event may belong to several services (an sshd line is both "sshd"
	// and "auth") and several categories (Sysmon event 13 is both
	// registry_event and registry_set). Readers point these at shared,
	// read-only slices; nothing may modify them.
	Product    string
	Services   []string
	Categories []string
	// Source names where the event came from: a file path, an agent id.
	Source string
	// Record is the record number inside Source: the EVTX EventRecordID, the
	// line number of a text log, the sequence number of an agent.
	Record uint64
	// Fields holds the event data in source order.
	Fields []Field

	lowerBuf []byte
	lowerEnd []int32 // lowerEnd[i] is the end offset of field i's lower-case value in lowerBuf
	lowered  bool
}

// Reset empties e for reuse, keeping its buffers.
func (e *Event) Reset() {
	e.Time = time.Time{}
	e.Product, e.Source = "", ""
	e.Services, e.Categories = nil, nil
	e.Record = 0
	clear(e.Fields)
	e.Fields = e.Fields[:0]
	e.lowerBuf = e.lowerBuf[:0]
	e.lowerEnd = e.lowerEnd[:0]
	e.lowered = false
}

// Add appends a field. Invalid UTF-8 in value is replaced so that every
// consumer (JSON output, the console, the store) sees valid text.
func (e *Event) Add(name, value string) {
	if !utf8.ValidString(value) {
		value = strings.ToValidUTF8(value, "\uFFFD")
	}
	e.Fields = append(e.Fields, Field{Name: name, Value: value})
	e.lowered = false
}

// Set replaces the value of the first field called name (case-insensitive), or
// adds the field when it is missing.
func (e *Event) Set(name, value string) {
	for i := range e.Fields {
		if SameName(e.Fields[i].Name, name) {
			e.Fields[i].Value = value
			e.lowered = false
			return
		}
	}
	e.Add(name, value)
}

// Get returns the first value of the field called name (field names compare
// case-insensitively) and whether the field exists.
func (e *Event) Get(name string) (string, bool) {
	for i := range e.Fields {
		if SameName(e.Fields[i].Name, name) {
			return e.Fields[i].Value, true
		}
	}
	return "", false
}

// HasCategory reports whether the event belongs to the Sigma category c.
func (e *Event) HasCategory(c string) bool { return contains(e.Categories, c) }

// HasService reports whether the event belongs to the Sigma service s.
func (e *Event) HasService(s string) bool { return contains(e.Services, s) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// SameName reports whether two field names are equal, ignoring ASCII case.
// It is the one definition of field-name equality in Vigil.
func SameName(a, b string) bool {
	return len(a) == len(b) && (a == b || strings.EqualFold(a, b))
}

// Lower computes the lower-case view of every value, once per event.
func (e *Event) Lower() {
	if e.lowered {
		return
	}
	buf := e.lowerBuf[:0]
	ends := e.lowerEnd[:0]
	for _, f := range e.Fields {
		buf = appendLower(buf, f.Value)
		ends = append(ends, int32(len(buf)))
		buf = append(buf, 0) // separator: no needle spans two values
	}
	e.lowerBuf, e.lowerEnd, e.lowered = buf, ends, true
}

// LowerValue returns the lower-case form of field i's value. Lower must have
// been called since the last change. The result is a view into a buffer the
// event reuses; copy it to keep it.
func (e *Event) LowerValue(i int) string {
	start := int32(0)
	if i > 0 {
		start = e.lowerEnd[i-1] + 1
	}
	b := e.lowerBuf[start:e.lowerEnd[i]]
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// Haystack returns all lower-case values joined by NUL bytes, for scanning
// with a multi-needle matcher. Lower must have been called. The slice is owned
// by the event; do not modify or keep it.
func (e *Event) Haystack() []byte { return e.lowerBuf }

// Clone returns a deep copy of e that shares nothing with it.
func (e *Event) Clone() *Event {
	c := &Event{
		Time:       e.Time,
		Product:    e.Product,
		Services:   e.Services,
		Categories: e.Categories,
		Source:     e.Source,
		Record:     e.Record,
		Fields:     make([]Field, len(e.Fields)),
	}
	// One allocation for all strings keeps the clone compact.
	n := 0
	for _, f := range e.Fields {
		n += len(f.Name) + len(f.Value)
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, f := range e.Fields {
		sb.WriteString(f.Name)
		sb.WriteString(f.Value)
	}
	all := sb.String()
	off := 0
	for i, f := range e.Fields {
		name := all[off : off+len(f.Name)]
		off += len(f.Name)
		c.Fields[i] = Field{Name: name, Value: all[off : off+len(f.Value)]}
		off += len(f.Value)
	}
	return c
}

// appendLower appends the lower-case form of s. ASCII is folded byte by byte;
// other runes go through unicode.ToLower, keeping the byte length stable is
// not required because offsets are recorded per value.
func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return append(dst, strings.ToLower(s[i:])...)
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// ToLower returns s in the same lower-case form that Lower produces, so that
// needles compiled from rules and values read from events agree.
func ToLower(s string) string {
	return string(appendLower(nil, s))
}
