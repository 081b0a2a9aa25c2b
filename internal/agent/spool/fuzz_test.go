package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var writeSeeds = flag.Bool("write-seeds", false, "rewrite testdata/fuzz/FuzzRecover seeds from the spool writer")

// The fuzz input's first byte picks what the rest of it replaces in a valid
// spool directory (fuzzSpool): the last segment's whole content, bytes
// appended to it, or the meta file. The "fixed" modes repair checksums
// first, so that mutations reach the checks behind the CRCs (sequence
// numbers, acked/trim, epochs) instead of stopping at a CRC mismatch.
const (
	fuzzSegment      = iota // last segment := data
	fuzzSegmentAdd          // last segment += data
	fuzzMeta                // meta := data
	fuzzMetaFixed           // meta := magic, version, data[:36] as reserved..dropped, CRC
	fuzzSegmentFixed        // last segment := data with every whole record's CRC repaired
	fuzzModes
)

// fuzzEpoch is the boot epoch of the template spool; the seeds' segment
// headers carry it.
const fuzzEpoch = 1_700_000_000_000_000_000

// fuzzOptions keep segments tiny (three records of payloadFor(i), i < 10),
// so the template has two segments and an Append may rotate.
func fuzzOptions(dir string) Options {
	o := quiet(dir)
	o.SegmentBytes = int64(segHeaderSize + 3*(recHeaderSize+len("event-0")))
	o.MaxBytes = 1 << 20
	o.Now = func() time.Time { return time.Unix(0, fuzzEpoch) }
	return o
}

var (
	fuzzTemplateOnce sync.Once
	fuzzTemplate     map[string][]byte // file name -> content
	fuzzTemplateErr  error
)

// fuzzSpool returns the files of a valid spool: records 1..3 in segment 1,
// 4..6 in segment 4 (the last one), all durable, 1..2 acknowledged.
func fuzzSpool(tb testing.TB) map[string][]byte {
	tb.Helper()
	fuzzTemplateOnce.Do(func() {
		dir, err := os.MkdirTemp("", "spool-fuzz-template")
		if err != nil {
			fuzzTemplateErr = err
			return
		}
		defer os.RemoveAll(dir)
		fuzzTemplate, fuzzTemplateErr = buildFuzzSpool(dir)
	})
	if fuzzTemplateErr != nil {
		tb.Fatal(fuzzTemplateErr)
	}
	return fuzzTemplate
}

func buildFuzzSpool(dir string) (map[string][]byte, error) {
	s, err := Open(fuzzOptions(dir))
	if err != nil {
		return nil, err
	}
	for i := range 6 {
		if _, err := s.Append(payloadFor(i)); err != nil {
			s.Close()
			return nil, err
		}
	}
	err = s.Sync()
	if err == nil {
		err = s.Ack(2)
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, name := range []string{metaName, segName(1), segName(4)} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		files[name] = b
	}
	if segs, err := listSegments(dir); err != nil || len(segs) != 2 {
		return nil, fmt.Errorf("template spool has segments %v (%v), want [1 4]", segs, err)
	}
	return files, nil
}

// fixSegmentCRCs sets the CRC of every whole record after the header.
func fixSegmentCRCs(b []byte) {
	for off := segHeaderSize; off+recHeaderSize <= len(b); {
		n := binary.LittleEndian.Uint32(b[off:])
		if n > MaxPayload || off+recHeaderSize+int(n) > len(b) {
			return
		}
		h := b[off : off+recHeaderSize]
		binary.LittleEndian.PutUint32(h[4:8], recordCRC(h, b[off+recHeaderSize:off+recHeaderSize+int(n)]))
		off += recHeaderSize + int(n)
	}
}

func fixedMeta(data []byte) []byte {
	b := make([]byte, metaSize)
	copy(b, metaMagic)
	binary.LittleEndian.PutUint32(b[8:12], metaVersion)
	copy(b[12:48], data)
	binary.LittleEndian.PutUint32(b[48:52], crc32.Checksum(b[:48], castagnoli))
	return b
}

// fuzzSeeds are inputs for every mode built from the template spool: the
// valid files and the classic kinds of damage.
func fuzzSeeds(tb testing.TB) map[string][]byte {
	tpl := fuzzSpool(tb)
	seg, mt := tpl[segName(4)], tpl[metaName]
	in := func(mode byte, parts ...[]byte) []byte {
		return append([]byte{mode}, bytes.Join(parts, nil)...)
	}
	last := len(seg) - (recHeaderSize + len("event-5")) // offset of record 6
	badCRC := bytes.Clone(seg)
	badCRC[last+4] ^= 0xff
	huge := appendRecord(nil, 7, []byte("x"))
	binary.LittleEndian.PutUint32(huge, 0xFFFFFFFF)
	gap := bytes.Clone(seg[:last])
	gap = appendRecord(gap, 9, []byte("gap")) // CRC valid, sequence wrong
	meta := func(epoch, acked, trim, dropped uint64) []byte {
		b := make([]byte, 36)
		binary.LittleEndian.PutUint64(b[4:], epoch)
		binary.LittleEndian.PutUint64(b[12:], acked)
		binary.LittleEndian.PutUint64(b[20:], trim)
		binary.LittleEndian.PutUint64(b[28:], dropped)
		return b
	}
	const maxU64 = ^uint64(0)
	return map[string][]byte{
		"segment-valid":            in(fuzzSegment, seg),
		"segment-torn-record":      in(fuzzSegment, seg[:len(seg)-3]),
		"segment-corrupt-crc":      in(fuzzSegment, badCRC),
		"segment-length-ffffffff":  in(fuzzSegment, seg[:last], huge),
		"segment-truncated-header": in(fuzzSegment, seg[:10]),
		"segment-header-only":      in(fuzzSegment, seg[:segHeaderSize]),
		"segment-empty":            in(fuzzSegment),
		"append-next-record":       in(fuzzSegmentAdd, appendRecord(nil, 7, []byte("next"))),
		"append-length-ffffffff":   in(fuzzSegmentAdd, huge),
		"append-torn-header":       in(fuzzSegmentAdd, huge[:7]),
		"append-zeros":             in(fuzzSegmentAdd, make([]byte, 64)),
		"fixed-sequence-gap":       in(fuzzSegmentFixed, gap),
		"fixed-valid":              in(fuzzSegmentFixed, seg),
		"meta-valid":               in(fuzzMeta, mt),
		"meta-truncated":           in(fuzzMeta, mt[:30]),
		"meta-corrupt-crc":         in(fuzzMeta, mt[:metaSize-1], []byte{mt[metaSize-1] ^ 1}),
		"meta-fixed-valid":         in(fuzzMetaFixed, mt[12:48]),
		"meta-fixed-other-epoch":   in(fuzzMetaFixed, meta(fuzzEpoch+1, 2, 2, 0)),
		"meta-fixed-acked-past":    in(fuzzMetaFixed, meta(fuzzEpoch, 3, 2, 0)),
		"meta-fixed-trim-ahead":    in(fuzzMetaFixed, meta(fuzzEpoch, 2, 100, 7)),
		"meta-fixed-trim-max":      in(fuzzMetaFixed, meta(fuzzEpoch, maxU64, maxU64, 0)),
		"meta-fixed-trim-max-1":    in(fuzzMetaFixed, meta(fuzzEpoch, 0, maxU64-1, 0)),
		"meta-fixed-trim-max-2":    in(fuzzMetaFixed, meta(fuzzEpoch, 0, maxU64-2, 0)),
	}
}

// FuzzRecover damages a valid spool directory (see the fuzz* modes) and
// checks that Open either fails cleanly or recovers a spool that reads
// records in increasing order and numbers new records after every one it
// read and every acknowledged one, and that keeps doing so across a reopen.
func FuzzRecover(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		files := map[string][]byte{}
		for name, b := range fuzzSpool(t) {
			files[name] = b
		}
		mode, rest := data[0]%fuzzModes, data[1:]
		last := segName(4)
		switch mode {
		case fuzzSegment:
			files[last] = rest
		case fuzzSegmentAdd:
			files[last] = append(bytes.Clone(files[last]), rest...)
		case fuzzMeta:
			files[metaName] = rest
		case fuzzMetaFixed:
			files[metaName] = fixedMeta(rest)
		case fuzzSegmentFixed:
			files[last] = bytes.Clone(rest)
			fixSegmentCRCs(files[last])
		}
		dir := t.TempDir()
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		top := fuzzRound(t, dir, 0)
		fuzzRound(t, dir, top)
	})
}

// fuzzRound opens the spool in dir, reads everything, appends, syncs, reads
// the new record back, acks it and closes. floor is a sequence number the
// previous round handed out: everything new must be above it. It returns the
// sequence number it appended (0 if Open failed).
func fuzzRound(t *testing.T, dir string, floor uint64) uint64 {
	s, err := Open(fuzzOptions(dir))
	if err != nil {
		if floor != 0 {
			t.Fatalf("reopen after a clean close: %v", err)
		}
		if !strings.HasPrefix(err.Error(), "spool: ") {
			t.Fatalf("Open error without context: %v", err)
		}
		return 0
	}
	defer s.Close()
	s.mu.Lock()
	trim, next := s.meta.trim, s.next
	s.mu.Unlock()
	if next <= trim || next <= floor {
		t.Fatalf("after Open next = %d, trim = %d, floor = %d", next, trim, floor)
	}
	st := s.Stats()
	top := max(st.Acked, floor)
	durable := s.Durable()
	var after uint64
	for reads := 0; ; reads++ {
		if reads > 1000 {
			t.Fatal("Read does not make progress")
		}
		recs, err := s.Read(after, 2, 0)
		if err != nil {
			t.Fatalf("Read(%d) after recovery: %v", after, err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if r.Seq <= top || r.Seq <= trim || r.Seq > durable {
				t.Fatalf("Read returned seq %d after %d (acked %d, trim %d, durable %d)", r.Seq, top, st.Acked, trim, durable)
			}
			top = r.Seq
		}
		after = top
	}
	payload := []byte("fuzz")
	seq, err := s.Append(payload)
	if errors.Is(err, ErrExhausted) && next > maxSeq {
		return next - 1 // nothing to read back; a reopen must still work
	}
	if err != nil {
		t.Fatalf("Append after recovery: %v", err)
	}
	if seq <= top || seq <= trim {
		t.Fatalf("Append = %d, not above %d (read or acked) and trim %d", seq, top, trim)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Read(top, 0, 0)
	if err != nil || len(recs) != 1 || recs[0].Seq != seq || !bytes.Equal(recs[0].Payload, payload) {
		t.Fatalf("Read(%d) after Append(%d) = %v, %v", top, seq, recs, err)
	}
	if err := s.Ack(seq); err != nil {
		t.Fatalf("Ack(%d): %v", seq, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return seq
}

// TestWriteFuzzSeeds rewrites the committed seed corpus.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeSeeds {
		t.Skip("run with -write-seeds to rewrite testdata/fuzz/FuzzRecover")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzRecover")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range fuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(data)))
		if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
