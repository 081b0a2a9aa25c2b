package alert_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/store"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newProcessor(t *testing.T) (*alert.Processor, alert.Store, *clock) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "a.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	return alert.NewProcessor(alert.Options{Store: db, GroupWindow: time.Hour, MaxEvents: 3, Now: c.now, SuppressionRefresh: time.Nanosecond}), db, c
}

func finding(rule, host string, at time.Time, id int64, fields ...string) alert.Finding {
	f := alert.Finding{RuleID: rule, RuleTitle: "title " + rule, Level: "high", Tags: []string{"attack.t1059"}, Host: host, Time: at, EventIDs: []int64{id}}
	for i := 0; i+1 < len(fields); i += 2 {
		f.Fields = append(f.Fields, event.Field{Name: fields[i], Value: fields[i+1]})
	}
	return f
}

func TestGrouping(t *testing.T) {
	p, st, c := newProcessor(t)
	ctx := context.Background()
	t0 := c.t
	a1, _, err := p.Record(ctx, finding("r1", "h1", t0, 1))
	if err != nil {
		t.Fatal(err)
	}
	// Same rule and host within the window: grouped.
	for i, d := range []time.Duration{10 * time.Minute, 50 * time.Minute, 100 * time.Minute} {
		id, _, _ := p.Record(ctx, finding("r1", "h1", t0.Add(d), int64(2+i)))
		if id != a1 {
			t.Fatalf("occurrence at +%s opened alert %d, want %d (last seen within the hour)", d, id, a1)
		}
	}
	// Another host or rule: another alert.
	if id, _, _ := p.Record(ctx, finding("r1", "h2", t0, 9)); id == a1 {
		t.Fatal("another host joined the alert")
	}
	if id, _, _ := p.Record(ctx, finding("r2", "h1", t0, 9)); id == a1 {
		t.Fatal("another rule joined the alert")
	}
	// More than the window after the last occurrence: a new alert.
	if id, _, _ := p.Record(ctx, finding("r1", "h1", t0.Add(100*time.Minute+61*time.Minute), 10)); id == a1 {
		t.Fatal("an occurrence 61 min after the last one joined the old alert")
	}
	a, err := st.GetAlert(ctx, a1)
	if err != nil {
		t.Fatal(err)
	}
	if a.Count != 4 || len(a.EventIDs) != 3 || !a.LastSeen.Equal(t0.Add(100*time.Minute)) || a.State != alert.StateNew {
		t.Errorf("alert %+v: want count 4, 3 event ids (the limit), last seen +100m, state new", a)
	}
	// A closed alert is not grouped into.
	if err := p.Transition(ctx, a1, alert.StateResolved, "alice", ""); err != nil {
		t.Fatal(err)
	}
	if id, _, _ := p.Record(ctx, finding("r1", "h1", t0.Add(101*time.Minute), 11)); id == a1 {
		t.Fatal("a resolved alert took a new occurrence")
	}
}

func TestStateMachine(t *testing.T) {
	p, st, _ := newProcessor(t)
	ctx := context.Background()
	id, _, _ := p.Record(ctx, finding("r", "h", time.Now(), 1))
	steps := []struct {
		to     alert.State
		reason string
		ok     bool
	}{
		{alert.StateNew, "", false},
		{alert.StateFalsePositive, "", false}, // needs a reason
		{alert.StateAcknowledged, "", true},
		{alert.StateNew, "", false},
		{alert.StateFalsePositive, "backup job", true},
		{alert.StateResolved, "", false},
		{alert.StateAcknowledged, "", true}, // reopen
		{alert.StateResolved, "", true},
	}
	for i, s := range steps {
		err := p.Transition(ctx, id, s.to, "bob", s.reason)
		if (err == nil) != s.ok {
			t.Fatalf("step %d → %s: err %v, want ok=%v", i, s.to, err, s.ok)
		}
		if err != nil && !errors.Is(err, alert.ErrTransition) {
			t.Fatalf("step %d: error %v is not ErrTransition", i, err)
		}
	}
	a, _ := st.GetAlert(ctx, id)
	if a.State != alert.StateResolved || a.StateBy != "bob" || a.StateAt.IsZero() {
		t.Errorf("final alert %+v", a)
	}
	if err := p.Transition(ctx, 99999, alert.StateResolved, "bob", ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown alert: %v", err)
	}
	if err := p.Transition(ctx, id, alert.StateAcknowledged, "", ""); err == nil {
		t.Error("a change without an actor was accepted")
	}
}

func TestSuppressions(t *testing.T) {
	p, _, c := newProcessor(t)
	ctx := context.Background()
	for _, bad := range []alert.Suppression{
		{},                           // no rule
		{RuleID: "r"},                // everywhere: that is disabling the rule
		{RuleID: "r", Field: "User"}, // field without value
		{RuleID: "r", Host: "h", ExpiresAt: c.t.Add(-time.Minute)},
	} {
		if err := p.Suppress(ctx, &bad); err == nil {
			t.Errorf("suppression %+v accepted", bad)
		}
	}
	if err := p.Suppress(ctx, &alert.Suppression{RuleID: "r", Host: "H1", ExpiresAt: c.t.Add(time.Hour), CreatedBy: "x", Reason: "noisy"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Suppress(ctx, &alert.Suppression{RuleID: "r", Field: "user", Value: "backup", CreatedBy: "x"}); err != nil {
		t.Fatal(err)
	}
	check := func(f alert.Finding, want bool) {
		t.Helper()
		_, sup, err := p.Record(ctx, f)
		if err != nil || sup != want {
			t.Errorf("finding %+v: suppressed=%v err=%v, want %v", f, sup, err, want)
		}
	}
	check(finding("r", "h1", c.t, 1), true) // host, case-insensitive
	check(finding("r", "h2", c.t, 2), false)
	check(finding("r", "h2", c.t, 3, "User", "BACKUP"), true) // field value
	check(finding("other", "h1", c.t, 4), false)
	c.t = c.t.Add(2 * time.Hour) // the host suppression expired
	check(finding("r", "h1", c.t, 5), false)
	if _, _, s := p.Counts(); s != 2 {
		t.Errorf("suppressed count %d, want 2", s)
	}
}

// RecordAll must leave the store exactly as the same findings recorded one
// by one do: same alerts, counts, last-seen times and event ids.
func TestRecordAllMatchesRecord(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fs := []alert.Finding{
		finding("r1", "h1", t0, 1),
		finding("r1", "h1", t0.Add(10*time.Minute), 2),
		finding("r1", "h2", t0, 3),
		finding("r1", "h1", t0.Add(5*time.Minute), 4), // out of order
		finding("r2", "h1", t0, 5),
		finding("r1", "h1", t0.Add(80*time.Minute), 6),  // 70 min after the last: a new alert
		finding("r1", "h1", t0.Add(85*time.Minute), 7),  // joins the new one
		finding("r1", "h1", t0.Add(30*time.Minute), 8),  // within an hour of the new one's last seen: joins it
		finding("r1", "h1", t0.Add(86*time.Minute), 9),  // the new one's fourth id: over the limit of 3
		finding("r1", "h1", t0.Add(87*time.Minute), 10), // counted, id dropped
		finding("r3", "h1", t0, 11, "User", "backup"),   // suppressed
	}
	record := func(all bool) []alert.Alert {
		p, st, _ := newProcessor(t)
		if err := p.Suppress(ctx, &alert.Suppression{RuleID: "r3", Field: "User", Value: "backup", CreatedBy: "x"}); err != nil {
			t.Fatal(err)
		}
		// One alert opened before: the first findings join it.
		if _, _, err := p.Record(ctx, finding("r2", "h1", t0.Add(-time.Minute), 100)); err != nil {
			t.Fatal(err)
		}
		var ids []int64
		if all {
			recs, err := p.RecordAll(ctx, fs)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				ids = append(ids, r.AlertID)
			}
		} else {
			for _, f := range fs {
				id, _, err := p.Record(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
		}
		as, err := st.ListAlerts(ctx, alert.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if created, grouped, suppressed := p.Counts(); created != uint64(len(as)) || grouped != 10-uint64(len(as))+1 || suppressed != 1 {
			t.Errorf("all=%v: counts created %d grouped %d suppressed %d for %d alerts", all, created, grouped, suppressed, len(as))
		}
		t.Logf("all=%v: alert per finding %v", all, ids)
		return as
	}
	one, all := record(false), record(true)
	if len(one) != len(all) || len(one) != 4 {
		t.Fatalf("RecordAll made %d alerts, Record %d (want 4)", len(all), len(one))
	}
	for i := range one {
		a, b := one[i], all[i]
		if a.ID != b.ID || a.RuleID != b.RuleID || a.Host != b.Host || a.Count != b.Count ||
			!a.FirstSeen.Equal(b.FirstSeen) || !a.LastSeen.Equal(b.LastSeen) || !slices.Equal(a.EventIDs, b.EventIDs) {
			t.Errorf("alert %d:\nRecord    %+v\nRecordAll %+v", i, a, b)
		}
	}
}
