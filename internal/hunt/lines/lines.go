// Package lines reads a text log line by line in bounded memory. A line
// longer than the limit is cut to the limit, the rest of it is skipped and
// the cut is counted, so one hostile line can neither exhaust memory nor hide
// the lines after it.
//
// hunt/syslog and hunt/auditd read through it. It imports only the standard
// library, so the agent may use it too. A Reader is not safe for concurrent
// use.
package lines

import (
	"bufio"
	"errors"
	"io"
)

// minBuffer is bufio's smallest buffer.
const minBuffer = 16

// Reader returns the lines of an io.Reader.
type Reader struct {
	br        *bufio.Reader
	max       int
	line      uint64
	truncated uint64
}

// NewReader returns a Reader over r that keeps at most maxLen bytes of a
// line; maxLen must be positive.
func NewReader(r io.Reader, maxLen int) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, max(maxLen, minBuffer)), max: maxLen}
}

// Next returns the next line, with its newline when it has one and fits the
// limit, cut to the limit. The slice is valid until the next call. At the end of the input it returns
// io.EOF, together with the last line when that line has no newline; any
// other error is the underlying reader's.
func (r *Reader) Next() ([]byte, error) {
	b, err := r.br.ReadSlice('\n')
	if len(b) == 0 && err != nil {
		return nil, err
	}
	r.line++
	if errors.Is(err, bufio.ErrBufferFull) {
		r.truncated++
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
		r.truncated++
		b = b[:r.max]
	}
	return b, err
}

// Line is the number of lines returned so far, which is the 1-based number
// of the last one.
func (r *Reader) Line() uint64 { return r.line }

// Truncated is the number of lines cut to the limit.
func (r *Reader) Truncated() uint64 { return r.truncated }
