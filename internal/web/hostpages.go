package web

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/command"
	"github.com/vigil-edr/vigil/internal/hygiene"
	"github.com/vigil-edr/vigil/internal/inventory"
	"github.com/vigil-edr/vigil/internal/overview"
	"github.com/vigil-edr/vigil/internal/respond"
	"github.com/vigil-edr/vigil/internal/store"
	"github.com/vigil-edr/vigil/internal/transport"
)

type hostRow struct {
	transport.Agent
	Status string // online, offline, revoked
	// Health is the last heartbeat's health, nil before the first or when
	// it cannot be read (HealthErr).
	Health    *overview.Health
	HealthErr bool
}

// HealthText sums up the last heartbeat health for the hosts list.
func (h hostRow) HealthText() string {
	switch {
	case h.HealthErr:
		return "unreadable"
	case h.Health == nil:
		return "none yet"
	case h.Health.Troubled():
		return "degraded"
	}
	return "ok"
}

func newHostRow(a transport.Agent, now time.Time) hostRow {
	row := hostRow{Agent: a, Status: hostStatus(a, now)}
	h, err := overview.AgentHealth(a)
	row.Health, row.HealthErr = h, err != nil
	return row
}

func hostStatus(a transport.Agent, now time.Time) string {
	switch {
	case a.Revoked:
		return "revoked"
	case overview.Online(a, now):
		return "online"
	}
	return "offline"
}

type hostsData struct {
	Q, Status string
	Hosts     []hostRow
	Counts    map[string]int
	Total     int
}

// hostsPage lists enrolled hosts, filtered by name, id or OS substring (q)
// and status.
func (s *Server) hostsPage(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.opts.Hosts == nil {
		return nil, notConfigured("hosts")
	}
	q := newQuery(r)
	d := hostsData{Q: q.str("q"), Status: q.str("status"), Counts: map[string]int{}}
	if q.err != nil {
		return nil, q.err
	}
	as, err := s.opts.Hosts.ListAgents(r.Context())
	if err != nil {
		return nil, err
	}
	now := s.now()
	needle := strings.ToLower(d.Q)
	for _, a := range as {
		row := newHostRow(a, now)
		d.Counts[row.Status]++
		d.Total++
		if d.Status != "" && row.Status != d.Status {
			continue
		}
		if needle != "" && !strings.Contains(strings.ToLower(a.Hostname+" "+a.ID+" "+a.OS), needle) {
			continue
		}
		d.Hosts = append(d.Hosts, row)
	}
	slices.SortStableFunc(d.Hosts, func(a, b hostRow) int { return strings.Compare(a.Hostname, b.Hostname) })
	return d, nil
}

type hostData struct {
	Host      hostRow
	Inventory *inventory.Host
	Alerts    []alert.Alert
	// Hygiene is the host's score, for callers who may read it.
	Hygiene *hygiene.HostView
	// CanRevoke shows the revoke button (the API checks again).
	CanRevoke bool
	Problems  []string
	Act       hostActions
}

// hostActions says which response-action forms the host page shows: each
// needs actions:request and the type's permission (the API and respond
// check again; docs/actions.md).
type hostActions struct {
	Isolate, Block, Query, Read bool
	Queries                     []string
}

func hostActionsFor(role authz.Role, s *Server, a transport.Agent) hostActions {
	if s.opts.Actions == nil {
		return hostActions{}
	}
	can := func(t string) bool {
		return !a.Revoked && role.Allows(authz.PermActionsRequest) && role.Allows(respond.Permission(t))
	}
	return hostActions{Isolate: can(command.Isolate), Block: can(command.Block), Query: can(command.Query),
		Read: role.Allows(authz.PermActionsRead), Queries: command.Queries}
}

// maxInventoryRows bounds each inventory table on the page.
const maxInventoryRows = 2000

// hostPage shows one host: status, agent health, inventory, recent alerts.
func (s *Server) hostPage(w http.ResponseWriter, r *http.Request) (any, error) {
	a, err := s.hostByPath(r)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(CodeNotFound, "no such host")
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	d := hostData{Host: newHostRow(a, now), CanRevoke: who(r).role.Allows(authz.PermHostsAdmin),
		Act: hostActionsFor(who(r).role, s, a)}
	if s.opts.Inventory != nil {
		inv, err := s.opts.Inventory.HostInventory(r.Context(), a.ID)
		if err != nil {
			return nil, err
		}
		if inv.SnapshotID != "" {
			clipInventory(&inv)
			d.Inventory = &inv
		}
	}
	if s.opts.Alerts != nil {
		if d.Alerts, err = s.opts.Alerts.ListAlerts(r.Context(), alert.Filter{Host: a.Hostname, Limit: 25}); err != nil {
			return nil, err
		}
	}
	if d.Hygiene, err = s.hostHygiene(r, a.ID); err != nil {
		return nil, err
	}
	return d, nil
}

func clipInventory(h *inventory.Host) {
	h.Packages = h.Packages[:min(len(h.Packages), maxInventoryRows)]
	h.Users = h.Users[:min(len(h.Users), maxInventoryRows)]
	h.Groups = h.Groups[:min(len(h.Groups), maxInventoryRows)]
	h.Ports = h.Ports[:min(len(h.Ports), maxInventoryRows)]
	h.Services = h.Services[:min(len(h.Services), maxInventoryRows)]
	h.Modules = h.Modules[:min(len(h.Modules), maxInventoryRows)]
}
