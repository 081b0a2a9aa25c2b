package spool

import (
	"bytes"
	"testing"
	"time"
)

// BenchmarkAppend measures appends with the default group commit (every
// 200 ms or 1,000 records), including the final Sync that makes the last
// ones durable. events/s is the rate at which records become durable.
func BenchmarkAppend(b *testing.B) {
	payload := bytes.Repeat([]byte("e"), 400)
	run := func(b *testing.B, parallel bool) {
		s, err := Open(Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		b.ReportAllocs()
		b.SetBytes(int64(len(payload)))
		start := time.Now()
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Append(payload); err != nil {
						b.Error(err)
						return
					}
				}
			})
		} else {
			for b.Loop() {
				if _, err := s.Append(payload); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := s.Sync(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		if d := s.Stats().Dropped; d > 0 {
			b.Logf("%d records dropped by the 1 GiB bound", d)
		}
	}
	b.Run("serial", func(b *testing.B) { run(b, false) })
	b.Run("parallel", func(b *testing.B) { run(b, true) })
}
