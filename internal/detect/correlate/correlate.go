// Package correlate evaluates Sigma correlation rules (event_count,
// value_count, temporal, temporal_ordered, value_sum, value_avg,
// value_percentile) over the stream of single-rule matches, with group-by,
// aliases, timespans and chained correlations.
//
// Any package may import correlate; it depends on detect/sigma and event.
//
// # Semantics
//
// Windows slide: when an observation arrives at time t, a group's window holds
// the observations with time in [t-timespan, t]. The condition is checked
// after every observation; when it holds the correlation fires once and the
// group's state is cleared, so a burst gives one hit rather than one per
// event. value_percentile reports, for the value of the field in the current
// observation, the percentage of the window's observations that carry the
// same value (so "lte: 1" finds values seen in at most 1 % of the events, as
// the specification's example intends). temporal fires when every listed rule
// (or, with a condition, that many distinct rules) has matched within the
// timespan; temporal_ordered additionally needs them in the listed order.
//
// An observation that lacks a group-by field is ignored by that correlation.
// Group keys span every host unless the rule groups by AgentId (WithAgent).
// Observations must arrive in time order per group; offline hunting sorts
// them first, live detection receives them in ingest order.
//
// # Bounds
//
// Each correlation keeps at most Options.MaxGroups groups and each group at
// most Options.MaxEntries observations; groups idle for longer than the
// timespan are swept. What does not fit is dropped and counted (Stats), never
// grown without limit.
//
// # Concurrency and scale-out
//
// An Engine is not safe for concurrent use. State is keyed by correlation
// and group key only, so several engines can share a stream partitioned by
// hash of the group-by values.
package correlate

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/detect/sigma"
)

// Options bound the engine's memory.
type Options struct {
	MaxGroups  int // per correlation rule; default 100,000
	MaxEntries int // per group; default 10,000
	MaxRefs    int // event references kept per hit; default 16
}

func (o *Options) defaults() {
	if o.MaxGroups <= 0 {
		o.MaxGroups = 100_000
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 10_000
	}
	if o.MaxRefs <= 0 {
		o.MaxRefs = 16
	}
}

// Fields gives access to the fields of an observation.
type Fields interface {
	Get(name string) (string, bool)
}

// AgentField names the field WithAgent adds: the agent (host) an event
// came from.
const AgentField = "AgentId"

// WithAgent returns f with one more field, AgentId = agent, for
// observations whose event has no field of that name. Process ids, session
// ids and user names repeat across hosts, so a correlation that groups by
// them groups by AgentId too; live detection passes the enrolled agent's id,
// offline hunting the file the event was read from. An empty agent adds
// nothing.
func WithAgent(f Fields, agent string) Fields {
	if agent == "" {
		return f
	}
	return agentFields{f, agent}
}

type agentFields struct {
	f     Fields
	agent string
}

func (a agentFields) Get(name string) (string, bool) {
	if v, ok := a.f.Get(name); ok {
		return v, true
	}
	if strings.EqualFold(name, AgentField) {
		return a.agent, true
	}
	return "", false
}

// Ref points at an event that contributed to a hit.
type Ref struct {
	Source string
	Record uint64
	Time   time.Time
	Rule   string // id or name of the rule that matched it
}

// Observation is one match of a rule that a correlation may refer to.
type Observation struct {
	RuleID, RuleName string
	Time             time.Time
	Fields           Fields
	Ref              Ref
}

// Hit is one firing of a correlation rule.
type Hit struct {
	Rule    *sigma.Rule
	Time    time.Time
	GroupBy []GroupValue
	// Value is what the condition was checked against: the count, distinct
	// count, sum, average or percentage.
	Value float64
	Refs  []Ref
}

// GroupValue is one group-by field of a hit.
type GroupValue struct{ Field, Value string }

// Get makes a Hit usable as the fields of an observation for chained
// correlations.
func (h *Hit) Get(name string) (string, bool) {
	for _, g := range h.GroupBy {
		if strings.EqualFold(g.Field, name) {
			return g.Value, true
		}
	}
	return "", false
}

// Stats counts what the bounds dropped.
type Stats struct {
	Groups         int
	DroppedGroups  uint64
	DroppedEntries uint64
}

// Engine holds the state of a set of correlation rules.
type Engine struct {
	opts   Options
	rules  []*corr
	byBase map[string][]*corr // rule id or name → correlations that use it
	stats  Stats
	seen   int
}

type corr struct {
	rule   *sigma.Rule
	c      *sigma.Correlation
	index  map[string][]int // base rule id/name → positions in c.Rules
	groups map[string]*group
}

type entry struct {
	t   time.Time
	ref Ref
	num float64
	val string
}

type group struct {
	entries []entry
	last    time.Time
	// temporal state: per position in c.Rules, the time it was last seen
	// (temporal) or the start time of the best chain reaching it (ordered).
	seenAt  []time.Time
	seenRef []Ref
}

// New builds an engine for the correlation rules. Each rule's references must
// name a detection rule or another correlation in names (ids and names of all
// loaded rules); an unknown reference is an error naming the rule.
func New(rules []*sigma.Rule, known func(ref string) bool, opts Options) (*Engine, []error) {
	opts.defaults()
	e := &Engine{opts: opts, byBase: map[string][]*corr{}}
	var errs []error
	local := map[string]bool{}
	for _, r := range rules {
		for _, s := range []string{r.ID, r.Name} {
			if s != "" {
				local[s] = true
			}
		}
	}
	for _, r := range rules {
		if r.Kind != sigma.KindCorrelation {
			continue
		}
		c := &corr{rule: r, c: r.Correlation, index: map[string][]int{}, groups: map[string]*group{}}
		bad := false
		for i, ref := range c.c.Rules {
			if !local[ref] && (known == nil || !known(ref)) {
				errs = append(errs, &sigma.Error{Path: r.Path, Line: r.Line, Rule: r.Ref(), Reason: fmt.Sprintf("correlation refers to unknown rule %q", ref)})
				bad = true
				break
			}
			c.index[ref] = append(c.index[ref], i)
		}
		if bad {
			continue
		}
		e.rules = append(e.rules, c)
		for ref := range c.index {
			e.byBase[ref] = append(e.byBase[ref], c)
		}
	}
	return e, errs
}

// Stats reports the current number of groups and what was dropped.
func (e *Engine) Stats() Stats {
	s := e.stats
	s.Groups = 0
	for _, c := range e.rules {
		s.Groups += len(c.groups)
	}
	return s
}

// Uses reports whether any correlation refers to the rule id or name.
func (e *Engine) Uses(ref string) bool { return len(e.byBase[ref]) > 0 }

// Observe feeds one match and returns the correlations that fired, including
// chained ones.
func (e *Engine) Observe(o Observation) []Hit {
	var hits []Hit
	e.observe(o, &hits, 0)
	e.seen++
	if e.seen%4096 == 0 {
		e.sweep(o.Time)
	}
	return hits
}

const maxChain = 16

func (e *Engine) observe(o Observation, hits *[]Hit, depth int) {
	if depth > maxChain {
		return
	}
	done := map[*corr]bool{}
	for _, ref := range []string{o.RuleID, o.RuleName} {
		if ref == "" {
			continue
		}
		for _, c := range e.byBase[ref] {
			if done[c] {
				continue
			}
			done[c] = true
			h, ok := e.apply(c, ref, o)
			if !ok {
				continue
			}
			*hits = append(*hits, h)
			e.observe(Observation{RuleID: c.rule.ID, RuleName: c.rule.Name, Time: h.Time, Fields: &h, Ref: o.Ref}, hits, depth+1)
		}
	}
}

// fieldFor resolves a group-by or condition field for a base rule through the
// correlation's aliases.
func (c *corr) fieldFor(name string, o Observation) string {
	if m, ok := c.c.Aliases[name]; ok {
		if f, ok := m[o.RuleName]; ok && o.RuleName != "" {
			return f
		}
		if f, ok := m[o.RuleID]; ok && o.RuleID != "" {
			return f
		}
	}
	return name
}

func (e *Engine) apply(c *corr, ref string, o Observation) (Hit, bool) {
	gv := make([]GroupValue, len(c.c.GroupBy))
	var key strings.Builder
	for i, g := range c.c.GroupBy {
		v, ok := o.Fields.Get(c.fieldFor(g, o))
		if !ok {
			// An event without the group-by field belongs to no group: counting
			// all such events together would correlate unrelated activity.
			return Hit{}, false
		}
		gv[i] = GroupValue{Field: g, Value: v}
		key.WriteString(v)
		key.WriteByte(0)
	}
	g, ok := c.groups[key.String()]
	if !ok {
		if len(c.groups) >= e.opts.MaxGroups {
			e.sweepCorr(c, o.Time)
		}
		if len(c.groups) >= e.opts.MaxGroups {
			e.stats.DroppedGroups++
			return Hit{}, false
		}
		g = &group{}
		c.groups[key.String()] = g
	}
	g.last = o.Time
	span := c.c.Timespan
	hit := Hit{Rule: c.rule, Time: o.Time, GroupBy: gv}

	switch c.c.Type {
	case sigma.Temporal, sigma.TemporalOrdered:
		return e.temporal(c, g, ref, o, hit)
	}

	en := entry{t: o.Time, ref: o.Ref}
	switch c.c.Type {
	case sigma.ValueCount, sigma.ValuePercentile:
		v, ok := o.Fields.Get(c.fieldFor(c.c.Field, o))
		if !ok {
			return Hit{}, false // an event without the field says nothing about its values
		}
		en.val = v
	case sigma.ValueSum, sigma.ValueAvg:
		v, ok := o.Fields.Get(c.fieldFor(c.c.Field, o))
		if !ok {
			return Hit{}, false
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return Hit{}, false
		}
		en.num = n
	}
	// Slide the window, then add.
	cut := 0
	for cut < len(g.entries) && o.Time.Sub(g.entries[cut].t) > span {
		cut++
	}
	g.entries = g.entries[cut:]
	if len(g.entries) >= e.opts.MaxEntries {
		g.entries = g.entries[1:]
		e.stats.DroppedEntries++
	}
	g.entries = append(g.entries, en)

	var value float64
	switch c.c.Type {
	case sigma.EventCount:
		value = float64(len(g.entries))
	case sigma.ValueCount:
		distinct := map[string]struct{}{}
		for _, x := range g.entries {
			distinct[x.val] = struct{}{}
		}
		value = float64(len(distinct))
	case sigma.ValueSum, sigma.ValueAvg:
		for _, x := range g.entries {
			value += x.num
		}
		if c.c.Type == sigma.ValueAvg {
			value /= float64(len(g.entries))
		}
	case sigma.ValuePercentile:
		same := 0
		for _, x := range g.entries {
			if x.val == en.val {
				same++
			}
		}
		value = 100 * float64(same) / float64(len(g.entries))
	}
	if !holdsAll(c.c.Condition, value) {
		return Hit{}, false
	}
	hit.Value = value
	for i := len(g.entries) - 1; i >= 0 && len(hit.Refs) < e.opts.MaxRefs; i-- {
		hit.Refs = append(hit.Refs, g.entries[i].ref)
	}
	reverse(hit.Refs)
	g.entries = g.entries[:0]
	return hit, true
}

func reverse(r []Ref) {
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
}

func holdsAll(cs []sigma.Comparison, v float64) bool {
	for _, c := range cs {
		if !c.Holds(v) {
			return false
		}
	}
	return true
}

func (e *Engine) temporal(c *corr, g *group, ref string, o Observation, hit Hit) (Hit, bool) {
	n := len(c.c.Rules)
	if g.seenAt == nil {
		g.seenAt = make([]time.Time, n)
		g.seenRef = make([]Ref, n)
	}
	span := c.c.Timespan
	fresh := func(i int) bool { return !g.seenAt[i].IsZero() && o.Time.Sub(g.seenAt[i]) <= span }
	positions := c.index[ref]
	if c.c.Type == sigma.Temporal {
		for _, p := range positions {
			g.seenAt[p], g.seenRef[p] = o.Time, o.Ref
		}
		count := 0
		for i := 0; i < n; i++ {
			if fresh(i) {
				count++
			}
		}
		ok := count == n
		if len(c.c.Condition) > 0 {
			ok = holdsAll(c.c.Condition, float64(count))
		}
		if !ok {
			return Hit{}, false
		}
		hit.Value = float64(count)
		for i := 0; i < n; i++ {
			if fresh(i) {
				hit.Refs = append(hit.Refs, g.seenRef[i])
			}
		}
		sort.Slice(hit.Refs, func(a, b int) bool { return hit.Refs[a].Time.Before(hit.Refs[b].Time) })
		clear(g.seenAt)
		return hit, true
	}
	// Ordered: seenAt[i] is the start time of the freshest chain that has
	// reached step i. Walk positions from last to first so one event cannot
	// advance two steps.
	for k := len(positions) - 1; k >= 0; k-- {
		p := positions[k]
		if p == 0 {
			g.seenAt[0], g.seenRef[0] = o.Time, o.Ref
			continue
		}
		if fresh(p - 1) {
			g.seenAt[p], g.seenRef[p] = g.seenAt[p-1], o.Ref
		}
	}
	if !fresh(n - 1) {
		return Hit{}, false
	}
	hit.Value = float64(n)
	hit.Refs = append(hit.Refs, g.seenRef...)
	clear(g.seenAt)
	return hit, true
}

// sweep drops groups idle for longer than their correlation's timespan.
func (e *Engine) sweep(now time.Time) {
	for _, c := range e.rules {
		e.sweepCorr(c, now)
	}
}

func (e *Engine) sweepCorr(c *corr, now time.Time) {
	for k, g := range c.groups {
		if now.Sub(g.last) > c.c.Timespan {
			delete(c.groups, k)
		}
	}
}
