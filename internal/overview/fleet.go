package overview

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/transport"
)

// OnlineWithin is how recently an agent must have been in contact (a batch
// or a heartbeat; agents send a health event every minute and a heartbeat
// every ten) to count as online.
const OnlineWithin = 15 * time.Minute

// HealthCategory is the log source category of agent health events.
const HealthCategory = "agent_health"

// Agents lists enrolled agents; transport.Store satisfies it.
type Agents interface {
	ListAgents(ctx context.Context) ([]transport.Agent, error)
}

// Events searches stored events; eventstore.Store satisfies it.
type Events interface {
	Search(ctx context.Context, q eventstore.Query) ([]eventstore.Record, error)
}

// Fleet is the state of the enrolled agents.
type Fleet struct {
	Online, Offline, Revoked int
	// Since is the start of the window the drop figures cover.
	Since time.Time
	// Dropped is the number of events agents' spools reported dropping
	// (spool_gap health events) since Since; DropsTruncated is set when
	// there were more gap events than one search returns, so Dropped is a
	// lower bound.
	Dropped        int64
	DropsTruncated bool
	// Drops are the agents that dropped events since Since, most first.
	Drops []AgentDrops
	// Stale are the offline, unrevoked agents, longest silent first (at most
	// MaxStale).
	Stale []transport.Agent
}

// AgentDrops is one agent's dropped events in the window.
type AgentDrops struct {
	AgentID, Host string
	Dropped       int64
}

// MaxStale bounds Fleet.Stale.
const MaxStale = 20

// Online reports whether a counts as online at now.
func Online(a transport.Agent, now time.Time) bool {
	return !a.Revoked && !a.LastSeen.IsZero() && now.Sub(a.LastSeen) <= OnlineWithin
}

// FleetHealth counts agents online, offline and revoked at now and sums the
// spool drops the agents reported since since.
func FleetHealth(ctx context.Context, agents Agents, events Events, since, now time.Time) (*Fleet, error) {
	as, err := agents.ListAgents(ctx)
	if err != nil {
		return nil, fmt.Errorf("overview: fleet: %w", err)
	}
	f := &Fleet{Since: since}
	for _, a := range as {
		switch {
		case a.Revoked:
			f.Revoked++
		case Online(a, now):
			f.Online++
		default:
			f.Offline++
			f.Stale = append(f.Stale, a)
		}
	}
	slices.SortFunc(f.Stale, func(a, b transport.Agent) int {
		if c := a.LastSeen.Compare(b.LastSeen); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	f.Stale = f.Stale[:min(len(f.Stale), MaxStale)]
	if events == nil {
		return f, nil
	}
	const limit = 1000
	gaps, err := events.Search(ctx, eventstore.Query{Category: HealthCategory, From: since,
		Fields: []eventstore.FieldFilter{{Name: "EventType", Value: "spool_gap"}}, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("overview: fleet: spool gaps: %w", err)
	}
	f.DropsTruncated = len(gaps) == limit
	byAgent := map[string]int{}
	for _, g := range gaps {
		n, ok := count(field(g, "DroppedEvents"))
		if !ok {
			continue
		}
		f.Dropped += n
		i, seen := byAgent[g.AgentID]
		if !seen {
			i = len(f.Drops)
			byAgent[g.AgentID] = i
			f.Drops = append(f.Drops, AgentDrops{AgentID: g.AgentID, Host: g.Host})
		}
		f.Drops[i].Dropped += n
	}
	slices.SortFunc(f.Drops, func(a, b AgentDrops) int {
		if a.Dropped != b.Dropped {
			if a.Dropped > b.Dropped {
				return -1
			}
			return 1
		}
		return strings.Compare(a.AgentID, b.AgentID)
	})
	return f, nil
}

// maxCount bounds a count read from a health event, so sums cannot
// overflow.
const maxCount = 1 << 40

// count parses a plain non-negative decimal below maxCount.
func count(s string) (int64, bool) {
	if s == "" || len(s) > 13 || !digits(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n < maxCount
}

func field(r eventstore.Record, name string) string {
	for _, f := range r.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// Health is an agent's last self-report (an agent_health event).
type Health struct {
	At   time.Time
	Host string
	// Counters as the agent reported them; -1 when absent or not a plain
	// decimal number.
	SpoolDepth, SpoolBytes, SpoolDropped   int64
	EventsRecorded, EventsSent, SendErrors int64
	EventsTruncated, RSSBytes              int64
	CPUSeconds                             string // as sent, when it is a decimal number
	Sensors                                []Sensor
}

// Sensor is one sensor's status line from a health event.
type Sensor struct{ Name, Status string }

// MaxSensors bounds Health.Sensors.
const MaxSensors = 64

// LatestHealth returns the newest health report of an agent sent after
// since, or nil when there is none.
func LatestHealth(ctx context.Context, events Events, agentID string, since time.Time) (*Health, error) {
	// A spool_gap event shares the category and the time of the report it
	// comes with; a few records are enough to find the report.
	recs, err := events.Search(ctx, eventstore.Query{AgentID: agentID, Category: HealthCategory, From: since, Limit: 4})
	if err != nil {
		return nil, fmt.Errorf("overview: health of agent %s: %w", agentID, err)
	}
	for _, r := range recs {
		if field(r, "EventType") == "" {
			return ParseHealth(r), nil
		}
	}
	return nil, nil
}

// ParseHealth reads a health report from its event.
func ParseHealth(r eventstore.Record) *Health {
	h := &Health{At: r.Time, Host: r.Host}
	num := func(name string) int64 {
		if n, ok := count(field(r, name)); ok {
			return n
		}
		return -1
	}
	h.SpoolDepth, h.SpoolBytes, h.SpoolDropped = num("SpoolDepth"), num("SpoolBytes"), num("SpoolDropped")
	h.EventsRecorded, h.EventsSent, h.SendErrors = num("EventsRecorded"), num("EventsSent"), num("SendErrors")
	h.EventsTruncated, h.RSSBytes = num("EventsTruncated"), num("RSSBytes")
	if c := field(r, "CPUSeconds"); c != "" && len(c) <= 20 {
		if _, err := strconv.ParseFloat(c, 64); err == nil && strings.Trim(c, "0123456789.") == "" {
			h.CPUSeconds = c
		}
	}
	for _, f := range r.Fields {
		if name, ok := strings.CutPrefix(f.Name, "Sensor."); ok && name != "" && len(h.Sensors) < MaxSensors {
			h.Sensors = append(h.Sensors, Sensor{Name: clip(name, 64), Status: clip(f.Value, 1024)})
		}
	}
	return h
}

// clip cuts s to at most n bytes at a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
