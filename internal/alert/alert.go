package alert

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/store"
)

// Finding is one rule match (or correlation hit) to turn into an alert.
type Finding struct {
	RuleID      string
	RuleTitle   string
	Level       string
	Tags        []string
	Host        string
	AgentID     string
	Time        time.Time
	Fields      []event.Field
	EventIDs    []int64
	Correlation bool
}

// Options configure a Processor.
type Options struct {
	Store Store
	// GroupWindow: a finding joins the open alert of the same rule on the
	// same host when that alert was last seen at most this long before it.
	// Default 1 h.
	GroupWindow time.Duration
	// MaxEvents bounds the event ids kept per alert. Default 100.
	MaxEvents int
	// SuppressionRefresh bounds how stale the cached suppression list may be.
	// Default 5 s; changes made through this Processor apply at once.
	SuppressionRefresh time.Duration
	Now                func() time.Time
}

// Processor records findings as alerts and moves alerts through their
// states. It is safe for concurrent use; grouping is exact within one
// Processor (one detection worker). Two processors racing on the same rule
// and host may open two alerts, which is harmless.
type Processor struct {
	opts Options
	mu   sync.Mutex // serialises grouping decisions

	supMu     sync.Mutex
	sups      []Suppression
	supLoaded time.Time

	created, grouped, suppressed atomic.Uint64
}

// NewProcessor returns a Processor with defaults filled in.
func NewProcessor(opts Options) *Processor {
	if opts.GroupWindow <= 0 {
		opts.GroupWindow = time.Hour
	}
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = 100
	}
	if opts.SuppressionRefresh <= 0 {
		opts.SuppressionRefresh = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Processor{opts: opts}
}

// Counts reports alerts created, findings grouped into existing alerts and
// findings suppressed since start.
func (p *Processor) Counts() (created, grouped, suppressed uint64) {
	return p.created.Load(), p.grouped.Load(), p.suppressed.Load()
}

// Record turns a finding into a new alert or one more occurrence of an open
// one. It returns the alert id, or 0 and suppressed=true when a suppression
// hides the finding. It is RecordAll of one finding.
func (p *Processor) Record(ctx context.Context, f Finding) (id int64, suppressed bool, err error) {
	r, err := p.RecordAll(ctx, []Finding{f})
	if err != nil {
		return 0, false, err
	}
	return r[0].AlertID, r[0].Suppressed, nil
}

// Recorded is what RecordAll did with one finding.
type Recorded struct {
	AlertID    int64 // 0 when suppressed
	Suppressed bool
	Created    bool // the finding opened a new alert (and its change-feed row)
}

// RecordAll records findings in order, exactly as that many calls of Record
// would, but in one durable transaction of the store (Store.WriteAlerts):
// each (rule, host) is looked up once, and the occurrences grouped into one
// alert are written as one update. Nothing is recorded when it fails.
func (p *Processor) RecordAll(ctx context.Context, fs []Finding) ([]Recorded, error) {
	out := make([]Recorded, len(fs))
	live := 0
	for i := range fs {
		s, err := p.suppressedBy(ctx, fs[i])
		if err != nil {
			return nil, err
		}
		if s != nil {
			out[i].Suppressed = true
			continue
		}
		live++
	}
	if live == 0 {
		p.suppressed.Add(uint64(len(fs)))
		return out, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var created, grouped uint64
	err := p.opts.Store.WriteAlerts(ctx, func(w Writer) error {
		created, grouped = 0, 0
		g := grouper{p: p, w: w, open: map[groupKey]*openAlert{}}
		for i := range fs {
			if out[i].Suppressed {
				continue
			}
			id, isNew, err := g.add(ctx, &fs[i])
			if err != nil {
				return err
			}
			out[i].AlertID, out[i].Created = id, isNew
			if isNew {
				created++
			} else {
				grouped++
			}
		}
		return g.flush(ctx)
	})
	if err != nil {
		return nil, err
	}
	p.created.Add(created)
	p.grouped.Add(grouped)
	p.suppressed.Add(uint64(len(fs) - live))
	return out, nil
}

type groupKey struct{ rule, host string }

// openAlert is the newest open alert of a (rule, host) within one
// RecordAll, with the occurrences not yet written.
type openAlert struct {
	id       int64
	lastSeen time.Time
	ids      []int64
	n        int  // occurrences not yet written
	idsDirty bool // ids changed since written
}

// grouper decides, inside one transaction, which alert each finding joins.
// Once a (rule, host) has been looked up, open holds the open alert with the
// latest LastSeen for it (or nil when there is none), because only this
// transaction writes: a finding joins it when its LastSeen is within the
// window, and otherwise no stored alert can qualify and a new one is opened.
type grouper struct {
	p    *Processor
	w    Writer
	open map[groupKey]*openAlert
}

func (g *grouper) add(ctx context.Context, f *Finding) (id int64, created bool, err error) {
	k := groupKey{f.RuleID, f.Host}
	since := f.Time.Add(-g.p.opts.GroupWindow)
	o, seen := g.open[k]
	if !seen {
		a, err := g.w.OpenAlert(ctx, f.RuleID, f.Host, since)
		switch {
		case err == nil:
			o = &openAlert{id: a.ID, lastSeen: a.LastSeen, ids: a.EventIDs}
		case !errors.Is(err, store.ErrNotFound):
			return 0, false, fmt.Errorf("finding open alert: %w", err)
		}
		g.open[k] = o
	}
	if o != nil && !o.lastSeen.Before(since) {
		o.n++
		if f.Time.After(o.lastSeen) {
			o.lastSeen = f.Time
		}
		if room := g.p.opts.MaxEvents - len(o.ids); room > 0 && len(f.EventIDs) > 0 {
			o.ids = append(o.ids, f.EventIDs[:min(room, len(f.EventIDs))]...)
			o.idsDirty = true
		}
		return o.id, false, nil
	}
	ids := f.EventIDs
	if len(ids) > g.p.opts.MaxEvents {
		ids = ids[:g.p.opts.MaxEvents]
	}
	a := &Alert{
		RuleID: f.RuleID, RuleTitle: f.RuleTitle, Level: f.Level, Tags: f.Tags,
		Host: f.Host, AgentID: f.AgentID, Correlation: f.Correlation,
		State: StateNew, Count: 1, FirstSeen: f.Time, LastSeen: f.Time,
		Fields: f.Fields, EventIDs: ids,
	}
	if err := g.w.CreateAlert(ctx, a); err != nil {
		return 0, false, fmt.Errorf("creating alert: %w", err)
	}
	// The new alert has the latest LastSeen of the key from now on. One
	// being replaced keeps its pending occurrences: write them first.
	if o != nil {
		if err := g.write(ctx, o); err != nil {
			return 0, false, err
		}
	}
	g.open[k] = &openAlert{id: a.ID, lastSeen: a.LastSeen, ids: append([]int64(nil), ids...)}
	return a.ID, true, nil
}

func (g *grouper) write(ctx context.Context, o *openAlert) error {
	if o.n == 0 && !o.idsDirty {
		return nil
	}
	var ids []int64
	if o.idsDirty {
		ids = o.ids
	}
	if err := g.w.AddOccurrences(ctx, o.id, o.n, o.lastSeen, ids); err != nil {
		return fmt.Errorf("alert %d: %w", o.id, err)
	}
	o.n, o.idsDirty = 0, false
	return nil
}

// flush writes every pending occurrence.
func (g *grouper) flush(ctx context.Context) error {
	for _, o := range g.open {
		if o != nil {
			if err := g.write(ctx, o); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *Processor) suppressedBy(ctx context.Context, f Finding) (*Suppression, error) {
	p.supMu.Lock()
	defer p.supMu.Unlock()
	now := p.opts.Now()
	if now.Sub(p.supLoaded) > p.opts.SuppressionRefresh {
		s, err := p.opts.Store.ActiveSuppressions(ctx, now)
		if err != nil {
			return nil, fmt.Errorf("loading suppressions: %w", err)
		}
		p.sups, p.supLoaded = s, now
	}
	for i := range p.sups {
		s := &p.sups[i]
		if s.Matches(f, now) {
			return s, nil
		}
	}
	return nil, nil
}

// Matches reports whether the suppression hides the finding at now.
func (s *Suppression) Matches(f Finding, now time.Time) bool {
	if !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) {
		return false
	}
	if s.RuleID != f.RuleID {
		return false
	}
	if s.Host != "" && !strings.EqualFold(s.Host, f.Host) {
		return false
	}
	if s.Field == "" {
		return true
	}
	for _, fl := range f.Fields {
		if event.SameName(fl.Name, s.Field) && strings.EqualFold(fl.Value, s.Value) {
			return true
		}
	}
	return false
}

// Suppress records a suppression; it applies to findings from now on.
func (p *Processor) Suppress(ctx context.Context, s *Suppression) error {
	if s.RuleID == "" {
		return errors.New("a suppression needs a rule id")
	}
	if s.Host == "" && s.Field == "" {
		return errors.New("a suppression needs a host or a field value: suppressing a rule everywhere is disabling it")
	}
	if (s.Field == "") != (s.Value == "") {
		return errors.New("a field suppression needs both the field and the value")
	}
	if !s.ExpiresAt.IsZero() && !s.ExpiresAt.After(p.opts.Now()) {
		return errors.New("the suppression expires in the past")
	}
	s.CreatedAt = p.opts.Now()
	if err := p.opts.Store.CreateSuppression(ctx, s); err != nil {
		return err
	}
	p.supMu.Lock()
	p.supLoaded = time.Time{} // reload on the next finding
	p.supMu.Unlock()
	return nil
}

// ErrTransition is returned for a state change the state machine forbids.
var ErrTransition = errors.New("state change not allowed")

var transitions = map[State][]State{
	StateNew:           {StateAcknowledged, StateResolved, StateFalsePositive},
	StateAcknowledged:  {StateResolved, StateFalsePositive},
	StateResolved:      {StateAcknowledged}, // reopen
	StateFalsePositive: {StateAcknowledged}, // reopen
}

// Allowed reports whether an alert may go from one state to another.
func Allowed(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Transition moves an alert to a new state, recording who and when. Closing
// as false positive needs a reason. A concurrent change by someone else
// yields store.ErrConflict.
func (p *Processor) Transition(ctx context.Context, id int64, to State, by, reason string) error {
	if by == "" {
		return errors.New("a state change needs the acting user")
	}
	if to == StateFalsePositive && strings.TrimSpace(reason) == "" {
		return fmt.Errorf("%w: closing as false positive needs a reason", ErrTransition)
	}
	a, err := p.opts.Store.GetAlert(ctx, id)
	if err != nil {
		return err
	}
	if !Allowed(a.State, to) {
		return fmt.Errorf("%w: %s → %s", ErrTransition, a.State, to)
	}
	return p.opts.Store.SetState(ctx, id, a.State, to, by, p.opts.Now(), reason)
}
