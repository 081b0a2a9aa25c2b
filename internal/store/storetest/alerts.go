package storetest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/store"
)

func newAlert(t *testing.T, b Backend, rule, host, level string, seen time.Time) *alert.Alert {
	t.Helper()
	a := &alert.Alert{RuleID: rule, RuleTitle: "Title " + rule, Level: level, Tags: []string{"attack.t1059", "attack.execution"},
		Host: host, AgentID: "agent-" + host, State: alert.StateNew, Count: 1, FirstSeen: seen, LastSeen: seen,
		Fields: []event.Field{{Name: "Image", Value: `C:\x.exe`}, {Name: "User", Value: "bob"}}, EventIDs: []int64{10}}
	must(t, b.CreateAlert(ctx(t), a))
	if a.ID == 0 {
		t.Fatal("CreateAlert did not set ID")
	}
	return a
}

func alertIDs(as []alert.Alert) []int64 {
	out := []int64{}
	for _, a := range as {
		out = append(out, a.ID)
	}
	return out
}

var alertTests = []test{
	{"CreateGet", func(t *testing.T, b Backend) {
		a := newAlert(t, b, "r1", "web-1", "high", t0)
		a.Correlation = true
		got, err := b.GetAlert(ctx(t), a.ID)
		must(t, err)
		if got.RuleID != "r1" || got.RuleTitle != "Title r1" || got.Level != "high" || got.Host != "web-1" ||
			got.AgentID != "agent-web-1" || got.State != alert.StateNew || got.Count != 1 ||
			!slices.Equal(got.Tags, a.Tags) || !slices.Equal(got.Fields, a.Fields) || !slices.Equal(got.EventIDs, []int64{10}) {
			t.Errorf("GetAlert = %+v", got)
		}
		sameTime(t, "FirstSeen", got.FirstSeen, t0)
		_, err = b.GetAlert(ctx(t), a.ID+100)
		wantErr(t, err, store.ErrNotFound)
		c := &alert.Alert{RuleID: "r2", Host: "h", Level: "low", Correlation: true}
		must(t, b.CreateAlert(ctx(t), c))
		got, err = b.GetAlert(ctx(t), c.ID)
		must(t, err)
		if !got.Correlation || got.State != alert.StateNew || c.ID == a.ID {
			t.Errorf("minimal alert = %+v (empty State is stored as new)", got)
		}
	}},
	{"OpenAlertGrouping", func(t *testing.T, b Backend) {
		_, err := b.OpenAlert(ctx(t), "r1", "web-1", t0)
		wantErr(t, err, store.ErrNotFound)
		a := newAlert(t, b, "r1", "web-1", "high", t0)
		newAlert(t, b, "r1", "web-2", "high", t0)
		newAlert(t, b, "r2", "web-1", "high", t0)
		got, err := b.OpenAlert(ctx(t), "r1", "web-1", t0.Add(-time.Hour))
		must(t, err)
		if got.ID != a.ID {
			t.Errorf("OpenAlert = %d, want %d", got.ID, a.ID)
		}
		// since is inclusive; a later since misses it.
		if _, err := b.OpenAlert(ctx(t), "r1", "web-1", t0); err != nil {
			t.Errorf("OpenAlert at LastSeen: %v", err)
		}
		_, err = b.OpenAlert(ctx(t), "r1", "web-1", t0.Add(time.Nanosecond))
		wantErr(t, err, store.ErrNotFound)
		// Acknowledged is still open; resolved is not.
		must(t, b.SetState(ctx(t), a.ID, alert.StateNew, alert.StateAcknowledged, "ann", t0, ""))
		if _, err := b.OpenAlert(ctx(t), "r1", "web-1", t0); err != nil {
			t.Errorf("acknowledged alert not open: %v", err)
		}
		must(t, b.SetState(ctx(t), a.ID, alert.StateAcknowledged, alert.StateResolved, "ann", t0, ""))
		_, err = b.OpenAlert(ctx(t), "r1", "web-1", t0)
		wantErr(t, err, store.ErrNotFound)
	}},
	{"AddOccurrence", func(t *testing.T, b Backend) {
		a := newAlert(t, b, "r1", "h", "medium", t0)
		must(t, b.AddOccurrence(ctx(t), a.ID, t0.Add(time.Minute), []int64{11, 12}, 4))
		must(t, b.AddOccurrence(ctx(t), a.ID, t0.Add(30*time.Second), []int64{13, 14, 15}, 4)) // late, out of order
		got, err := b.GetAlert(ctx(t), a.ID)
		must(t, err)
		if got.Count != 3 || !slices.Equal(got.EventIDs, []int64{10, 11, 12, 13}) {
			t.Errorf("after two occurrences: count %d, event ids %v", got.Count, got.EventIDs)
		}
		sameTime(t, "LastSeen", got.LastSeen, t0.Add(time.Minute))
		sameTime(t, "FirstSeen", got.FirstSeen, t0)
		wantErr(t, b.AddOccurrence(ctx(t), a.ID+100, t0, nil, 4), store.ErrNotFound)
		// Concurrent occurrences are all counted.
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if err := b.AddOccurrence(ctx(t), a.ID, t0, []int64{99}, 4); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got, _ = b.GetAlert(ctx(t), a.ID)
		if got.Count != 11 || len(got.EventIDs) != 4 {
			t.Errorf("after concurrent occurrences: count %d, %d event ids", got.Count, len(got.EventIDs))
		}
	}},
	{"WriteAlerts", func(t *testing.T, b Backend) {
		// Writes inside the transaction see each other and commit together.
		var a *alert.Alert
		must(t, b.WriteAlerts(ctx(t), func(w alert.Writer) error {
			a = &alert.Alert{RuleID: "r1", Host: "h", Level: "high", Count: 1, FirstSeen: t0, LastSeen: t0, EventIDs: []int64{1}}
			if err := w.CreateAlert(ctx(t), a); err != nil {
				return err
			}
			got, err := w.OpenAlert(ctx(t), "r1", "h", t0)
			if err != nil || got.ID != a.ID {
				t.Errorf("OpenAlert in the transaction = %v, %v; want alert %d", got, err, a.ID)
			}
			if err := w.AddOccurrences(ctx(t), a.ID, 2, t0.Add(time.Minute), []int64{1, 2, 3}); err != nil {
				return err
			}
			// nil event ids keep them; an earlier time keeps LastSeen.
			return w.AddOccurrences(ctx(t), a.ID, 1, t0, nil)
		}))
		got, err := b.GetAlert(ctx(t), a.ID)
		must(t, err)
		if got.Count != 4 || !slices.Equal(got.EventIDs, []int64{1, 2, 3}) || got.State != alert.StateNew {
			t.Errorf("after WriteAlerts: %+v, want count 4, event ids [1 2 3], state new", got)
		}
		sameTime(t, "LastSeen", got.LastSeen, t0.Add(time.Minute))
		// An unknown alert is ErrNotFound; an error rolls everything back.
		boom := errors.New("boom")
		err = b.WriteAlerts(ctx(t), func(w alert.Writer) error {
			if err := w.AddOccurrences(ctx(t), a.ID+100, 1, t0, nil); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("AddOccurrences on an unknown alert: %v, want ErrNotFound", err)
			}
			if err := w.CreateAlert(ctx(t), &alert.Alert{RuleID: "r2", Host: "h", Level: "low"}); err != nil {
				return err
			}
			if err := w.AddOccurrences(ctx(t), a.ID, 5, t0.Add(time.Hour), nil); err != nil {
				return err
			}
			return boom
		})
		wantErr(t, err, boom)
		got, _ = b.GetAlert(ctx(t), a.ID)
		if got.Count != 4 {
			t.Errorf("rolled-back occurrences counted: count %d, want 4", got.Count)
		}
		if _, err := b.OpenAlert(ctx(t), "r2", "h", time.Time{}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("rolled-back alert exists: %v", err)
		}
	}},
	{"SetStateCompareAndSet", func(t *testing.T, b Backend) {
		a := newAlert(t, b, "r1", "h", "low", t0)
		at := t0.Add(time.Hour)
		must(t, b.SetState(ctx(t), a.ID, alert.StateNew, alert.StateFalsePositive, "ann", at, "test host"))
		got, _ := b.GetAlert(ctx(t), a.ID)
		if got.State != alert.StateFalsePositive || got.StateBy != "ann" || got.Reason != "test host" {
			t.Errorf("after SetState: %+v", got)
		}
		sameTime(t, "StateAt", got.StateAt, at)
		// A second analyst acting on the stale state loses.
		wantErr(t, b.SetState(ctx(t), a.ID, alert.StateNew, alert.StateAcknowledged, "bob", at, ""), store.ErrConflict)
		wantErr(t, b.SetState(ctx(t), a.ID+100, alert.StateNew, alert.StateAcknowledged, "bob", at, ""), store.ErrNotFound)
		got, _ = b.GetAlert(ctx(t), a.ID)
		if got.State != alert.StateFalsePositive || got.StateBy != "ann" {
			t.Errorf("failed SetState changed the alert: %+v", got)
		}
		// Racing analysts: exactly one wins.
		c := newAlert(t, b, "r1", "h2", "low", t0)
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range 8 {
			wg.Go(func() {
				err := b.SetState(ctx(t), c.ID, alert.StateNew, alert.StateAcknowledged, "x", at, "")
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					wins++
				} else if !errors.Is(err, store.ErrConflict) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Errorf("%d racing SetState calls won, want 1", wins)
		}
	}},
	{"AssigneeAndComments", func(t *testing.T, b Backend) {
		a := newAlert(t, b, "r1", "h", "low", t0)
		must(t, b.SetAssignee(ctx(t), a.ID, "carol"))
		wantErr(t, b.SetAssignee(ctx(t), a.ID+100, "carol"), store.ErrNotFound)
		got, _ := b.GetAlert(ctx(t), a.ID)
		if got.Assignee != "carol" {
			t.Errorf("Assignee = %q", got.Assignee)
		}
		c1 := &alert.Comment{AlertID: a.ID, Author: "carol", Text: "looking", At: t0.Add(time.Minute)}
		c2 := &alert.Comment{AlertID: a.ID, Author: "dave", Text: "benign ✓", At: t0.Add(2 * time.Minute)}
		must(t, b.AddComment(ctx(t), c2))
		must(t, b.AddComment(ctx(t), c1))
		if c1.ID == 0 || c2.ID == 0 || c1.ID == c2.ID {
			t.Errorf("comment ids %d, %d", c1.ID, c2.ID)
		}
		wantErr(t, b.AddComment(ctx(t), &alert.Comment{AlertID: a.ID + 100, Author: "x", Text: "y", At: t0}), store.ErrNotFound)
		cs, err := b.Comments(ctx(t), a.ID)
		must(t, err)
		if len(cs) != 2 || cs[0].ID != c1.ID || cs[1].Text != "benign ✓" || cs[1].Author != "dave" || cs[0].AlertID != a.ID {
			t.Errorf("Comments = %+v (want oldest first)", cs)
		}
		sameTime(t, "At", cs[0].At, c1.At)
		cs, err = b.Comments(ctx(t), a.ID+100)
		must(t, err)
		if len(cs) != 0 {
			t.Errorf("comments of an unknown alert: %v", cs)
		}
	}},
	{"ListAlerts", func(t *testing.T, b Backend) {
		info := newAlert(t, b, "r1", "web-1", "informational", t0)
		low := newAlert(t, b, "r1", "web-2", "low", t0.Add(time.Minute))
		med := newAlert(t, b, "r2", "web-1", "medium", t0.Add(2*time.Minute))
		high := newAlert(t, b, "r2", "web-2", "high", t0.Add(3*time.Minute))
		crit := newAlert(t, b, "r3", "web-1", "critical", t0.Add(4*time.Minute))
		must(t, b.SetState(ctx(t), med.ID, alert.StateNew, alert.StateAcknowledged, "a", t0, ""))
		must(t, b.SetState(ctx(t), high.ID, alert.StateNew, alert.StateResolved, "a", t0, ""))
		for _, tc := range []struct {
			name string
			f    alert.Filter
			want []*alert.Alert
		}{
			{"all newest first", alert.Filter{}, []*alert.Alert{crit, high, med, low, info}},
			{"states", alert.Filter{States: []alert.State{alert.StateAcknowledged, alert.StateResolved}}, []*alert.Alert{high, med}},
			{"host", alert.Filter{Host: "web-2"}, []*alert.Alert{high, low}},
			{"rule", alert.Filter{RuleID: "r2"}, []*alert.Alert{high, med}},
			{"min medium", alert.Filter{MinLevel: "medium"}, []*alert.Alert{crit, high, med}},
			{"min high", alert.Filter{MinLevel: "high"}, []*alert.Alert{crit, high}},
			{"min critical", alert.Filter{MinLevel: "critical"}, []*alert.Alert{crit}},
			{"min informational", alert.Filter{MinLevel: "informational"}, []*alert.Alert{crit, high, med, low, info}},
			{"since", alert.Filter{Since: t0.Add(3 * time.Minute)}, []*alert.Alert{crit, high}},
			{"limit", alert.Filter{Limit: 2}, []*alert.Alert{crit, high}},
			{"before", alert.Filter{Before: med.ID, Limit: 2}, []*alert.Alert{low, info}},
			{"combined", alert.Filter{Host: "web-1", MinLevel: "medium", States: []alert.State{alert.StateNew}}, []*alert.Alert{crit}},
		} {
			got, err := b.ListAlerts(ctx(t), tc.f)
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			var want []int64
			for _, a := range tc.want {
				want = append(want, a.ID)
			}
			if g := alertIDs(got); !slices.Equal(g, want) {
				t.Errorf("%s: got %v, want %v", tc.name, g, want)
			}
		}
		if _, err := b.ListAlerts(ctx(t), alert.Filter{MinLevel: "severe"}); err == nil {
			t.Error("unknown MinLevel accepted")
		}
	}},
	{"Suppressions", func(t *testing.T, b Backend) {
		s1 := &alert.Suppression{RuleID: "r1", Host: "web-1", Reason: "patching", CreatedBy: "ann", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		s2 := &alert.Suppression{RuleID: "r2", Field: "User", Value: "backup", CreatedBy: "ann", CreatedAt: t0} // never expires
		s3 := &alert.Suppression{RuleID: "r3", CreatedBy: "ann", CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}
		for _, s := range []*alert.Suppression{s1, s2, s3} {
			must(t, b.CreateSuppression(ctx(t), s))
			if s.ID == 0 {
				t.Fatal("CreateSuppression did not set ID")
			}
		}
		active := func(now time.Time) []int64 {
			ss, err := b.ActiveSuppressions(ctx(t), now)
			must(t, err)
			var out []int64
			for _, s := range ss {
				out = append(out, s.ID)
			}
			return out
		}
		if got := active(t0); !slices.Equal(got, []int64{s1.ID, s2.ID, s3.ID}) {
			t.Errorf("active at t0: %v", got)
		}
		if got := active(t0.Add(time.Minute)); !slices.Equal(got, []int64{s1.ID, s2.ID}) {
			t.Errorf("active at expiry of s3: %v (expired at ExpiresAt)", got)
		}
		if got := active(t0.Add(2 * time.Hour)); !slices.Equal(got, []int64{s2.ID}) {
			t.Errorf("active later: %v", got)
		}
		ss, _ := b.ActiveSuppressions(ctx(t), t0)
		if g := ss[1]; g.Field != "User" || g.Value != "backup" || g.RuleID != "r2" || g.CreatedBy != "ann" || !g.ExpiresAt.IsZero() {
			t.Errorf("suppression round trip: %+v", g)
		}
		if g := ss[0]; g.Host != "web-1" || g.Reason != "patching" {
			t.Errorf("suppression round trip: %+v", g)
		}
		must(t, b.DeleteSuppression(ctx(t), s2.ID))
		wantErr(t, b.DeleteSuppression(ctx(t), s2.ID), store.ErrNotFound)
		if got := active(t0); !slices.Equal(got, []int64{s1.ID, s3.ID}) {
			t.Errorf("after delete: %v", got)
		}
	}},
}
