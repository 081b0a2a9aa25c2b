package evtx

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-edr/vigil/internal/event"
)

// readAll reads every record of the file at path.
func readAll(t testing.TB, path string) ([]*event.Event, Stats) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return readBytes(t, data)
}

func readBytes(t testing.TB, data []byte) ([]*event.Event, Stats) {
	t.Helper()
	r, err := NewReader(bytesReaderAt(data), int64(len(data)), Options{})
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	var evs []*event.Event
	var ev event.Event
	for {
		err := r.Next(&ev)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		evs = append(evs, ev.Clone())
	}
	return evs, r.Stats()
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func TestCorpus(t *testing.T) {
	for _, sub := range []string{"evtx", filepath.Join("sigma", "regression_data")} {
		total := 0
		files := corpusFiles(t, sub, ".evtx")
		for _, path := range files {
			evs, st := readAll(t, path)
			total += len(evs)
			if st.SkippedChunks != 0 || st.SkippedRecords != 0 || st.Warnings != 0 {
				t.Errorf("%s: %d records, %d skipped chunks, %d skipped records, %d warnings: %v",
					path, len(evs), st.SkippedChunks, st.SkippedRecords, st.Warnings, st.Messages)
			}
			if len(evs) == 0 {
				t.Errorf("%s: no records", path)
			}
			for _, ev := range evs {
				if ev.Time.IsZero() || ev.Record == 0 || ev.Product != "windows" {
					t.Errorf("%s: record %d: time %v, product %q", path, ev.Record, ev.Time, ev.Product)
					break
				}
			}
		}
		t.Logf("%s: %d files, %d records", sub, len(files), total)
	}
}

// TestReset reads two files with one Reader and checks that the second
// read matches a fresh Reader's.
func TestReset(t *testing.T) {
	files := corpusFiles(t, "evtx", ".evtx")
	a, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(files[1])
	if err != nil {
		t.Fatal(err)
	}
	want, _ := readBytes(t, b)
	r, err := NewReader(bytesReaderAt(a), int64(len(a)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ev event.Event
	for r.Next(&ev) == nil {
	}
	if err := r.Reset(bytesReaderAt(b), int64(len(b)), Options{}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for ; r.Next(&ev) == nil; n++ {
		if n >= len(want) || len(ev.Fields) != len(want[n].Fields) || ev.Record != want[n].Record {
			t.Fatalf("event %d differs after Reset", n)
		}
		for i := range ev.Fields {
			if ev.Fields[i] != want[n].Fields[i] {
				t.Fatalf("event %d field %d: %v, want %v", n, i, ev.Fields[i], want[n].Fields[i])
			}
		}
	}
	if st := r.Stats(); n != len(want) || st.Records != n {
		t.Fatalf("%d events after Reset, want %d; stats %+v", n, len(want), st)
	}
}
