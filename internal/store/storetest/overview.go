package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/overview"
)

var overviewTests = []test{
	{"AlertSummary", func(t *testing.T, b Backend) {
		mk := func(rule, title, host, level string, tags []string, at time.Time) {
			t.Helper()
			must(t, b.CreateAlert(ctx(t), &alert.Alert{RuleID: rule, RuleTitle: title, Level: level, Tags: tags,
				Host: host, Count: 1, FirstSeen: at, LastSeen: at.Add(time.Hour)}))
		}
		exec := []string{"attack.execution", "attack.t1059.001"}
		mk("r1", "old title", "web-1", "high", exec, t0)                            // bucket 0
		mk("r1", "New <b>title</b>", "web-2", "high", exec, t0.Add(90*time.Minute)) // bucket 1
		mk("r2", "Recon", "web-1", "low", []string{"attack.discovery"}, t0.Add(2*time.Hour))
		mk("r3", "Odd level", "web-1", "weird", nil, t0.Add(2*time.Hour+time.Minute))
		mk("r2", "Recon", "db-1", "critical", nil, t0.Add(-time.Nanosecond)) // before the window
		mk("r2", "Recon", "db-1", "critical", nil, t0.Add(3*time.Hour))      // at Until: excluded

		w := overview.Window{Since: t0, Until: t0.Add(3 * time.Hour), Bucket: time.Hour, Top: 1}
		s, err := b.AlertSummary(ctx(t), w)
		must(t, err)
		if len(s.Buckets) != 3 {
			t.Fatalf("buckets = %d, want 3", len(s.Buckets))
		}
		want := [][overview.NumLevels]int64{{0, 0, 0, 1, 0}, {0, 0, 0, 1, 0}, {1, 1, 0, 0, 0}}
		for i, bk := range s.Buckets {
			if bk.Counts != want[i] {
				t.Errorf("bucket %d counts = %v, want %v", i, bk.Counts, want[i])
			}
			sameTime(t, "bucket start", bk.Start, t0.Add(time.Duration(i)*time.Hour))
		}
		if s.Total != [overview.NumLevels]int64{1, 1, 0, 2, 0} {
			t.Errorf("total = %v", s.Total)
		}
		if len(s.Rules) != 3 {
			t.Fatalf("rules = %+v", s.Rules)
		}
		r := s.Rules[0]
		if r.RuleID != "r1" || r.Alerts != 2 || r.Title != "New <b>title</b>" || !slices.Equal(r.Tags, exec) {
			t.Errorf("top rule = %+v (the newest alert's title and tags)", r)
		}
		if s.Rules[1].RuleID != "r2" || s.Rules[2].RuleID != "r3" {
			t.Errorf("rules order = %+v (ties by id)", s.Rules)
		}
		if len(s.TopHosts) != 1 || s.TopHosts[0] != (overview.HostCount{Host: "web-1", Alerts: 3}) {
			t.Errorf("top hosts = %+v", s.TopHosts)
		}

		empty, err := b.AlertSummary(ctx(t), overview.Window{Since: t0.Add(-48 * time.Hour), Until: t0.Add(-47 * time.Hour), Bucket: 25 * time.Minute})
		must(t, err)
		if len(empty.Buckets) != 3 || len(empty.Rules) != 0 || len(empty.TopHosts) != 0 || empty.Total != [overview.NumLevels]int64{} {
			t.Errorf("empty window = %+v", empty)
		}
		for _, bad := range []overview.Window{
			{Since: t0, Until: t0, Bucket: time.Hour},
			{Since: t0, Until: t0.Add(time.Hour)},
			{Since: t0, Until: t0.Add(time.Hour), Bucket: time.Nanosecond},
			{Until: t0, Bucket: time.Hour},
			{Since: t0, Until: t0.Add(time.Hour), Bucket: time.Hour, Top: -1},
		} {
			if _, err := b.AlertSummary(ctx(t), bad); !errors.Is(err, overview.ErrWindow) {
				t.Errorf("window %+v: error %v, want ErrWindow", bad, err)
			}
		}
	}},
}
