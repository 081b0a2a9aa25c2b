package sqlite_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
)

// TestCreateAlertsBatch: the batch path stores every alert in order with
// its feed row, and sets IDs and the default state.
func TestCreateAlertsBatch(t *testing.T) {
	b := open(t, filepath.Join(t.TempDir(), "vigil.db"))
	ctx := t.Context()
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	var as []*alert.Alert
	for i := range 300 {
		as = append(as, &alert.Alert{RuleID: "r", Level: "high", Host: "h", Count: 1, FirstSeen: t0.Add(time.Duration(i) * time.Second)})
	}
	as[7].State = alert.StateAcknowledged
	if err := b.CreateAlerts(ctx, as); err != nil {
		t.Fatal(err)
	}
	for i, a := range as {
		if i > 0 && a.ID != as[i-1].ID+1 {
			t.Fatalf("alert %d id %d after %d", i, a.ID, as[i-1].ID)
		}
		want := alert.StateNew
		if i == 7 {
			want = alert.StateAcknowledged
		}
		got, err := b.GetAlert(ctx, a.ID)
		if err != nil || got.State != want || !got.FirstSeen.Equal(a.FirstSeen) {
			t.Fatalf("alert %d: %+v, %v", i, got, err)
		}
	}
	changes, err := b.PendingChanges(ctx, 1000)
	if err != nil || len(changes) != 300 {
		t.Fatalf("feed rows = %d, %v", len(changes), err)
	}
	if err := b.CreateAlerts(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

// TestAlertSummaryPlans: the overview's GROUP BYs read only the covering
// index alerts_first_seen, so they stay fast with many alerts.
func TestAlertSummaryPlans(t *testing.T) {
	b := open(t, filepath.Join(t.TempDir(), "vigil.db"))
	for _, q := range []string{
		`SELECT coalesce(sum(level_rank <= 0), 0), coalesce(sum(level_rank = 1), 0) FROM alerts WHERE first_seen >= 1 AND first_seen < 2`,
		`SELECT rule_id, count(*) AS n, max(id) AS newest FROM alerts WHERE first_seen >= 1 AND first_seen < 2 GROUP BY rule_id`,
		`SELECT host, count(*) AS n FROM alerts WHERE first_seen >= 1 AND first_seen < 2 GROUP BY host ORDER BY n DESC, host LIMIT 10`,
	} {
		plan, err := b.Plan(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(plan, "\n"), "USING COVERING INDEX alerts_first_seen") {
			t.Errorf("%s\nplan:\n%s", q, strings.Join(plan, "\n"))
		}
	}
}
