package sca_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/sca"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
)

// The Recorder stores a batch's results and summary in the real store and
// skips malformed events; a redelivered batch changes nothing.
func TestRecorder(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	ev := func(cat string, kv ...string) *event.Event {
		e := &event.Event{Time: at, Product: "linux", Categories: []string{cat}}
		for i := 0; i+1 < len(kv); i += 2 {
			e.Add(kv[i], kv[i+1])
		}
		return e
	}
	batch := []eventstore.Stored{
		{AgentID: "a", Seq: 1, Event: ev(sca.CategorySummary, "ScanId", "s", "PolicyId", "p", "Passed", "1", "Failed", "0", "NotApplicable", "0", "Total", "1", "Score", "100", "Applicable", "true")},
		{AgentID: "a", Seq: 2, Event: ev(sca.CategoryResult, "ScanId", "s", "PolicyId", "p", "CheckId", "7", "Title", "t", "Status", "passed", "Reason", "ok")},
		{AgentID: "a", Seq: 3, Event: ev(sca.CategoryResult, "ScanId", "s", "PolicyId", "p", "CheckId", "8", "Title", "t", "Status", "bogus", "Reason", "x")},
		{AgentID: "a", Seq: 4, Event: ev("process_creation", "Image", "/bin/sh")},
	}
	r := &sca.Recorder{Store: db}
	for i := 0; i < 2; i++ {
		if err := r.AfterStore(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	h, err := db.HostSCA(ctx, "a", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Policies) != 1 || len(h.Policies[0].Results) != 1 || h.Policies[0].Results[0].CheckID != 7 || len(h.Policies[0].History) != 1 {
		t.Errorf("%+v", h)
	}
}
