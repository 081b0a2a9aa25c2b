package syslog

import (
	"errors"
	"io"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/hunt/lines"
)

// Stats counts what a Reader has seen.
type Stats struct {
	Lines     uint64 // lines read, including empty and malformed ones
	Events    uint64 // events returned
	Empty     uint64 // blank lines skipped
	Malformed uint64 // lines returned with only a Message (ErrMalformed)
	Truncated uint64 // lines longer than MaxLineBytes, cut to that length
}

// Reader reads a log line by line into events. Memory is bounded by
// Options.MaxLineBytes: a longer line is cut, the rest of it skipped and
// counted in Stats.Truncated. A Reader is not safe for concurrent use.
type Reader struct {
	lr    *lines.Reader
	opts  Options
	stats Stats
}

// NewReader returns a Reader over r.
func NewReader(r io.Reader, opts Options) *Reader {
	maxLen := opts.MaxLineBytes
	if maxLen <= 0 {
		maxLen = DefaultMaxLine
	}
	if opts.Reference.IsZero() {
		opts.Reference = time.Now()
	}
	return &Reader{lr: lines.NewReader(r, maxLen), opts: opts}
}

// Next fills ev with the next non-empty line. It returns io.EOF at the end of
// the input and any read error of the underlying reader. A line whose header
// cannot be read is still returned, with the line as Message, and counted in
// Stats.Malformed. ev.Record is the 1-based line number; ev.Source is
// Options.Source.
func (r *Reader) Next(ev *event.Event) error {
	for {
		b, err := r.lr.Next()
		r.stats.Lines = r.lr.Line()
		r.stats.Truncated = r.lr.Truncated()
		if err != nil && (len(b) == 0 || !errors.Is(err, io.EOF)) {
			return err
		}
		ev.Reset()
		perr := parseString(string(b), &r.opts, ev)
		if errors.Is(perr, ErrEmpty) {
			r.stats.Empty++
			if err != nil {
				return err
			}
			continue
		}
		if perr != nil {
			r.stats.Malformed++
		}
		ev.Source = r.opts.Source
		ev.Record = r.lr.Line()
		r.stats.Events++
		return nil
	}
}

// Stats returns the counts so far.
func (r *Reader) Stats() Stats { return r.stats }
