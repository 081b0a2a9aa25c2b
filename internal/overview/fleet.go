package overview

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/transport"
	"github.com/vigil-edr/vigil/internal/wire"
)

// OnlineWithin is how recently an agent must have been in contact (a
// heartbeat or an event batch) to count as online: three heartbeats at the
// agent's default heartbeat_every of 30 s. It is the one definition: the
// API's hosts (online), the console's host pages and the overview all use
// Online.
const OnlineWithin = 90 * time.Second

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
	// Troubled are the online agents whose last heartbeat health is
	// Troubled (or could not be read), by host name (at most MaxStale);
	// NumTroubled counts all of them.
	Troubled    []transport.Agent
	NumTroubled int
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
			if h, err := AgentHealth(a); err != nil || h != nil && h.Troubled() {
				f.NumTroubled++
				f.Troubled = append(f.Troubled, a)
			}
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
	slices.SortFunc(f.Troubled, func(a, b transport.Agent) int {
		return cmp.Or(strings.Compare(a.Hostname, b.Hostname), strings.Compare(a.ID, b.ID))
	})
	f.Troubled = f.Troubled[:min(len(f.Troubled), MaxStale)]
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

// Health is the health an agent sent with its last heartbeat, as the
// server stored it (transport.Agent.Health), received at Received. Every
// string in it is the agent's and is rendered as text.
type Health struct {
	wire.Health
	Received time.Time
}

// AgentHealth decodes a's stored heartbeat health: nil before the first
// one. The body was checked when it arrived; it is checked again here
// (wire.DecodeHealth: size, UTF-8, ranges, sensor count and text lengths),
// so a store written by something else cannot feed the page anything
// unbounded.
func AgentHealth(a transport.Agent) (*Health, error) {
	if len(a.Health) == 0 {
		return nil, nil
	}
	h, ok, err := wire.DecodeHealth(a.Health)
	if err != nil {
		return nil, fmt.Errorf("overview: health of agent %s: %w", a.ID, err)
	}
	if !ok {
		return nil, nil
	}
	return &Health{Health: h, Received: a.HealthAt}, nil
}

// Troubled reports whether the health says the agent is not working fully:
// throttled, restarted, or a sensor degraded or stopped.
func (h *Health) Troubled() bool {
	if h.Throttled || h.Restarts > 0 {
		return true
	}
	for _, s := range h.Sensors {
		if s.State == wire.SensorDegraded || s.State == wire.SensorStopped {
			return true
		}
	}
	return false
}
