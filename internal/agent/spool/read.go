package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// reader is the sender's cursor: the segment file it has open and the
// position just after record seq in it.
type reader struct {
	f    *os.File
	path string
	off  int64
	seq  uint64
	br   *bufio.Reader
}

func (r *reader) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
		r.path = ""
	}
}

// Read returns up to maxRecords durable, unacknowledged records with
// sequence numbers above after, in order, holding at most maxBytes of
// payload (but always at least one record if one is available). A limit of
// zero or less means no limit. Numbers of dropped records are skipped.
// An empty result means nothing is durable past after yet.
func (s *Spool) Read(after uint64, maxRecords int, maxBytes int) ([]Record, error) {
	if maxRecords <= 0 {
		maxRecords = math.MaxInt
	}
	if maxBytes <= 0 {
		maxBytes = math.MaxInt
	}
	if after >= maxSeq {
		return nil, nil // no number is above it
	}
	s.readMu.Lock()
	defer s.readMu.Unlock()
	var out []Record
	total := 0
	for len(out) < maxRecords {
		s.mu.Lock()
		if s.err == ErrClosed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		durable := s.durable.Load()
		from := max(after, s.meta.trim) + 1
		var seg segment
		i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].last >= from })
		found := i < len(s.segs)
		if found {
			seg = *s.segs[i]
		}
		s.mu.Unlock()
		if from > durable || !found {
			return out, nil
		}
		n, err := s.readSegment(&seg, from, durable, maxRecords, maxBytes, &out, &total)
		if errors.Is(err, os.ErrNotExist) {
			// Acknowledged or dropped meanwhile: look again.
			continue
		}
		if err != nil {
			return out, err
		}
		if n == 0 {
			return out, nil // a byte limit
		}
		after = out[len(out)-1].Seq
	}
	return out, nil
}

// readSegment appends records from seg with from ≤ seq ≤ min(seg.last,
// durable) to out, within the limits, and returns how many.
func (s *Spool) readSegment(seg *segment, from, durable uint64, maxRecords, maxBytes int, out *[]Record, total *int) (int, error) {
	r := &s.rd
	if r.path != seg.path || r.seq >= from {
		r.close()
		f, err := os.Open(seg.path)
		if err != nil {
			return 0, err
		}
		r.f, r.path, r.off, r.seq = f, seg.path, segHeaderSize, seg.first-1
	}
	if r.br == nil {
		r.br = bufio.NewReaderSize(nil, 256<<10)
	}
	r.br.Reset(io.NewSectionReader(r.f, r.off, math.MaxInt64-r.off))
	last := min(seg.last, durable)
	n := 0
	for r.seq < last && len(*out) < maxRecords {
		var h [recHeaderSize]byte
		if _, err := io.ReadFull(r.br, h[:]); err != nil {
			return n, s.corrupt(seg, r.seq+1, err)
		}
		size := binary.LittleEndian.Uint32(h[0:4])
		seq := binary.LittleEndian.Uint64(h[8:16])
		if size > MaxPayload || seq != r.seq+1 {
			return n, s.corrupt(seg, r.seq+1, errors.New("bad header"))
		}
		if seq < from {
			if _, err := r.br.Discard(int(size)); err != nil {
				return n, s.corrupt(seg, seq, err)
			}
		} else {
			if len(*out) > 0 && *total+int(size) > maxBytes {
				return n, nil
			}
			p := make([]byte, size)
			if _, err := io.ReadFull(r.br, p); err != nil {
				return n, s.corrupt(seg, seq, err)
			}
			if recordCRC(h[:], p) != binary.LittleEndian.Uint32(h[4:8]) {
				return n, s.corrupt(seg, seq, errors.New("CRC mismatch"))
			}
			*out = append(*out, Record{Seq: seq, Payload: p})
			*total += int(size)
			n++
		}
		r.seq = seq
		r.off += recHeaderSize + int64(size)
	}
	return n, nil
}

// corrupt reports a record that recovery accepted (or the committer wrote)
// but that no longer reads back. Close and Open again: recovery cuts the
// segment there.
func (s *Spool) corrupt(seg *segment, seq uint64, err error) error {
	s.rd.close()
	return fmt.Errorf("%w: %s, sequence %d: %v", ErrCorrupt, seg.path, seq, err)
}

// Ack records that every record with a sequence number ≤ through was
// delivered. When that lets segments go, meta is persisted (fsynced) before
// Ack returns and the segments are then deleted; otherwise meta is written
// by the committer within Options.AckEvery. Acking a number the spool has
// not yet reported durable is an error.
func (s *Spool) Ack(through uint64) error {
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return err
	}
	if through <= s.meta.acked {
		s.mu.Unlock()
		return nil
	}
	if d := max(s.durable.Load(), s.meta.trim); through > d {
		s.mu.Unlock()
		return fmt.Errorf("%w: %d > %d", ErrAckBeyondDurable, through, d)
	}
	s.meta.acked = through
	s.meta.trim = max(s.meta.trim, through)
	s.gen++
	gen := s.gen
	var doomed []string
	for len(s.segs) > 1 && s.segs[0].last <= s.meta.trim {
		doomed = append(doomed, s.segs[0].path)
		s.bytes -= s.segs[0].size
		s.segs = s.segs[1:]
	}
	s.mu.Unlock()
	if len(doomed) == 0 && s.opts.AckEvery > 0 {
		return nil // written by the committer within AckEvery (persistAcks)
	}
	if err := s.persist(gen); err != nil {
		return err
	}
	removeAll(doomed)
	return nil
}
