package evtx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/hunt/winevent"
)

const (
	fileHeaderSize  = 4096
	chunkSize       = 65536
	chunkHeaderSize = 512
	recordHeader    = 24 // magic, size, record id, written time
	minRecordSize   = recordHeader + 4
)

var (
	fileMagic   = []byte("ElfFile\x00")
	chunkMagic  = []byte("ElfChnk\x00")
	recordMagic = []byte("**\x00\x00")
	zeroMagic   = make([]byte, 8)
)

// ErrNotEVTX is returned by NewReader when the file does not start with an
// EVTX file header.
var ErrNotEVTX = errors.New("evtx: not an EVTX file")

// DefaultMaxWarnings is how many warning messages Stats keeps when
// Options.MaxWarnings is zero.
const DefaultMaxWarnings = 20

// Options configure a Reader. The zero value is valid.
type Options struct {
	// Source is stored in every event's Source field (e.g. the file path).
	Source string
	// MaxWarnings bounds the warning messages kept in Stats (all warnings
	// are still counted). Zero means DefaultMaxWarnings.
	MaxWarnings int
}

// Warning describes one problem found while reading.
type Warning struct {
	Chunk  int   // chunk index, -1 for the file header
	Offset int64 // byte offset in the file
	Msg    string
}

func (w Warning) String() string {
	if w.Chunk < 0 {
		return fmt.Sprintf("file header: %s", w.Msg)
	}
	return fmt.Sprintf("chunk %d, offset %#x: %s", w.Chunk, w.Offset, w.Msg)
}

// Stats counts what a Reader has read and skipped so far.
type Stats struct {
	Chunks         int // chunks whose records were read
	Records        int // records returned by Next
	SkippedChunks  int // chunks skipped as corrupt
	SkippedRecords int // records skipped as corrupt
	Warnings       int // all problems, including the ones not kept below
	// Messages holds the first Options.MaxWarnings warnings.
	Messages []Warning
}

// Reader streams the records of one EVTX file, one chunk (64 KiB) at a time.
type Reader struct {
	r    io.ReaderAt
	size int64
	opts Options

	slots     int // chunk slots in the file, counting a truncated last one
	declared  int // chunk count from the file header
	next      int // index of the next chunk to load
	chunk     []byte
	chunkIdx  int
	chunkOff  int64
	pos, end  int // next record offset and end of the record area in chunk
	loaded    bool
	stats     Stats
	p         parser
	headerBuf [fileHeaderSize]byte
}

// NewReader checks the file header and returns a Reader positioned before the
// first record. It fails with ErrNotEVTX when the header magic is wrong or the
// file is shorter than a header; a bad header checksum is only a warning and
// the chunks are still read.
func NewReader(r io.ReaderAt, size int64, opts Options) (*Reader, error) {
	rd := &Reader{chunk: make([]byte, chunkSize)}
	rd.p.init()
	if err := rd.Reset(r, size, opts); err != nil {
		return nil, err
	}
	return rd, nil
}

// Reset makes the Reader read another file, as NewReader would, keeping its
// buffers and interned names so that reading many files allocates less. On
// error the Reader has no records to return.
func (r *Reader) Reset(ra io.ReaderAt, size int64, opts Options) error {
	if opts.MaxWarnings <= 0 {
		opts.MaxWarnings = DefaultMaxWarnings
	}
	r.r, r.size, r.opts = ra, size, opts
	r.slots, r.declared, r.next, r.loaded = 0, 0, 0, false
	r.stats = Stats{}
	if size < 128 {
		return ErrNotEVTX
	}
	h := r.headerBuf[:min(size, fileHeaderSize)]
	if n, err := ra.ReadAt(h, 0); n < 128 {
		return fmt.Errorf("evtx: reading file header: %w", err)
	}
	if !bytes.Equal(h[:8], fileMagic) {
		return ErrNotEVTX
	}
	if got, want := crc32.ChecksumIEEE(h[:120]), binary.LittleEndian.Uint32(h[124:]); got != want {
		r.warn(-1, 0, fmt.Sprintf("header checksum %#08x, computed %#08x", want, got))
	}
	r.declared = int(binary.LittleEndian.Uint16(h[42:]))
	if size > fileHeaderSize {
		r.slots = int((size - fileHeaderSize + chunkSize - 1) / chunkSize)
	}
	if size < fileHeaderSize {
		r.warn(-1, 0, fmt.Sprintf("file truncated to %d bytes, no chunks", size))
	}
	return nil
}

// Stats returns the counts so far. The Messages slice is shared with the
// Reader; copy it to keep it across calls to Next.
func (r *Reader) Stats() Stats { return r.stats }

// Next fills ev with the next record (after ev.Reset) and returns nil, or
// returns io.EOF when no record is left. Corrupt chunks and records are
// skipped and counted in Stats; Next returns another error only when reading
// from the underlying io.ReaderAt fails.
//
// The field values of ev share one string per record; they stay valid after
// the next call to Next (nothing is overwritten), but keeping one value keeps
// the record's text alive.
func (r *Reader) Next(ev *event.Event) error {
	for {
		if !r.loaded {
			ok, err := r.loadChunk()
			if err != nil {
				return err
			}
			if !ok {
				return io.EOF
			}
			continue
		}
		if r.end-r.pos < minRecordSize {
			r.loaded = false
			continue
		}
		c := r.chunk
		if !bytes.Equal(c[r.pos:r.pos+4], recordMagic) {
			if allZero(c[r.pos:r.end]) {
				r.loaded = false // padding after the last record
				continue
			}
			r.skipRecord("bad record magic")
			continue
		}
		size := int(binary.LittleEndian.Uint32(c[r.pos+4:]))
		if size < minRecordSize || size > r.end-r.pos {
			r.skipRecord(fmt.Sprintf("bad record size %d", size))
			continue
		}
		if copySize := int(binary.LittleEndian.Uint32(c[r.pos+size-4:])); copySize != size {
			r.skipRecord(fmt.Sprintf("record size %d, trailing copy %d", size, copySize))
			continue
		}
		start := r.pos
		r.pos += size
		id := binary.LittleEndian.Uint64(c[start+8:])
		ev.Reset()
		if err := r.p.record(ev, start+recordHeader, start+size-4); err != nil {
			ev.Reset()
			r.stats.SkippedRecords++
			r.warn(r.chunkIdx, r.chunkOff+int64(start), fmt.Sprintf("record %d: %v", id, err))
			continue
		}
		ev.Source = r.opts.Source
		if ev.Record == 0 {
			ev.Record = id
		}
		winevent.Classify(ev)
		r.stats.Records++
		return nil
	}
}

// skipRecord counts a corrupt record and moves to the next record magic in
// the chunk, if any.
func (r *Reader) skipRecord(msg string) {
	r.stats.SkippedRecords++
	r.warn(r.chunkIdx, r.chunkOff+int64(r.pos), msg)
	if i := bytes.Index(r.chunk[r.pos+1:r.end], recordMagic); i >= 0 {
		r.pos += 1 + i
	} else {
		r.pos = r.end
	}
}

// loadChunk reads and checks the next chunk. It returns false at the end of
// the file.
func (r *Reader) loadChunk() (bool, error) {
	for r.next < r.slots {
		idx := r.next
		r.next++
		off := fileHeaderSize + int64(idx)*chunkSize
		avail := int(min(r.size-off, chunkSize))
		c := r.chunk
		n, err := r.r.ReadAt(c[:avail], off)
		if n < avail {
			if err == nil || err == io.EOF {
				avail = n
			} else {
				return false, fmt.Errorf("evtx: reading chunk %d: %w", idx, err)
			}
		}
		clear(c[avail:])
		if avail < chunkHeaderSize {
			if !allZero(c[:avail]) {
				r.skipChunk(idx, off, fmt.Sprintf("chunk truncated to %d bytes", avail))
			}
			continue
		}
		if !bytes.Equal(c[:8], chunkMagic) {
			if bytes.Equal(c[:8], zeroMagic) || idx >= r.declared && allZero(c[:chunkHeaderSize]) {
				continue // unused chunk slot
			}
			r.skipChunk(idx, off, "bad chunk magic")
			continue
		}
		crc := crc32.ChecksumIEEE(c[:120])
		crc = crc32.Update(crc, crc32.IEEETable, c[128:chunkHeaderSize])
		if want := binary.LittleEndian.Uint32(c[124:]); crc != want {
			r.skipChunk(idx, off, fmt.Sprintf("chunk header checksum %#08x, computed %#08x", want, crc))
			continue
		}
		free := int(binary.LittleEndian.Uint32(c[48:]))
		if free < chunkHeaderSize || free > chunkSize {
			r.skipChunk(idx, off, fmt.Sprintf("bad free space offset %d", free))
			continue
		}
		if avail < chunkSize {
			// A truncated last chunk: the record checksum cannot match, so
			// read the records that are complete and say so.
			r.warn(idx, off, fmt.Sprintf("chunk truncated to %d bytes; reading the complete records", avail))
			free = min(free, avail)
		} else {
			crc := crc32.ChecksumIEEE(c[chunkHeaderSize:free])
			if want := binary.LittleEndian.Uint32(c[52:]); crc != want {
				r.skipChunk(idx, off, fmt.Sprintf("record area checksum %#08x, computed %#08x", want, crc))
				continue
			}
		}
		r.chunkIdx, r.chunkOff = idx, off
		r.pos, r.end = chunkHeaderSize, free
		r.loaded = true
		r.stats.Chunks++
		r.p.reset(c)
		return true, nil
	}
	return false, nil
}

func (r *Reader) skipChunk(idx int, off int64, msg string) {
	r.stats.SkippedChunks++
	r.warn(idx, off, msg)
}

func (r *Reader) warn(chunk int, off int64, msg string) {
	r.stats.Warnings++
	if len(r.stats.Messages) < r.opts.MaxWarnings {
		r.stats.Messages = append(r.stats.Messages, Warning{Chunk: chunk, Offset: off, Msg: msg})
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
