package sqlite_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/overview"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
)

// BenchmarkAlertSummary aggregates a window holding n alerts (300 rules,
// 200 hosts, all levels) as the console overview does: 10,000, and 100,000
// with VIGIL_BENCH_FULL=1 (the size of the console benchmark).
func BenchmarkAlertSummary(b *testing.B) {
	sizes := []int{10_000}
	if os.Getenv("VIGIL_BENCH_FULL") == "1" {
		sizes = append(sizes, 100_000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("alerts=%d", n), func(b *testing.B) {
			ctx := b.Context()
			db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "vigil.db"), sqlite.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
			span := 7 * 24 * time.Hour
			levels := []string{"informational", "low", "medium", "high", "critical"}
			var as []*alert.Alert
			for i := range n {
				t := now.Add(-span + time.Duration(i)*(span/time.Duration(n)))
				as = append(as, &alert.Alert{RuleID: fmt.Sprintf("rule-%03d", i%300), RuleTitle: "t", Level: levels[i%5],
					Tags: []string{"attack.execution", "attack.t1059"}, Host: fmt.Sprintf("host-%04d", i%200), FirstSeen: t, LastSeen: t})
			}
			if err := db.CreateAlerts(ctx, as); err != nil {
				b.Fatal(err)
			}
			w := overview.Window{Since: now.Add(-span), Until: now, Bucket: 3 * time.Hour}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := db.AlertSummary(ctx, w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
