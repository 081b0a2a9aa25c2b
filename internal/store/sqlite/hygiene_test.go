package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/hygiene"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
)

// TestHygieneHistory: the same key is not recorded again; a change within
// the clock hour replaces that hour's point, a change in the next hour adds
// one however soon; hosts
// and the fleet keep separate histories.
func TestHygieneHistory(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	ds := []hygiene.Deduction{{Category: hygiene.CatVulns, Points: 5, Count: 1, Text: "−5: 1 critical vulnerability with a fix available"}}
	steps := []struct {
		at    time.Duration
		score int
		key   string
		wrote bool
	}{
		{0, 95, "k1", true},
		{5 * time.Minute, 95, "k1", false},   // unchanged
		{20 * time.Minute, 90, "k2", true},   // replaces the 08:00 point
		{70 * time.Minute, 90, "k2", false},  // unchanged
		{90 * time.Minute, 80, "k3", true},   // 70 min after 08:20: a new point
		{100 * time.Minute, 85, "k4", true},  // replaces 09:30
		{200 * time.Minute, 70, "k5", true},  // 11:20: new
		{230 * time.Minute, 60, "k6", true},  // 11:50 replaces 11:20
		{260 * time.Minute, 100, "k7", true}, // 12:20: new although only 30 min after 11:50
	}
	for i, s := range steps {
		wrote, err := db.RecordHygiene(ctx, "a1", hygiene.Point{At: t0.Add(s.at), Score: s.score, Deductions: ds}, s.key, time.Hour)
		if err != nil || wrote != s.wrote {
			t.Fatalf("step %d: wrote %v err %v, want wrote %v", i, wrote, err, s.wrote)
		}
	}
	if _, err := db.RecordHygiene(ctx, hygiene.FleetID, hygiene.Point{At: t0, Score: 50}, "f", time.Hour); err != nil {
		t.Fatal(err)
	}
	got, err := db.HygieneHistory(ctx, "a1", 10)
	if err != nil {
		t.Fatal(err)
	}
	var scores []int
	for _, p := range got {
		scores = append(scores, p.Score)
	}
	if fmt.Sprint(scores) != "[100 60 85 90]" || !got[3].At.Equal(t0.Add(20*time.Minute)) ||
		len(got[0].Deductions) != 1 || got[0].Deductions[0].Text != ds[0].Text {
		t.Errorf("history %v %+v", scores, got)
	}
	if f, err := db.HygieneHistory(ctx, hygiene.FleetID, 10); err != nil || len(f) != 1 || f[0].Score != 50 {
		t.Errorf("fleet %+v %v", f, err)
	}
	if one, _ := db.HygieneHistory(ctx, "a1", 1); len(one) != 1 || one[0].Score != 100 {
		t.Errorf("limit 1: %+v", one)
	}
}
