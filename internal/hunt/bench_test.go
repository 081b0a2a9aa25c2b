package hunt

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/detect/sigma"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/hunt/evtx"
)

// corpusEVTX lists the corpus attack-sample EVTX files.
func corpusEVTX(tb testing.TB) []File {
	c := corpus(tb)
	var files []File
	filepath.WalkDir(filepath.Join(c, "evtx"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".evtx") {
			info, _ := d.Info()
			files = append(files, File{Path: p, Size: info.Size()})
		}
		return nil
	})
	return files
}

func windowsEngine(tb testing.TB) *sigma.Engine {
	c := corpus(tb)
	rules, _ := sigma.LoadPaths(filepath.Join(c, "sigma", "rules", "windows"), filepath.Join(c, "sigma", "rules-threat-hunting", "windows"))
	eng, _ := sigma.NewEngine(rules, sigma.Options{})
	return eng
}

// decodeAll reads every event of the files into memory.
func decodeAll(tb testing.TB, files []File) []*event.Event {
	var out []*event.Event
	ev := &event.Event{}
	for _, f := range files {
		fh, err := os.Open(f.Path)
		if err != nil {
			tb.Fatal(err)
		}
		r, err := evtx.NewReader(fh, f.Size, evtx.Options{Source: f.Path})
		if err != nil {
			tb.Fatal(err)
		}
		for r.Next(ev) == nil {
			out = append(out, ev.Clone())
		}
		fh.Close()
	}
	return out
}

// BenchmarkEngine compares, on one core and in the same process, the rate at
// which the corpus EVTX events can merely be decoded with the rate at which
// the decoded events are matched against every Windows rule. The goal
// is match ≥ 0.5 × decode.
func BenchmarkEngine(b *testing.B) {
	files := corpusEVTX(b)
	eng := windowsEngine(b)
	events := decodeAll(b, files)
	var bytes int64
	for _, f := range files {
		bytes += f.Size
	}
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(bytes)
		ev := &event.Event{}
		n := 0
		for i := 0; i < b.N; i++ {
			for _, f := range files {
				fh, _ := os.Open(f.Path)
				r, _ := evtx.NewReader(fh, f.Size, evtx.Options{})
				for r.Next(ev) != io.EOF {
					n++
				}
				fh.Close()
			}
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("match", func(b *testing.B) {
		b.ReportAllocs()
		m := eng.NewMatcher()
		matches := 0
		for i := 0; i < b.N; i++ {
			for _, ev := range events {
				matches += len(m.Match(ev))
			}
		}
		b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(matches)/float64(b.N), "matches/pass")
	})
}

// BenchmarkHunt is the whole offline hunt over the corpus EVTX files with all
// Windows rules, on every core: files, decoding, matching and output counting.
func BenchmarkHunt(b *testing.B) {
	files := corpusEVTX(b)
	eng := windowsEngine(b)
	var bytes int64
	for _, f := range files {
		bytes += f.Size
	}
	b.ReportAllocs()
	b.SetBytes(bytes)
	var events uint64
	for i := 0; i < b.N; i++ {
		sum, err := Run(context.Background(), eng, nil, files, Options{}, func(Detection) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		events += sum.Events
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkHuntGigabyte hunts about 1 GB of EVTX (the corpus directory named
// 60 times, as `vigil hunt` would be given it) with all Windows rules on every
// core, and fails if the Go heap ever exceeds 256 MiB: memory must not grow
// with the input. It reports MB/s, events/s and the peak heap.
func BenchmarkHuntGigabyte(b *testing.B) {
	one := corpusEVTX(b)
	eng := windowsEngine(b)
	var files []File
	for len(files) == 0 || totalSize(files) < 1<<30 {
		files = append(files, one...)
	}
	b.SetBytes(totalSize(files))
	var events uint64
	var peak uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak {
					peak = ms.HeapInuse
				}
			}
		}
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sum, err := Run(context.Background(), eng, nil, files, Options{}, func(Detection) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		events += sum.Events
	}
	b.StopTimer()
	close(stop)
	<-done
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	if peak > 256<<20 {
		b.Fatalf("heap reached %d MiB while hunting 1 GB", peak>>20)
	}
}

func totalSize(fs []File) int64 {
	var n int64
	for _, f := range fs {
		n += f.Size
	}
	return n
}
