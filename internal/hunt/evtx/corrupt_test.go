package evtx

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-edr/vigil/internal/event"
)

func TestBuiltFile(t *testing.T) {
	evs, st := readBytes(t, buildFile(buildChunk(100, 2)))
	if len(evs) != 2 || st.Chunks != 1 || st.Records != 2 || st.Warnings != 0 {
		t.Fatalf("got %d events, stats %+v", len(evs), st)
	}
	want := []event.Field{
		{Name: "Provider_Name", Value: "Test-Provider"},
		{Name: "EventID", Value: "4688"},
		{Name: "TimeCreated_SystemTime", Value: "2026-07-17T14:18:34.072213Z"},
		{Name: "EventRecordID", Value: "101"},
		{Name: "Channel", Value: "Security"},
		{Name: "Computer", Value: "host"},
		{Name: "Security_UserID", Value: "S-1-5-21-1-1001"},
		{Name: "Image", Value: `C:\Windows\System32\cmd.exe`},
		{Name: "Flags", Value: "0x8020000000000000"},
		{Name: "Items", Value: "x"},
		{Name: "Items", Value: "y"},
		{Name: "Data", Value: "a & & b!c"},
		// Classify's alias is not added: the event already has Image.
	}
	ev := evs[1]
	if len(ev.Fields) != len(want) {
		t.Fatalf("fields:\n%v\nwant:\n%v", ev.Fields, want)
	}
	for i := range want {
		if ev.Fields[i] != want[i] {
			t.Errorf("field %d = %+v, want %+v", i, ev.Fields[i], want[i])
		}
	}
	if ev.Record != 101 || ev.Time.Format("2006-01-02T15:04:05.000000Z") != "2026-07-17T14:18:34.072213Z" {
		t.Errorf("record %d, time %v", ev.Record, ev.Time)
	}
	if !ev.HasService("security") || !ev.HasCategory("process_creation") {
		t.Errorf("services %v, categories %v", ev.Services, ev.Categories)
	}
}

func TestNotEVTX(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("ElfFile"), bytes.Repeat([]byte{'x'}, 5000)} {
		if _, err := NewReader(bytes.NewReader(data), int64(len(data)), Options{}); err == nil {
			t.Errorf("NewReader(%d bytes) succeeded", len(data))
		}
	}
}

func TestFileHeaderChecksum(t *testing.T) {
	data := buildFile(buildChunk(1, 2))
	data[60] ^= 0xff
	evs, st := readBytes(t, data)
	if len(evs) != 2 || st.Warnings != 1 || st.SkippedChunks != 0 {
		t.Fatalf("%d events, stats %+v", len(evs), st)
	}
}

// recordOffsets returns the chunk offsets of the records in chunk c.
func recordOffsets(c []byte) []int {
	var offs []int
	free := int(binary.LittleEndian.Uint32(c[48:]))
	for pos := chunkHeaderSize; pos+8 <= free; {
		offs = append(offs, pos)
		pos += int(binary.LittleEndian.Uint32(c[pos+4:]))
	}
	return offs
}

// fixCRCs recomputes the checksums of chunk c after a test changed it.
func fixCRCs(c []byte) {
	free := int(binary.LittleEndian.Uint32(c[48:]))
	if free >= chunkHeaderSize && free <= len(c) {
		binary.LittleEndian.PutUint32(c[52:], crc32.ChecksumIEEE(c[chunkHeaderSize:free]))
	}
	crc := crc32.ChecksumIEEE(c[:120])
	crc = crc32.Update(crc, crc32.IEEETable, c[128:chunkHeaderSize])
	binary.LittleEndian.PutUint32(c[124:], crc)
}

func TestCorruptRecords(t *testing.T) {
	for _, tc := range []struct {
		name   string
		breakC func(c []byte, rec int)
	}{
		{"magic", func(c []byte, rec int) { c[rec] = 'X' }},
		{"size", func(c []byte, rec int) { binary.LittleEndian.PutUint32(c[rec+4:], 0xfffff) }},
		{"size copy", func(c []byte, rec int) {
			size := int(binary.LittleEndian.Uint32(c[rec+4:]))
			c[rec+size-4]++
		}},
		{"binxml token", func(c []byte, rec int) { c[rec+recordHeader+4] = 0x3f }},
		{"template offset", func(c []byte, rec int) {
			binary.LittleEndian.PutUint32(c[rec+recordHeader+10:], 0xfff0)
		}},
		{"value count", func(c []byte, rec int) {
			binary.LittleEndian.PutUint32(c[rec+recordHeader+14:], 0x7fffffff)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := buildChunk(1, 3)
			tc.breakC(c, recordOffsets(c)[1])
			fixCRCs(c)
			evs, st := readBytes(t, buildFile(c))
			if len(evs) != 2 || st.SkippedRecords != 1 || st.Warnings != 1 || st.SkippedChunks != 0 {
				t.Fatalf("%d events, stats %+v", len(evs), st)
			}
			if evs[0].Record != 100 || evs[1].Record != 102 {
				t.Errorf("records %d, %d; want 100, 102", evs[0].Record, evs[1].Record)
			}
		})
	}
}

func TestCorruptChunks(t *testing.T) {
	for _, tc := range []struct {
		name string
		pos  int
	}{
		{"magic", 2},
		{"header", 30},
		{"string table", 130},
		{"records", 600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := buildChunk(3, 2)
			bad[tc.pos] ^= 0x55
			evs, st := readBytes(t, buildFile(buildChunk(1, 2), bad, buildChunk(5, 2)))
			if len(evs) != 4 || st.SkippedChunks != 1 || st.Warnings != 1 || st.Chunks != 2 {
				t.Fatalf("%d events, stats %+v", len(evs), st)
			}
		})
	}
}

// TestCorpusCorruptChunk flips one byte in the records of chunk 2 of a copy
// of a corpus file: that chunk is skipped with one warning and every other
// record is still read.
func TestCorpusCorruptChunk(t *testing.T) {
	var path string
	var data []byte
	for _, p := range corpusFiles(t, "evtx", ".evtx") {
		d, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(d) >= fileHeaderSize+4*chunkSize && bytes.Equal(d[fileHeaderSize+3*chunkSize:][:8], chunkMagic) {
			path, data = p, d
			break
		}
	}
	if path == "" {
		t.Fatal("no corpus file with four chunks")
	}
	all, st := readAll(t, path)
	if st.Warnings != 0 {
		t.Fatalf("%s: clean copy has warnings: %v", path, st.Messages)
	}
	c := data[fileHeaderSize+2*chunkSize:][:chunkSize]
	inChunk := int(binary.LittleEndian.Uint64(c[16:]) - binary.LittleEndian.Uint64(c[8:]) + 1)
	c[chunkHeaderSize+100] ^= 0x01
	copyPath := filepath.Join(t.TempDir(), "corrupt.evtx")
	if err := os.WriteFile(copyPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	evs, st := readAll(t, copyPath)
	if st.SkippedChunks != 1 || st.Warnings != 1 || len(evs) != len(all)-inChunk {
		t.Fatalf("%s: %d of %d events (chunk 2 holds %d), stats %+v", path, len(evs), len(all), inChunk, st)
	}
	if m := st.Messages[0]; m.Chunk != 2 || !strings.Contains(m.Msg, "checksum") {
		t.Errorf("warning %v", m)
	}
	t.Logf("%s: %d records, chunk 2 (%d records) skipped: %v", filepath.Base(path), len(all), inChunk, st.Messages[0])
}

// TestTruncated cuts a corpus file and a built file at many lengths: the
// reader returns the complete records before the cut and never panics.
func TestTruncated(t *testing.T) {
	built := buildFile(buildChunk(1, 3), buildChunk(4, 3))
	for n := 0; n <= len(built); n += 97 {
		checkTruncated(t, built[:n])
	}
	// A corpus file with at least two chunks, cut in the middle of the
	// records of its second chunk.
	var path string
	var data []byte
	for _, p := range corpusFiles(t, "evtx", ".evtx") {
		d, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(d) >= fileHeaderSize+2*chunkSize && bytes.Equal(d[fileHeaderSize+chunkSize:][:8], chunkMagic) {
			path, data = p, d
			break
		}
	}
	if path == "" {
		t.Fatal("no corpus file with two chunks")
	}
	full, _ := readBytes(t, data)
	free := int(binary.LittleEndian.Uint32(data[fileHeaderSize+chunkSize+48:]))
	cut := fileHeaderSize + chunkSize + chunkHeaderSize + (free-chunkHeaderSize)/2
	evs, st := readBytes(t, data[:cut])
	if len(evs) == 0 || len(evs) >= len(full) || st.Warnings == 0 {
		t.Errorf("cut at %d: %d of %d events, stats %+v", cut, len(evs), len(full), st)
	}
	for i, ev := range evs {
		if ev.Record != full[i].Record {
			t.Fatalf("event %d: record %d, want %d", i, ev.Record, full[i].Record)
		}
	}
	t.Logf("%s cut at %d bytes: %d of %d records; %v", filepath.Base(path), cut, len(evs), len(full), st.Messages)
}

func checkTruncated(t *testing.T, data []byte) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data), int64(len(data)), Options{})
	if err != nil {
		return
	}
	var ev event.Event
	for r.Next(&ev) == nil {
	}
}
