package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
)

func textEvent(seq uint64, at time.Time, words string) eventstore.Stored {
	e := &event.Event{Time: at, Product: "linux", Services: []string{"auditd"}, Categories: []string{"process_creation"}}
	e.Add("CommandLine", words)
	e.Add("Quoted", "say \"hi\"\n\ttab \x01 ünï \\ end")
	return eventstore.Stored{AgentID: "a1", BootEpoch: 1, Seq: seq, Host: "h", Event: e}
}

// TestSearchSeesCommittedEvents: Search waits for the indexer, so a caller
// that inserts and then searches finds its events without WaitIndexed.
func TestSearchSeesCommittedEvents(t *testing.T) {
	b := open(t, filepath.Join(t.TempDir(), "vigil.db"))
	ctx := t.Context()
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for i := range 20 {
		res, err := b.Insert(ctx, []eventstore.Stored{textEvent(uint64(i+1), t0, fmt.Sprintf("fresh%d common", i))})
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.Search(ctx, eventstore.Query{Text: fmt.Sprintf("fresh%d", i)})
		if err != nil || len(got) != 1 || got[0].ID != res[0].ID {
			t.Fatalf("search right after insert %d: %v, %v", i, got, err)
		}
		got, err = b.Search(ctx, eventstore.Query{Fields: []eventstore.FieldFilter{{Name: "commandline", Value: fmt.Sprintf("FRESH%d common", i)}}})
		if err != nil || len(got) != 1 {
			t.Fatalf("field search right after insert %d: %v, %v", i, got, err)
		}
	}
	if n, age, err := b.IndexLag(); n != 0 || age != 0 || err != nil {
		t.Errorf("IndexLag = %d, %v, %v after searches", n, age, err)
	}
}

// TestExpireBeforeIndexing: blocks that expire before the indexer reaches
// them never enter the index, and indexed ones leave it. Each Insert here is
// one block.
func TestExpireBeforeIndexing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.db")
	b := open(t, path)
	ctx := t.Context()
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	var evs []eventstore.Stored
	for i := range 10 {
		evs = append(evs, textEvent(uint64(i+1), t0.Add(time.Duration(i)*time.Hour), fmt.Sprintf("zeta%d common", i)))
	}
	// Events 0..4 are indexed, 5..9 are not when expiry runs.
	if _, err := b.Insert(ctx, evs[:5]); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	b.PauseIndexer(true)
	if _, err := b.Insert(ctx, evs[5:]); err != nil {
		t.Fatal(err)
	}
	if n, _, err := b.IndexLag(); n != 5 || err != nil {
		t.Fatalf("IndexLag = %d, %v, want 5 waiting", n, err)
	}
	// Keep hours 8 and 9: expires 0..4 (indexed) and 5..7 (not yet).
	n, err := b.Expire(ctx, eventstore.Retention{MaxAge: 2 * time.Hour}, t0.Add(10*time.Hour))
	if err != nil || n != 8 {
		t.Fatalf("Expire = %d, %v, want 8", n, err)
	}
	b.PauseIndexer(false)
	if err := b.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := b.FTSMatch(ctx, `"common"`)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Errorf("index rows for common = %v, want the one block left (events 8 and 9)", got)
	}
	for _, tok := range []string{"zeta8", "zeta9", "hi", "ünï", "end"} {
		rs, err := b.Search(ctx, eventstore.Query{Text: tok})
		if err != nil || len(rs) == 0 {
			t.Errorf("Search(%q) = %v, %v", tok, rs, err)
		}
	}
	// The mark survives a restart: nothing is indexed twice or lost.
	b2 := b.Reopen(t).(*backend)
	if n, _, err := b2.IndexLag(); n != 0 || err != nil {
		t.Errorf("IndexLag after reopen = %d, %v", n, err)
	}
	if _, err := b2.Insert(ctx, []eventstore.Stored{textEvent(99, t0.Add(9*time.Hour), "after reopen common")}); err != nil {
		t.Fatal(err)
	}
	if err := b2.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ = b2.FTSMatch(ctx, `"common"`)
	if len(got) != 2 || !slices.IsSorted(got) {
		t.Errorf("after reopen: index rows for common = %v, want 2 blocks", got)
	}
}

// TestIndexResumesAfterReopen: events committed but not indexed when the
// process stopped are indexed by the next Open.
func TestIndexResumesAfterReopen(t *testing.T) {
	b := open(t, filepath.Join(t.TempDir(), "vigil.db"))
	ctx := t.Context()
	b.PauseIndexer(true)
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	if _, err := b.Insert(ctx, []eventstore.Stored{textEvent(1, t0, "left behind")}); err != nil {
		t.Fatal(err)
	}
	b2 := b.Reopen(t)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b2.WaitIndexed(wctx); err != nil {
		t.Fatal(err)
	}
	if rs, err := b2.Search(ctx, eventstore.Query{Text: "behind"}); err != nil || len(rs) != 1 {
		t.Errorf("after reopen: %v, %v", rs, err)
	}
}
