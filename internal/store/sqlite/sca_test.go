package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/sca"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
)

func scaResult(scan string, at time.Time, check int64, status string) sca.Result {
	return sca.Result{PolicyID: "p1", CheckID: check, ScanID: scan, ScannedAt: at, Title: "check", Status: status, Reason: "because",
		Compliance: map[string][]string{"cis_csc_v8": {"4.1"}}}
}

func scaSummary(scan string, at time.Time, passed, failed, na int) sca.Summary {
	score := -1
	if passed+failed > 0 {
		score = passed * 100 / (passed + failed)
	}
	return sca.Summary{PolicyID: "p1", PolicyName: "Policy", ScanID: scan, ScannedAt: at, Passed: passed, Failed: failed,
		NotApplicable: na, Total: passed + failed + na, Score: score, Applicable: true}
}

// Results and summaries arriving in any order keep the newest scan's
// results; a summary drops checks its scan no longer has; stale results
// after a newer summary are ignored; history keeps every scan once.
func TestSCAStore(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t1 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	t2 := t1.Add(12 * time.Hour)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Scan 1: checks 1, 2, 3.
	must(db.AddSCAResults(ctx, "a1", []sca.Result{scaResult("s1", t1, 1, "failed"), scaResult("s1", t1, 2, "passed"), scaResult("s1", t1, 3, "failed")}))
	must(db.AddSCASummary(ctx, "a1", scaSummary("s1", t1, 1, 2, 0)))
	// Scan 2: its summary first, then its results; check 3 is gone.
	must(db.AddSCASummary(ctx, "a1", scaSummary("s2", t2, 2, 0, 0)))
	must(db.AddSCAResults(ctx, "a1", []sca.Result{scaResult("s2", t2, 1, "passed"), scaResult("s2", t2, 2, "passed")}))
	// Redelivered scan 1 (a batch replayed): nothing changes.
	must(db.AddSCAResults(ctx, "a1", []sca.Result{scaResult("s1", t1, 1, "failed"), scaResult("s1", t1, 3, "failed")}))
	must(db.AddSCASummary(ctx, "a1", scaSummary("s1", t1, 1, 2, 0)))
	// Another host.
	must(db.AddSCAResults(ctx, "a2", []sca.Result{scaResult("x1", t1, 1, "failed")}))
	must(db.AddSCASummary(ctx, "a2", scaSummary("x1", t1, 0, 1, 0)))

	h, err := db.HostSCA(ctx, "a1", 10)
	must(err)
	if len(h.Policies) != 1 {
		t.Fatalf("policies %+v", h.Policies)
	}
	p := h.Policies[0]
	if p.ScanID != "s2" || p.Score != 100 || len(p.Results) != 2 || p.Results[0].Status != "passed" || p.Results[0].ScanID != "s2" ||
		p.Results[1].CheckID != 2 || p.Results[0].Compliance["cis_csc_v8"][0] != "4.1" {
		t.Errorf("policy %+v", p)
	}
	if len(p.History) != 2 || p.History[0].ScanID != "s2" || p.History[1].ScanID != "s1" || p.History[1].Failed != 2 {
		t.Errorf("history %+v", p.History)
	}
	if none, err := db.HostSCA(ctx, "nobody", 10); err != nil || none.Policies == nil || len(none.Policies) != 0 {
		t.Errorf("unknown host: %+v %v", none, err)
	}

	f, err := db.FleetSCA(ctx, 10)
	must(err)
	if len(f.Hosts) != 2 || f.Hosts[0].AgentID != "a2" || f.Hosts[0].Score != 0 || f.Hosts[1].AgentID != "a1" {
		t.Errorf("fleet hosts %+v", f.Hosts)
	}
	if len(f.Checks) != 1 || f.Checks[0].CheckID != 1 || f.Checks[0].Failed != 1 || f.Checks[0].Passed != 1 {
		t.Errorf("fleet checks %+v", f.Checks)
	}
}
