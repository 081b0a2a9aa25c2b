package overview_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/overview"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
	"github.com/vigil-edr/vigil/internal/transport"
)

var now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func healthEvent(host string, at time.Time, kv ...string) *event.Event {
	e := &event.Event{Time: at, Product: "linux", Categories: []string{overview.HealthCategory}}
	e.Add("Hostname", host)
	for i := 0; i+1 < len(kv); i += 2 {
		e.Add(kv[i], kv[i+1])
	}
	return e
}

// TestFleetHealth runs against a real SQLite store: agents by last contact,
// spool drops summed from the spool_gap health events of the window.
func TestFleetHealth(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, a := range []transport.Agent{
		{ID: "a1", Hostname: "web-1", LastSeen: now.Add(-time.Minute), HealthAt: now.Add(-time.Minute),
			Health: []byte(`{"time":"2026-12-01T10:00:00Z","throttled":true,"throttle":"fim rescans","spool":{},"sensors":[]}`)},
		{ID: "a2", Hostname: "web-2", LastSeen: now.Add(-overview.OnlineWithin - time.Second)},
		{ID: "a3", Hostname: "db-1", LastSeen: now.Add(-48 * time.Hour)},
		{ID: "a4", Hostname: "old", LastSeen: now, Revoked: true, RevokedAt: now},
		{ID: "a5", Hostname: "never"},
	} {
		if err := db.PutAgent(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	since := now.Add(-24 * time.Hour)
	var seq uint64
	put := func(agent, host string, e *event.Event) {
		t.Helper()
		seq++
		if _, err := db.Insert(ctx, []eventstore.Stored{{AgentID: agent, BootEpoch: 1, Seq: seq, Host: host, Event: e}}); err != nil {
			t.Fatal(err)
		}
	}
	put("a1", "web-1", healthEvent("web-1", now.Add(-time.Hour), "EventType", "spool_gap", "DroppedEvents", "120"))
	put("a1", "web-1", healthEvent("web-1", now.Add(-30*time.Minute), "EventType", "spool_gap", "DroppedEvents", "5"))
	put("a2", "web-2", healthEvent("web-2", now.Add(-2*time.Hour), "EventType", "spool_gap", "DroppedEvents", "7"))
	put("a2", "web-2", healthEvent("web-2", now.Add(-2*time.Hour), "EventType", "spool_gap", "DroppedEvents", "-3"))     // not a count
	put("a2", "web-2", healthEvent("web-2", now.Add(-2*time.Hour), "EventType", "spool_gap", "DroppedEvents", "1e9"))    // not a count
	put("a3", "db-1", healthEvent("db-1", now.Add(-25*time.Hour), "EventType", "spool_gap", "DroppedEvents", "1000000")) // too old

	f, err := overview.FleetHealth(ctx, db, db, since, now)
	if err != nil {
		t.Fatal(err)
	}
	if f.Online != 1 || f.Offline != 3 || f.Revoked != 1 {
		t.Errorf("online %d offline %d revoked %d, want 1 3 1", f.Online, f.Offline, f.Revoked)
	}
	if f.Dropped != 132 || f.DropsTruncated || len(f.Drops) != 2 ||
		f.Drops[0] != (overview.AgentDrops{AgentID: "a1", Host: "web-1", Dropped: 125}) || f.Drops[1].Dropped != 7 {
		t.Errorf("drops %d %+v", f.Dropped, f.Drops)
	}
	if f.NumTroubled != 1 || len(f.Troubled) != 1 || f.Troubled[0].ID != "a1" {
		t.Errorf("troubled %d %+v, want a1 (throttled)", f.NumTroubled, f.Troubled)
	}
	if len(f.Stale) != 3 || f.Stale[0].ID != "a5" || f.Stale[1].ID != "a3" || f.Stale[2].ID != "a2" {
		t.Errorf("stale = %+v, want never seen first, then longest silent", f.Stale)
	}
}

// TestAgentHealth decodes the stored heartbeat health, checks it again,
// and says when it reports trouble.
func TestAgentHealth(t *testing.T) {
	h, err := overview.AgentHealth(transport.Agent{ID: "a1"})
	if err != nil || h != nil {
		t.Fatalf("no heartbeat yet: %+v, %v", h, err)
	}
	body := `{"time":"2026-12-01T10:00:00Z","cpu_percent":1.5,"rss_bytes":31457280,"restarts":0,"spool":{"records":42,"bytes":4096,"dropped":9},` +
		`"events_recorded":10,"events_sent":8,"sensors":[{"name":"process","mechanism":"audit-netlink unicast","state":"running","detail":"<img src=x onerror=alert(1)>"}]}`
	h, err = overview.AgentHealth(transport.Agent{ID: "a1", Health: []byte(body), HealthAt: now})
	if err != nil || h == nil {
		t.Fatalf("AgentHealth: %+v, %v", h, err)
	}
	if h.Spool.Records != 42 || h.Spool.Dropped != 9 || h.RSSBytes != 30<<20 || !h.Received.Equal(now) || h.Troubled() ||
		len(h.Sensors) != 1 || h.Sensors[0].Detail != "<img src=x onerror=alert(1)>" {
		t.Errorf("health = %+v", h)
	}
	h.Sensors[0].State = "degraded"
	if !h.Troubled() {
		t.Error("a degraded sensor is not trouble")
	}
	for _, bad := range []string{`{"time":"2026-12-01T10:00:00Z","cpu_percent":-1}`, `{"sensors":[]}`, "\xff", `[`} {
		if _, err := overview.AgentHealth(transport.Agent{ID: "a1", Health: []byte(bad)}); err == nil {
			t.Errorf("stored health %q accepted", bad)
		}
	}
}
