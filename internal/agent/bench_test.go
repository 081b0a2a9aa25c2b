package agent

import (
	"log/slog"
	"testing"

	"github.com/vigil-edr/vigil/internal/event"
)

func benchEvent() *event.Event {
	ev := execEvent(1)
	for _, n := range []string{"User", "LogonId", "Terminal", "SessionId", "ParentImage", "ParentCommandLine", "CurrentDirectory", "UserId", "Cgroup", "CgroupId"} {
		ev.Add(n, "/user.slice/user-0.slice/session-3.scope "+n)
	}
	ev.Add("Hashes", "SHA256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
	return ev
}

// BenchmarkRecord is the sensors' cost of handing one event to the agent:
// encoding it and appending it to the spool (whose group commit runs in the
// background).
func BenchmarkRecord(b *testing.B) {
	a := New(Options{Spool: testSpool(b), Logger: slog.New(slog.DiscardHandler)})
	ev := benchEvent()
	b.ReportAllocs()
	for b.Loop() {
		a.Record(ev)
	}
}

// BenchmarkBatch is the sender's cost of turning 1,000 spooled events into
// a zstd request body.
func BenchmarkBatch(b *testing.B) {
	sp := testSpool(b)
	a := New(Options{Spool: sp, Logger: slog.New(slog.DiscardHandler)})
	ev := benchEvent()
	for range 1000 {
		a.Record(ev)
	}
	if err := sp.Sync(); err != nil {
		b.Fatal(err)
	}
	recs, err := sp.Read(0, 1000, 0)
	if err != nil || len(recs) != 1000 {
		b.Fatal(len(recs), err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := a.batch(recs); err != nil {
			b.Fatal(err)
		}
	}
}
