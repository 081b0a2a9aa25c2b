package overview_test

import (
	"path/filepath"
	"strconv"
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
		{ID: "a1", Hostname: "web-1", LastSeen: now.Add(-time.Minute)},
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
	if len(f.Stale) != 3 || f.Stale[0].ID != "a5" || f.Stale[1].ID != "a3" || f.Stale[2].ID != "a2" {
		t.Errorf("stale = %+v, want never seen first, then longest silent", f.Stale)
	}
}

func TestLatestHealth(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h, err := overview.LatestHealth(ctx, db, "a1", now.Add(-time.Hour))
	if err != nil || h != nil {
		t.Fatalf("no reports: %+v, %v", h, err)
	}
	evs := []eventstore.Stored{
		{AgentID: "a1", BootEpoch: 1, Seq: 1, Host: "web-1", Event: healthEvent("web-1", now.Add(-10*time.Minute), "SpoolDepth", "1")},
		{AgentID: "a1", BootEpoch: 1, Seq: 2, Host: "web-1", Event: healthEvent("web-1", now.Add(-time.Minute),
			"SpoolDepth", "42", "SpoolBytes", "4096", "SpoolDropped", "9", "EventsSent", "x1", "CPUSeconds", "1.250",
			"RSSBytes", strconv.Itoa(30<<20), "Sensor.process", "running <img src=x onerror=alert(1)>", "Sensor.", "nameless")},
		{AgentID: "a1", BootEpoch: 1, Seq: 3, Host: "web-1", Event: healthEvent("web-1", now.Add(-time.Minute), "EventType", "spool_gap", "DroppedEvents", "9")},
		{AgentID: "a2", BootEpoch: 1, Seq: 1, Host: "web-2", Event: healthEvent("web-2", now, "SpoolDepth", "7")},
	}
	if _, err := db.Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	h, err = overview.LatestHealth(ctx, db, "a1", now.Add(-time.Hour))
	if err != nil || h == nil {
		t.Fatalf("LatestHealth: %+v, %v", h, err)
	}
	if h.SpoolDepth != 42 || h.SpoolBytes != 4096 || h.SpoolDropped != 9 || h.EventsSent != -1 || h.EventsRecorded != -1 ||
		h.CPUSeconds != "1.250" || h.RSSBytes != 30<<20 || !h.At.Equal(now.Add(-time.Minute)) {
		t.Errorf("health = %+v", h)
	}
	if len(h.Sensors) != 1 || h.Sensors[0] != (overview.Sensor{Name: "process", Status: "running <img src=x onerror=alert(1)>"}) {
		t.Errorf("sensors = %+v", h.Sensors)
	}
}
