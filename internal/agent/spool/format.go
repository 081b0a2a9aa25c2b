package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The byte layout below is specified in format.md; keep the two in step.
const (
	// MaxPayload is the largest payload Append accepts.
	MaxPayload = 1 << 20

	// maxSeq is the largest sequence number. 2^64-1 is never given out, so
	// seq+1 never wraps: a spool whose next number would be 2^64-1 is
	// exhausted.
	maxSeq = 1<<64 - 2

	segMagic      = "VGSPSEG1"
	segHeaderSize = 24 // magic, boot epoch, first sequence
	recHeaderSize = 16 // length, CRC32C, sequence
	segSuffix     = ".seg"
	segNameDigits = 20

	metaName    = "meta"
	metaTmpName = "meta.tmp"
	lockName    = "lock"
	metaMagic   = "VGSPMETA"
	metaVersion = 1
	metaSize    = 52
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordCRC is the CRC32C of a record's length and sequence fields followed
// by its payload.
func recordCRC(h []byte, payload []byte) uint32 {
	c := crc32.Update(0, castagnoli, h[0:4])
	c = crc32.Update(c, castagnoli, h[8:16])
	return crc32.Update(c, castagnoli, payload)
}

// appendRecord appends the framed record to b. The header is built in b
// itself: a local array would escape to the heap through crc32.
func appendRecord(b []byte, seq uint64, payload []byte) []byte {
	start := len(b)
	b = append(b, make([]byte, recHeaderSize)...)
	b = append(b, payload...)
	h := b[start : start+recHeaderSize]
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint64(h[8:16], seq)
	binary.LittleEndian.PutUint32(h[4:8], recordCRC(h, payload))
	return b
}

func segHeader(epoch, first uint64) []byte {
	b := make([]byte, segHeaderSize)
	copy(b, segMagic)
	binary.LittleEndian.PutUint64(b[8:16], epoch)
	binary.LittleEndian.PutUint64(b[16:24], first)
	return b
}

func segName(first uint64) string {
	return fmt.Sprintf("%0*d%s", segNameDigits, first, segSuffix)
}

// parseSegName returns the first sequence number a segment file name
// declares.
func parseSegName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(digits) != segNameDigits {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return n, true
}

// listSegments returns the first sequence numbers of the segment files in
// dir, ascending.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var firsts []uint64
	for _, e := range entries {
		if first, ok := parseSegName(e.Name()); ok && e.Type().IsRegular() {
			firsts = append(firsts, first)
		}
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
	return firsts, nil
}

// meta is the persisted acknowledgement state.
type meta struct {
	epoch   uint64
	acked   uint64 // highest sequence acknowledged by the sender
	trim    uint64 // every sequence ≤ trim was acknowledged or dropped
	dropped uint64 // unacknowledged records deleted by the bound, ever
}

func (m meta) encode() []byte {
	b := make([]byte, metaSize)
	copy(b, metaMagic)
	binary.LittleEndian.PutUint32(b[8:12], metaVersion)
	binary.LittleEndian.PutUint64(b[16:24], m.epoch)
	binary.LittleEndian.PutUint64(b[24:32], m.acked)
	binary.LittleEndian.PutUint64(b[32:40], m.trim)
	binary.LittleEndian.PutUint64(b[40:48], m.dropped)
	binary.LittleEndian.PutUint32(b[48:52], crc32.Checksum(b[:48], castagnoli))
	return b
}

var errBadMeta = errors.New("invalid meta file")

func decodeMeta(b []byte) (meta, error) {
	if len(b) != metaSize || string(b[:8]) != metaMagic ||
		binary.LittleEndian.Uint32(b[8:12]) != metaVersion ||
		binary.LittleEndian.Uint32(b[48:52]) != crc32.Checksum(b[:48], castagnoli) {
		return meta{}, errBadMeta
	}
	m := meta{
		epoch:   binary.LittleEndian.Uint64(b[16:24]),
		acked:   binary.LittleEndian.Uint64(b[24:32]),
		trim:    binary.LittleEndian.Uint64(b[32:40]),
		dropped: binary.LittleEndian.Uint64(b[40:48]),
	}
	if m.epoch == 0 || m.acked > m.trim || m.trim > maxSeq {
		return meta{}, errBadMeta
	}
	return m, nil
}

// writeMeta replaces dir/meta atomically: write a temporary file, fsync it,
// rename it over meta, fsync the directory.
func writeMeta(dir string, m meta) error {
	tmp := filepath.Join(dir, metaTmpName)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(m.encode())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("spool: write meta: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, metaName)); err != nil {
		return fmt.Errorf("spool: write meta: %w", err)
	}
	return syncDir(dir)
}

// scan is what recovery learned about one segment file.
type scan struct {
	headerOK bool
	epoch    uint64
	last     uint64 // last valid record; first-1 if none
	end      int64  // offset just past the last valid record
	size     int64  // file size
}

// scanSegment reads a segment, checking its header and every record's
// framing, CRC and sequence number, and stops at the first bad record.
// epoch 0 accepts any epoch.
func scanSegment(path string, first, epoch uint64, buf []byte) (scan, error) {
	sc := scan{last: first - 1}
	f, err := os.Open(path)
	if err != nil {
		return sc, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return sc, err
	}
	sc.size = fi.Size()
	br := bufio.NewReaderSize(f, 256<<10)
	var h [segHeaderSize]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return sc, nil
	}
	sc.epoch = binary.LittleEndian.Uint64(h[8:16])
	if string(h[:8]) != segMagic || sc.epoch == 0 || (epoch != 0 && sc.epoch != epoch) ||
		binary.LittleEndian.Uint64(h[16:24]) != first {
		return sc, nil
	}
	sc.headerOK = true
	sc.end = segHeaderSize
	for {
		var rh [recHeaderSize]byte
		if _, err := io.ReadFull(br, rh[:]); err != nil {
			return sc, nil
		}
		n := binary.LittleEndian.Uint32(rh[0:4])
		if n > MaxPayload || sc.last >= maxSeq || binary.LittleEndian.Uint64(rh[8:16]) != sc.last+1 {
			return sc, nil
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		p := buf[:n]
		if _, err := io.ReadFull(br, p); err != nil {
			return sc, nil
		}
		if recordCRC(rh[:], p) != binary.LittleEndian.Uint32(rh[4:8]) {
			return sc, nil
		}
		sc.last++
		sc.end += recHeaderSize + int64(n)
	}
}
