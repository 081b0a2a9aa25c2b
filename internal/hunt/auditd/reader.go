package auditd

import (
	"errors"
	"io"
	"strings"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/hunt/lines"
)

// Shared, read-only log source lists.
var (
	svcAuditd          = []string{"auditd"}
	catProcessCreation = []string{"process_creation"}
)

// Options controls a Reader. The zero value reads records only.
type Options struct {
	// Source is copied into every event.
	Source string
	// MaxLineBytes bounds the line kept; longer lines are cut to this length
	// and counted in Stats.Truncated. Zero means DefaultMaxLine.
	MaxLineBytes int
	// Coalesce adds a process_creation event for every execve syscall, after
	// the records it was built from.
	Coalesce bool
	// MaxPending bounds the serials the coalescer holds; zero means
	// DefaultMaxPending.
	MaxPending int
}

// DefaultMaxLine is the line length kept when Options.MaxLineBytes is zero.
const DefaultMaxLine = 64 << 10

// Stats counts what a Reader has seen.
type Stats struct {
	Lines     uint64 // lines read
	Records   uint64 // record events returned
	Processes uint64 // process_creation events returned
	Empty     uint64 // blank lines
	Malformed uint64 // lines that are not audit records, skipped
	Truncated uint64 // lines cut to MaxLineBytes
	Evicted   uint64 // serials the coalescer emitted early because too many were pending
}

// Reader reads an audit log into events: one per record, and with
// Options.Coalesce one process_creation event per execve. It is not safe for
// concurrent use.
type Reader struct {
	lr      *lines.Reader
	opts    Options
	rec     Record
	co      *Coalescer
	stats   Stats
	eof     bool
	flushed bool
}

// NewReader returns a Reader over r.
func NewReader(r io.Reader, opts Options) *Reader {
	maxLen := opts.MaxLineBytes
	if maxLen <= 0 {
		maxLen = DefaultMaxLine
	}
	rd := &Reader{lr: lines.NewReader(r, maxLen), opts: opts}
	if opts.Coalesce {
		rd.co = NewCoalescer(opts.MaxPending)
	}
	return rd
}

// Next fills ev with the next event. It returns io.EOF at the end and any
// read error of the underlying reader. Lines that are not audit records are
// skipped and counted in Stats.Malformed.
func (r *Reader) Next(ev *event.Event) error {
	for {
		if r.co != nil && r.co.Next(ev) {
			ev.Source = r.opts.Source
			r.stats.Processes++
			return nil
		}
		if r.eof {
			if r.co != nil && !r.flushed {
				r.co.Flush()
				r.flushed = true
				continue
			}
			return io.EOF
		}
		b, err := r.lr.Next()
		r.stats.Lines = r.lr.Line()
		r.stats.Truncated = r.lr.Truncated()
		if errors.Is(err, io.EOF) {
			r.eof = true
			if len(b) == 0 {
				continue
			}
		} else if err != nil {
			return err
		}
		s := string(b)
		if strings.TrimSpace(s) == "" {
			r.stats.Empty++
			continue
		}
		if perr := parseRecord(s, &r.rec); perr != nil {
			r.stats.Malformed++
			continue
		}
		ev.Reset()
		fillEvent(ev, &r.rec)
		ev.Source = r.opts.Source
		ev.Record = r.lr.Line()
		if r.co != nil {
			r.co.Add(&r.rec, r.lr.Line())
		}
		r.stats.Records++
		return nil
	}
}

// Stats returns the counts so far.
func (r *Reader) Stats() Stats {
	s := r.stats
	if r.co != nil {
		s.Evicted = r.co.Evicted()
	}
	return s
}

// fillEvent turns one record into an event: "type" first, then "node", then
// the record's fields in order, then SYSCALL (the syscall's name) when the
// record is a SYSCALL without an enriched section and the number is known.
func fillEvent(ev *event.Event, r *Record) {
	ev.Time = r.Time
	ev.Product = "linux"
	ev.Services = svcAuditd
	ev.Add("type", r.Type)
	if r.Node != "" {
		ev.Add("node", r.Node)
	}
	named := false
	for _, f := range r.Fields {
		ev.Add(f.Name, f.Value)
		named = named || f.Name == "SYSCALL"
	}
	if r.Type == "SYSCALL" && !named {
		arch, _ := r.Get("arch")
		nr, _ := r.Get("syscall")
		if name := syscallName(arch, nr); name != "" {
			ev.Add("SYSCALL", name)
		}
	}
}
