package evtx

import (
	"bytes"
	"os"
	"testing"

	"github.com/vigil-edr/vigil/internal/event"
)

// BenchmarkReader reads every EVTX file of the corpus from memory and
// reports records per second. One Reader is reused with Reset, as a hunt
// over many files would.
func BenchmarkReader(b *testing.B) {
	var files [][]byte
	size := 0
	for _, p := range corpusFiles(b, "evtx", ".evtx") {
		d, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		files = append(files, d)
		size += len(d)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var ev event.Event
	records := 0
	r, err := NewReader(bytes.NewReader(files[0]), int64(len(files[0])), Options{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		for _, d := range files {
			if err := r.Reset(bytes.NewReader(d), int64(len(d)), Options{}); err != nil {
				b.Fatal(err)
			}
			for r.Next(&ev) == nil {
				records++
			}
		}
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(records), "ns/record")
}
