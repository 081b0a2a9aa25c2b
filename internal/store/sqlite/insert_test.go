package sqlite_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/eventstore"
)

// TestInsertDuplicateRanges: the per-batch duplicate lookup finds stored
// triples whatever the spread of the sequences (dense runs, far-apart
// values, values with the high bit set) and across agents and epochs, in
// batches larger than one multi-row statement.
func TestInsertDuplicateRanges(t *testing.T) {
	b := open(t, filepath.Join(t.TempDir(), "vigil.db"))
	ctx := t.Context()
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	mk := func(agent string, epoch, seq uint64) eventstore.Stored {
		s := textEvent(seq, t0, "x")
		s.AgentID, s.BootEpoch = agent, epoch
		return s
	}
	var first []eventstore.Stored
	for seq := uint64(1); seq <= 300; seq++ {
		first = append(first, mk("a1", 1, seq))
	}
	first = append(first, mk("a1", 1, 1<<63+5), mk("a1", 1, 1<<40), mk("a2", 1, 7), mk("a1", 2, 7))
	res1, err := b.Insert(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	// Again, interleaved with new triples, some twice.
	var again []eventstore.Stored
	var want []int64 // 0: new
	for i, s := range first {
		again = append(again, s)
		want = append(want, res1[i].ID)
		if i%50 == 0 {
			n := mk("a1", 1, 1000+uint64(i))
			again = append(again, n, n)
			want = append(want, 0, -1)
		}
	}
	again = append(again, mk("a1", 1, 1<<63+6), mk("a1", 1, ^uint64(0)), mk("a3", 1, 1))
	want = append(want, 0, 0, 0)
	res2, err := b.Insert(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		r := res2[i]
		switch {
		case w > 0 && (!r.Duplicate || r.ID != w || !r.NeedsScan):
			t.Errorf("%d (%+v): %+v, want duplicate of %d", i, again[i], r, w)
		case w == 0 && (r.Duplicate || !r.NeedsScan):
			t.Errorf("%d (%+v): %+v, want new", i, again[i], r)
		case w == -1 && (!r.Duplicate || r.ID != res2[i-1].ID):
			t.Errorf("%d: %+v, want duplicate of %d", i, r, res2[i-1].ID)
		}
	}
	n, _, err := b.Stats(ctx)
	if err != nil || n != int64(len(first))+7+3 {
		t.Errorf("Stats = %d, %v, want %d", n, err, len(first)+7+3)
	}
	audit, err := b.SequenceAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a := audit["a1"]; a.Rows != a.Distinct {
		t.Errorf("audit: %d rows, %d distinct", a.Rows, a.Distinct)
	}
	// Scanning a few, including a gap, leaves the rest needing a scan.
	if err := b.MarkScanned(ctx, []int64{res1[3].ID, res1[1].ID, res1[2].ID, res1[10].ID, 1 << 40}); err != nil {
		t.Fatal(err)
	}
	res3, err := b.Insert(ctx, first[:12])
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res3 {
		scanned := i >= 1 && i <= 3 || i == 10
		if !r.Duplicate || r.NeedsScan == scanned {
			t.Errorf("after MarkScanned, %d: %+v", i, r)
		}
	}
}
