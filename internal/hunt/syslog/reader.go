package syslog

import (
	"bufio"
	"errors"
	"io"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
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
	br    *bufio.Reader
	opts  Options
	max   int
	line  uint64
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
	size := maxLen
	if size < 16 {
		size = 16 // bufio's minimum
	}
	return &Reader{br: bufio.NewReaderSize(r, size), opts: opts, max: maxLen}
}

// Next fills ev with the next non-empty line. It returns io.EOF at the end of
// the input and any read error of the underlying reader. A line whose header
// cannot be read is still returned, with the line as Message, and counted in
// Stats.Malformed. ev.Record is the 1-based line number; ev.Source is
// Options.Source.
func (r *Reader) Next(ev *event.Event) error {
	for {
		b, err := r.readLine()
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
		ev.Record = r.line
		r.stats.Events++
		return nil
	}
}

// readLine returns the next line without its newline, cut to r.max bytes.
// The slice is valid until the next call.
func (r *Reader) readLine() ([]byte, error) {
	b, err := r.br.ReadSlice('\n')
	if len(b) == 0 && err != nil {
		return nil, err
	}
	r.line++
	r.stats.Lines++
	if errors.Is(err, bufio.ErrBufferFull) {
		r.stats.Truncated++
		// Keep a copy of the head: skipping the rest reuses the buffer.
		kept := string(b[:min(len(b), r.max)])
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = r.br.ReadSlice('\n')
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		return []byte(kept), nil
	}
	if len(b) > r.max {
		b = b[:r.max]
	}
	return b, err
}

// Stats returns the counts so far.
func (r *Reader) Stats() Stats { return r.stats }
