package evtx

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/vigil-edr/vigil/internal/event"
)

var writeSeeds = flag.Bool("write-seeds", false, "rewrite testdata/fuzz/FuzzReader seeds from the test builder")

// fuzzSeeds are small files made by the test builder: the chunk is cut after
// its last record (so it reads as a truncated chunk and needs no record
// checksum), plus variants that exercise the corruption paths.
func fuzzSeeds() map[string][]byte {
	trim := func(b []byte) []byte {
		free := int(binary.LittleEndian.Uint32(b[fileHeaderSize+48:]))
		return b[:fileHeaderSize+free]
	}
	seeds := map[string][]byte{}
	seeds["two-records"] = trim(buildFile(buildChunk(1, 2)))
	badMagic := trim(buildFile(buildChunk(1, 3)))
	badMagic[fileHeaderSize+recordOffsets(badMagic[fileHeaderSize:])[1]] = 'X'
	seeds["bad-record-magic"] = badMagic
	hdr := trim(buildFile(buildChunk(1, 2)))
	hdr[60] = 1
	seeds["bad-header-crc"] = hdr
	seeds["header-only"] = buildFile()[:fileHeaderSize]
	return seeds
}

// FuzzReader feeds arbitrary files to the reader. Each input is read as is
// and again with its chunk checksums repaired, so that mutations reach the
// record and Binary XML parsers instead of stopping at a CRC mismatch.
func FuzzReader(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRead(t, data)
		fixed := bytes.Clone(data)
		for off := fileHeaderSize; off+chunkHeaderSize <= len(fixed); off += chunkSize {
			fixCRCs(fixed[off:min(off+chunkSize, len(fixed))])
		}
		fuzzRead(t, fixed)
	})
}

func fuzzRead(t *testing.T, data []byte) {
	r, err := NewReader(bytes.NewReader(data), int64(len(data)), Options{MaxWarnings: 3})
	if err != nil {
		return
	}
	var ev event.Event
	n := 0
	for r.Next(&ev) == nil {
		n++
		for _, f := range ev.Fields {
			if !utf8.ValidString(f.Name) || !utf8.ValidString(f.Value) {
				t.Fatalf("invalid UTF-8 in %q=%q", f.Name, f.Value)
			}
		}
	}
	st := r.Stats()
	if st.Records != n || len(st.Messages) > 3 || len(st.Messages) > st.Warnings {
		t.Fatalf("stats %+v after %d records", st, n)
	}
}

// TestWriteFuzzSeeds rewrites the committed seed corpus when run with
// -write-seeds.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeSeeds {
		t.Skip("run with -write-seeds to rewrite testdata/fuzz/FuzzReader")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzReader")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range fuzzSeeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(data)))
		if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
