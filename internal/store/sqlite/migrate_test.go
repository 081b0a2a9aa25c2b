package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
)

// TestMigrateRowEvents: a version 3 file (one row per event) opens at the
// current version with every event in a block under its old row id, its scan
// state, its duplicate identity and its text searchable.
func TestMigrateRowEvents(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v3.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	must := func(q string, args ...any) {
		t.Helper()
		if _, err := raw.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	must(`CREATE TABLE schema_version (version INTEGER NOT NULL)`)
	must(`INSERT INTO schema_version(version) VALUES (3)`)
	for _, m := range migrations[:3] {
		must(m)
	}
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC).UnixNano()
	// Ids 1..3 for a1 on h1 (interleaved with a2), seq 1<<63 keeps its bits.
	for _, r := range []struct {
		id         int64
		agent      string
		seq        int64
		host, text string
	}{{1, "a1", 1, "h1", "alpha"}, {2, "a1", 2, "h1", "beta"}, {3, "a2", 1, "h2", "gamma"}, {4, "a1", -1 << 63, "h1", "delta"}} {
		must(`INSERT INTO events(id, agent_id, boot_epoch, seq, host, time, product, services, categories, fields, bytes) VALUES (?, ?, 1, ?, ?, ?, 'linux', '["auditd"]', '["process_creation"]', ?, 100)`,
			r.id, r.agent, r.seq, r.host, t0+r.id, `[["CommandLine","`+r.text+` word"]]`)
		must(`INSERT INTO event_categories(category, time, event_id) VALUES ('process_creation', ?, ?)`, t0+r.id, r.id)
	}
	must(`INSERT INTO events_unscanned(id) VALUES (2), (3)`)
	must(`UPDATE counters SET value = CASE name WHEN 'event_next_id' THEN 5 WHEN 'event_count' THEN 4 WHEN 'event_bytes' THEN 400 ELSE value END`)
	raw.Close()

	d, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r, err := d.Get(ctx, 3)
	if err != nil || r.AgentID != "a2" || r.Host != "h2" || r.Fields[0].Value != "gamma word" || !slices.Equal(r.Category, []string{"process_creation"}) {
		t.Fatalf("Get(3) = %+v, %v", r, err)
	}
	if n, b, err := d.Stats(ctx); n != 4 || b != 400 || err != nil {
		t.Errorf("Stats = %d, %d, %v", n, b, err)
	}
	if rs, err := d.Search(ctx, eventstore.Query{Text: "beta"}); err != nil || len(rs) != 1 || rs[0].ID != 2 {
		t.Errorf("Search(beta) = %v, %v", rs, err)
	}
	if rs, err := d.Search(ctx, eventstore.Query{Category: "process_creation", Host: "h1"}); err != nil || len(rs) != 3 {
		t.Errorf("category search = %v, %v", rs, err)
	}
	mk := func(agent string, seq uint64) eventstore.Stored {
		e := &event.Event{Time: time.Unix(0, t0), Product: "linux"}
		return eventstore.Stored{AgentID: agent, BootEpoch: 1, Seq: seq, Host: "h1", Event: e}
	}
	res, err := d.Insert(ctx, []eventstore.Stored{mk("a1", 1), mk("a1", 2), mk("a2", 1), mk("a1", 1<<63), mk("a1", 3)})
	if err != nil {
		t.Fatal(err)
	}
	want := []eventstore.Inserted{{ID: 1, Duplicate: true}, {ID: 2, Duplicate: true, NeedsScan: true},
		{ID: 3, Duplicate: true, NeedsScan: true}, {ID: 4, Duplicate: true}, {ID: 5, NeedsScan: true}}
	if !slices.Equal(res, want) {
		t.Errorf("Insert after migration = %+v, want %+v", res, want)
	}
}
