package hygiene

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/cases"
	"github.com/vigil-edr/vigil/internal/sca"
	"github.com/vigil-edr/vigil/internal/transport"
	"github.com/vigil-edr/vigil/internal/vuln"
)

// Point is one snapshot of a score.
type Point struct {
	At         time.Time   `json:"at"`
	Score      int         `json:"score"`
	Deductions []Deduction `json:"deductions,omitempty"`
}

// FleetID is the agent id under which the fleet's points are stored.
const FleetID = ""

// HistoryKeep is how many points per host (and for the fleet) a Store
// keeps: about 80 days of hourly changes.
const HistoryKeep = 2000

// Store keeps score history. store/sqlite implements it.
type Store interface {
	// RecordHygiene stores p as agentID's newest point (FleetID: the
	// fleet) unless the newest has the same key; if the newest falls in
	// the same interval of length every as p (times truncated to every:
	// the same clock hour) it is replaced instead of kept, so there is at
	// most one point per interval, its latest. It keeps at most
	// HistoryKeep points per agent and reports whether it wrote.
	RecordHygiene(ctx context.Context, agentID string, p Point, key string, every time.Duration) (bool, error)
	// HygieneHistory returns up to limit points of agentID, newest first.
	HygieneHistory(ctx context.Context, agentID string, limit int) ([]Point, error)
}

// Hosts lists the enrolled agents; transport.Store satisfies it.
type Hosts interface {
	ListAgents(ctx context.Context) ([]transport.Agent, error)
	GetAgent(ctx context.Context, id string) (transport.Agent, error)
}

// SCA reads configuration assessment results; sca.Store satisfies it.
type SCA interface {
	HostSCA(ctx context.Context, agentID string, history int) (sca.Host, error)
}

// Vulns reads vulnerability findings; vuln.Store satisfies it.
type Vulns interface {
	HostFindings(ctx context.Context, agentID string) (vuln.HostFindings, error)
}

// Alerts lists alerts; alert.Store satisfies it.
type Alerts interface {
	ListAlerts(ctx context.Context, f alert.Filter) ([]alert.Alert, error)
	GetAlert(ctx context.Context, id int64) (*alert.Alert, error)
}

// Cases lists cases; cases.Store and *cases.Service satisfy it.
type Cases interface {
	ListCases(ctx context.Context, f cases.Filter) ([]cases.Case, error)
}

// Options configure a Service. Hosts, SCA, Vulns and Alerts are required;
// without Store there is no history, without Cases reports list no cases.
type Options struct {
	Hosts  Hosts
	SCA    SCA
	Vulns  Vulns
	Alerts Alerts
	Cases  Cases
	Store  Store
	Logger *slog.Logger     // nil discards
	Now    func() time.Time // default time.Now
	// Every bounds the history to one point per this long (default 1 h).
	Every time.Duration
}

// Service computes scores from the stores and keeps their history.
type Service struct{ opts Options }

// NewService returns a Service.
func NewService(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Every <= 0 {
		o.Every = time.Hour
	}
	return &Service{opts: o}
}

// MaxOpenAlerts bounds the open alerts read for one computation.
const MaxOpenAlerts = 20_000

// ErrTooMany: more open alerts than MaxOpenAlerts; scores would be wrong.
var ErrTooMany = errors.New("hygiene: too many open alerts to score")

// openAlerts returns every open alert, grouped by agent id (an alert
// without one is filed under its host name, lower-cased, prefixed "host:").
func (s *Service) openAlerts(ctx context.Context) (map[string][]alert.Alert, error) {
	out := map[string][]alert.Alert{}
	f := alert.Filter{States: []alert.State{alert.StateNew, alert.StateAcknowledged}, Limit: 1000}
	n := 0
	for {
		page, err := s.opts.Alerts.ListAlerts(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("hygiene: open alerts: %w", err)
		}
		for _, a := range page {
			k := a.AgentID
			if k == "" {
				k = "host:" + strings.ToLower(a.Host)
			}
			out[k] = append(out[k], a)
		}
		n += len(page)
		if n > MaxOpenAlerts {
			return nil, ErrTooMany
		}
		if len(page) < f.Limit {
			return out, nil
		}
		f.Before = page[len(page)-1].ID
	}
}

func hostAlerts(all map[string][]alert.Alert, a transport.Agent) []alert.Alert {
	out := all[a.ID]
	if extra := all["host:"+strings.ToLower(a.Hostname)]; len(extra) > 0 {
		out = append(append([]alert.Alert(nil), out...), extra...)
	}
	return out
}

// input gathers one host's input.
func (s *Service) input(ctx context.Context, a transport.Agent, open map[string][]alert.Alert, history int) (*Input, error) {
	in := &Input{Agent: a, Alerts: hostAlerts(open, a)}
	var err error
	if in.SCA, err = s.opts.SCA.HostSCA(ctx, a.ID, history); err != nil {
		return nil, fmt.Errorf("hygiene: configuration results of %s: %w", a.ID, err)
	}
	if in.Vulns, err = s.opts.Vulns.HostFindings(ctx, a.ID); err != nil {
		return nil, fmt.Errorf("hygiene: findings of %s: %w", a.ID, err)
	}
	return in, nil
}

// FleetView is the fleet's score, its hosts worst first, and its history.
type FleetView struct {
	ComputedAt time.Time   `json:"computed_at"`
	Fleet      Fleet       `json:"fleet"`
	Hosts      []HostScore `json:"hosts"`
	History    []Point     `json:"history"` // newest first
}

// HostView is one host's score and history.
type HostView struct {
	ComputedAt time.Time `json:"computed_at"`
	HostScore
	History []Point `json:"history"` // newest first
}

// scoreAll computes every host's score, ranked, with their inputs.
func (s *Service) scoreAll(ctx context.Context, history int) ([]HostScore, map[string]*Input, time.Time, error) {
	agents, err := s.opts.Hosts.ListAgents(ctx)
	if err != nil {
		return nil, nil, time.Time{}, fmt.Errorf("hygiene: hosts: %w", err)
	}
	open, err := s.openAlerts(ctx)
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	now := s.opts.Now().UTC()
	scores := make([]HostScore, 0, len(agents))
	inputs := map[string]*Input{}
	for _, a := range agents {
		in, err := s.input(ctx, a, open, history)
		if err != nil {
			return nil, nil, now, err
		}
		inputs[a.ID] = in
		scores = append(scores, Compute(in, now))
	}
	Rank(scores)
	return scores, inputs, now, nil
}

// Fleet scores every host now, worst first, with up to history fleet
// points.
func (s *Service) Fleet(ctx context.Context, history int) (FleetView, error) {
	scores, _, now, err := s.scoreAll(ctx, 0)
	if err != nil {
		return FleetView{}, err
	}
	v := FleetView{ComputedAt: now, Fleet: Summarise(scores), Hosts: scores, History: []Point{}}
	if s.opts.Store != nil && history > 0 {
		if v.History, err = s.opts.Store.HygieneHistory(ctx, FleetID, history); err != nil {
			return v, err
		}
	}
	return v, nil
}

// Host scores one host now (the error of Hosts.GetAgent for an unknown
// one), with up to history points.
func (s *Service) Host(ctx context.Context, agentID string, history int) (HostView, error) {
	a, err := s.opts.Hosts.GetAgent(ctx, agentID)
	if err != nil {
		return HostView{}, err
	}
	open, err := s.openAlerts(ctx)
	if err != nil {
		return HostView{}, err
	}
	in, err := s.input(ctx, a, open, 0)
	if err != nil {
		return HostView{}, err
	}
	now := s.opts.Now().UTC()
	v := HostView{ComputedAt: now, HostScore: Compute(in, now), History: []Point{}}
	if s.opts.Store != nil && history > 0 {
		if v.History, err = s.opts.Store.HygieneHistory(ctx, agentID, history); err != nil {
			return v, err
		}
	}
	return v, nil
}

// Snapshot computes every score and records the ones whose deductions
// changed (see Store.RecordHygiene); it returns how many points it wrote.
func (s *Service) Snapshot(ctx context.Context) (int, error) {
	if s.opts.Store == nil {
		return 0, nil
	}
	scores, _, now, err := s.scoreAll(ctx, 0)
	if err != nil {
		return 0, err
	}
	n := 0
	rec := func(id string, score int, ds []Deduction) error {
		p := Point{At: now, Score: score, Deductions: ds}
		wrote, err := s.opts.Store.RecordHygiene(ctx, id, p, key(score, ds), s.opts.Every)
		if wrote {
			n++
		}
		return err
	}
	for _, h := range scores {
		if err := rec(h.AgentID, h.Score, h.Deductions); err != nil {
			return n, err
		}
	}
	f := Summarise(scores)
	if f.Monitored > 0 {
		if err := rec(FleetID, f.Score, f.Deductions); err != nil {
			return n, err
		}
	}
	return n, nil
}

// key identifies a score's inputs as far as they matter: its value and
// its deductions' texts (health texts that only count time are cut to
// their first words, so an agent silent for 3 then 4 hours is one point).
func key(score int, ds []Deduction) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\n", score)
	for _, d := range ds {
		t := d.Text
		if d.Category == CatHealth {
			if i := strings.Index(t, " for "); i > 0 {
				t = t[:i]
			}
		}
		b, _ := json.Marshal([]any{d.Category, d.Points, t})
		h.Write(b)
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Run records snapshots every interval until ctx ends.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.Snapshot(ctx); err != nil && ctx.Err() == nil {
			s.opts.Logger.Warn("hygiene snapshot", "err", err)
		} else if n > 0 {
			s.opts.Logger.Debug("hygiene scores recorded", "points", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
