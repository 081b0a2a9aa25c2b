package wire

import (
	"time"
	"unicode/utf8"

	"github.com/vigil-edr/vigil/internal/event"
)

// Version is the batch format version this package writes and reads.
const Version = 1

// Batch is one request body: events from one agent run (boot epoch) in
// strictly increasing sequence order.
type Batch struct {
	Version   int     `json:"v"`
	BootEpoch uint64  `json:"boot_epoch"`
	Events    []Event `json:"events"`
}

// Event is one event as it travels on the wire.
type Event struct {
	Seq        uint64    `json:"seq"`
	Time       time.Time `json:"time"`
	Product    string    `json:"product"`
	Services   []string  `json:"services,omitempty"`
	Categories []string  `json:"categories,omitempty"`
	Fields     Fields    `json:"fields"`
}

// Fields is an event's ordered name/value pairs; JSON ["name","value"] arrays.
// A name may repeat.
type Fields []event.Field

// Limits bound what Decode accepts. A zero field takes its default.
type Limits struct {
	MaxBytes      int // decompressed body size; default 4 MiB
	MaxEvents     int // events per batch; default 5,000
	MaxEventBytes int // one event's JSON; default 256 KiB
	MaxDepth      int // JSON nesting depth; default 32
}

// Default limits.
const (
	DefaultMaxBytes      = 4 << 20
	DefaultMaxEvents     = 5000
	DefaultMaxEventBytes = 256 << 10
	DefaultMaxDepth      = 32
)

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxEvents <= 0 {
		l.MaxEvents = DefaultMaxEvents
	}
	if l.MaxEventBytes <= 0 {
		l.MaxEventBytes = DefaultMaxEventBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	return l
}

// FirstSeq and LastSeq return the sequence numbers of the first and last
// event; 0 for an empty batch.
func (b *Batch) FirstSeq() uint64 {
	if len(b.Events) == 0 {
		return 0
	}
	return b.Events[0].Seq
}

// LastSeq returns the last (and, in a valid batch, largest) sequence number.
func (b *Batch) LastSeq() uint64 {
	if len(b.Events) == 0 {
		return 0
	}
	return b.Events[len(b.Events)-1].Seq
}

// Validate checks everything about b that does not depend on its encoded
// size: version, boot epoch, at least one event, strictly increasing
// sequence numbers, required event fields and valid UTF-8 in every string.
// Decode calls it; Encode calls it so an agent never sends what the server
// will refuse.
func (b *Batch) Validate() *Error { return b.validate(true) }

// validate is Validate; checkUTF8 false skips the UTF-8 checks, for strings
// known to be valid.
func (b *Batch) validate(checkUTF8 bool) *Error {
	if err := batchError(b.Version, b.BootEpoch, len(b.Events)); err != nil {
		return err
	}
	var prev uint64
	for i := range b.Events {
		e := &b.Events[i]
		if err := e.validate(i, checkUTF8); err != nil {
			return err
		}
		if e.Seq <= prev {
			return seqError(i, e.Seq, prev)
		}
		prev = e.Seq
	}
	return nil
}

// batchError checks a batch's version, boot epoch and event count.
func batchError(version int, bootEpoch uint64, events int) *Error {
	if version != Version {
		return errorf(CodeBadVersion, "version %d is not supported (want %d)", version, Version)
	}
	if bootEpoch == 0 {
		return errorf(CodeBadBatch, "boot_epoch is missing or 0")
	}
	if events == 0 {
		return errorf(CodeBadBatch, "events is missing or empty")
	}
	return nil
}

func seqError(i int, seq, prev uint64) *Error {
	return errorf(CodeBadBatch, "event %d: seq %d does not follow %d (sequence numbers must strictly increase)", i, seq, prev)
}

func (e *Event) validate(i int, checkUTF8 bool) *Error {
	switch {
	case e.Seq == 0:
		return errorf(CodeBadEvent, "event %d: seq is missing or 0", i)
	case e.Time.IsZero():
		return errorf(CodeBadEvent, "event %d: time is missing", i)
	case e.Product == "":
		return errorf(CodeBadEvent, "event %d: product is missing", i)
	case e.Fields == nil:
		return errorf(CodeBadEvent, "event %d: fields is missing", i)
	}
	if checkUTF8 && (!validStrings(e.Product) || !validStrings(e.Services...) || !validStrings(e.Categories...)) {
		return errorf(CodeInvalidUTF8, "event %d: invalid UTF-8 in its log source", i)
	}
	for j, f := range e.Fields {
		if f.Name == "" {
			return errorf(CodeBadEvent, "event %d: field %d has an empty name", i, j)
		}
		if checkUTF8 && (!utf8.ValidString(f.Name) || !utf8.ValidString(f.Value)) {
			return errorf(CodeInvalidUTF8, "event %d: field %d is not valid UTF-8", i, j)
		}
	}
	for _, s := range e.Services {
		if s == "" {
			return errorf(CodeBadEvent, "event %d: empty service name", i)
		}
	}
	for _, s := range e.Categories {
		if s == "" {
			return errorf(CodeBadEvent, "event %d: empty category name", i)
		}
	}
	return nil
}

func validStrings(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// ToEvent fills ev (after resetting it) with e: time in UTC, log source,
// Record = Seq, and the fields in order. ev.Source is left empty for the
// caller to set to the agent id. ev shares e's Services and Categories slices
// and its strings; neither may be modified afterwards.
func (e *Event) ToEvent(ev *event.Event) {
	ev.Reset()
	ev.Time = e.Time.UTC()
	ev.Product = e.Product
	ev.Services = e.Services
	ev.Categories = e.Categories
	ev.Record = e.Seq
	ev.Fields = append(ev.Fields, e.Fields...)
}

// FromEvent returns ev as a wire event with sequence number seq. The result
// shares ev's strings and log source slices; ev.Source and ev.Record are
// not carried (the server knows the agent, seq is the record).
func FromEvent(seq uint64, ev *event.Event) Event {
	return Event{
		Seq:        seq,
		Time:       ev.Time,
		Product:    ev.Product,
		Services:   ev.Services,
		Categories: ev.Categories,
		Fields:     append(make(Fields, 0, len(ev.Fields)), ev.Fields...),
	}
}
