package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
	"github.com/vigil-edr/vigil/internal/transport"
)

// The page benchmarks run against a real SQLite store. The full fixture is
// what the console must handle in ≤ 200 ms per page: 1,000,000 stored
// events and 100,000 alerts. It takes minutes to build, so it is built only
// with VIGIL_BENCH_FULL=1; otherwise (CI's -benchtime 1x run) a small one
// is. Either is built once per test process in a temporary directory,
// removed when the process ends.
func benchSize() (events, alerts int, name string) {
	if os.Getenv("VIGIL_BENCH_FULL") == "1" {
		return 1_000_000, 100_000, "full"
	}
	return 20_000, 2_000, "small"
}

var bench struct {
	once sync.Once
	dir  string
	path string
	now  time.Time
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

const (
	benchAgents = 200
	benchRules  = 300
	benchSpan   = 7 * 24 * time.Hour // events and alerts spread over the last week
)

// benchEvent is a process creation event with 16 fields, varied by i so the
// full-text index holds many distinct tokens.
func benchEvent(i int, t time.Time) *event.Event {
	e := &event.Event{Time: t, Product: "linux", Categories: []string{"process_creation"}}
	e.Add("Image", fmt.Sprintf("/usr/lib/vendor%d/bin/tool%d", i%37, i%113))
	e.Add("CommandLine", fmt.Sprintf("tool%d --job %d --out /tmp/out%d.txt --user user%d", i%113, i, i, i%50))
	e.Add("CurrentDirectory", fmt.Sprintf("/home/user%d", i%50))
	e.Add("User", fmt.Sprintf("user%d", i%50))
	e.Add("ProcessId", fmt.Sprint(4000+i%50000))
	e.Add("ParentProcessId", fmt.Sprint(3999+i%50000))
	e.Add("ParentImage", "/usr/bin/bash")
	e.Add("ParentCommandLine", "bash -l")
	e.Add("LogonId", fmt.Sprint(1000+i%500))
	e.Add("Hashes", fmt.Sprintf("SHA256=%064x", uint64(i)*2654435761))
	e.Add("IntegrityLevel", "Medium")
	e.Add("OriginalFileName", fmt.Sprintf("tool%d", i%113))
	e.Add("Description", "vendor tool")
	e.Add("Company", fmt.Sprintf("Vendor %d", i%37))
	e.Add("TerminalSessionId", fmt.Sprint(i%8))
	e.Add("Marker", fmt.Sprintf("m%d", i%10007)) // a token in about one event of 10,007
	return e
}

// buildBenchDB fills a new SQLite store through its batch paths: Insert in
// blocks of 2,048 events per agent, CreateAlerts 10,000 at a time.
func buildBenchDB(ctx context.Context, path string, now time.Time, nEvents, nAlerts int) error {
	db, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	for a := range benchAgents {
		if err := db.PutAgent(ctx, transport.Agent{ID: fmt.Sprintf("agent-%04d", a), Hostname: fmt.Sprintf("host-%04d", a),
			OS: "linux", Arch: "amd64", Version: "1.0", EnrolledAt: now.Add(-benchSpan), LastSeen: now.Add(-time.Duration(a) * time.Minute)}); err != nil {
			return err
		}
	}
	const batch = 2048
	step := benchSpan / time.Duration(nEvents)
	buf := make([]eventstore.Stored, 0, batch)
	seqs := make([]uint64, benchAgents)
	for i := 0; i < nEvents; i += batch {
		buf = buf[:0]
		agent := (i / batch) % benchAgents
		for j := i; j < min(i+batch, nEvents); j++ {
			seqs[agent]++
			t := now.Add(-benchSpan + time.Duration(j)*step)
			buf = append(buf, eventstore.Stored{AgentID: fmt.Sprintf("agent-%04d", agent), BootEpoch: 1, Seq: seqs[agent],
				Host: fmt.Sprintf("host-%04d", agent), Event: benchEvent(j, t)})
		}
		if _, err := db.Insert(ctx, buf); err != nil {
			return err
		}
	}
	if err := db.WaitIndexed(ctx); err != nil {
		return err
	}
	levels := []string{"informational", "low", "medium", "medium", "high", "high", "critical"}
	states := []alert.State{alert.StateNew, alert.StateNew, alert.StateNew, alert.StateAcknowledged, alert.StateResolved}
	tactics := []string{"attack.execution", "attack.persistence", "attack.discovery", "attack.credential_access", "attack.defense_evasion"}
	astep := benchSpan / time.Duration(nAlerts)
	var as []*alert.Alert
	for i := range nAlerts {
		rule := i % benchRules
		t := now.Add(-benchSpan + time.Duration(i)*astep)
		as = append(as, &alert.Alert{RuleID: fmt.Sprintf("rule-%03d", rule), RuleTitle: fmt.Sprintf("Suspicious tool %d run", rule),
			Level: levels[rule%len(levels)], Tags: []string{tactics[rule%len(tactics)], fmt.Sprintf("attack.t%04d", 1000+rule%90)},
			Host: fmt.Sprintf("host-%04d", i%benchAgents), AgentID: fmt.Sprintf("agent-%04d", i%benchAgents),
			State: states[i%len(states)], Count: 1 + i%5, FirstSeen: t, LastSeen: t,
			Fields:   []event.Field{{Name: "CommandLine", Value: fmt.Sprintf("tool%d --job %d", rule, i)}, {Name: "User", Value: "root"}},
			EventIDs: []int64{int64(1 + i%max(nEvents, 1))}})
		if len(as) == 10_000 || i == nAlerts-1 {
			if err := db.CreateAlerts(ctx, as); err != nil {
				return err
			}
			as = as[:0]
		}
	}
	return nil
}

// benchServer opens the cached fixture (building it first if needed) and
// returns a Server over it and a signed-in analyst's cookie.
func benchServer(b *testing.B) (*Server, *http.Cookie) {
	b.Helper()
	nEvents, nAlerts, size := benchSize()
	bench.once.Do(func() {
		bench.dir, bench.err = os.MkdirTemp("", "vigil-bench-")
		if bench.err != nil {
			return
		}
		bench.path = filepath.Join(bench.dir, "vigil.db")
		bench.now = time.Now().UTC().Truncate(time.Second)
		start := time.Now()
		bench.err = buildBenchDB(context.Background(), bench.path, bench.now, nEvents, nAlerts)
		fmt.Fprintf(os.Stderr, "console benchmark fixture (%s): %d events, %d alerts, built in %v (set VIGIL_BENCH_FULL=1 for 1,000,000 events and 100,000 alerts)\n",
			size, nEvents, nAlerts, time.Since(start).Round(time.Millisecond))
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	ctx := context.Background()
	db, err := sqlite.Open(ctx, bench.path, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	name := fmt.Sprintf("bench%d", time.Now().UnixNano())
	u, err := authz.NewUser(name, authz.RoleAnalyst, testPassword, fastArgon2, bench.now)
	if err != nil {
		b.Fatal(err)
	}
	if err := db.CreateUser(ctx, u); err != nil {
		b.Fatal(err)
	}
	secret, hash := authz.NewSessionSecret()
	if err := db.CreateSession(ctx, authz.Session{Hash: hash, User: name, CSRF: authz.NewSecret(),
		CreatedAt: bench.now, LastSeen: bench.now, ExpiresAt: bench.now.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	login, err := authz.NewAuthenticator(authz.LoginOptions{Users: db, Argon2: fastArgon2})
	if err != nil {
		b.Fatal(err)
	}
	srv := New(Options{Tokens: db, Alerts: alerts{db, alert.NewProcessor(alert.Options{Store: db})}, Events: db, Hosts: db,
		Enrollment: db, Overview: db, Inventory: db, Users: db, Sessions: db, Login: login,
		Now: func() time.Time { return bench.now }})
	return srv, &http.Cookie{Name: sessionCookie, Value: secret}
}

// BenchmarkConsolePages measures the server time of whole page requests
// (session check, queries, template) against the fixture; the goal is
// ≤ 200 ms for the alert queue and the search page at full size.
func BenchmarkConsolePages(b *testing.B) {
	srv, cookie := benchServer(b)
	for _, pg := range []struct{ name, path string }{
		{"alerts", "/alerts"},
		{"alerts/high", "/alerts?min_level=high"},
		{"alerts/host", "/alerts?host=host-0042"},
		{"search", "/search"},
		{"search/text", "/search?q=m5003&range=7d"},
		{"search/field", "/search?field=User%3Duser7&range=7d"},
		{"search/host", "/search?host=host-0042&range=7d"},
		{"search/older", "/search?range=7d&before=500000"},
		{"overview", "/"},
		{"overview/7d", "/?range=7d"},
	} {
		b.Run(pg.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", pg.path, nil)
			req.AddCookie(cookie)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("GET %s: %d %.300s", pg.path, w.Code, w.Body.String())
				}
			}
		})
	}
}
