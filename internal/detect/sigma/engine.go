package sigma

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
)

// Compiled is a detection rule ready to run, with its health counters.
type Compiled struct {
	Rule    *Rule
	root    node
	filters []node // Sigma filters naming this rule; a match of any suppresses it
	group   int    // index of the rule's log source in Engine.groups
	pre     *pf    // necessary condition over needles, checked before root
	// Emit is false for rules that only feed correlation rules (generate: false).
	Emit bool

	matches atomic.Uint64
	evals   atomic.Uint64
	nanos   atomic.Uint64 // estimated from one evaluation in evalSample
}

// Matches returns how many events this rule has matched since the engine was
// built.
func (c *Compiled) Matches() uint64 { return c.matches.Load() }

// Evaluations returns how many events the rule was fully evaluated against
// (after the log source and needle prefilters), and an estimate of the time
// spent, from timing one evaluation in evalSample.
func (c *Compiled) Evaluations() (count uint64, cost time.Duration) {
	return c.evals.Load(), time.Duration(c.nanos.Load())
}

// evalSample: one evaluation in this many is timed, to keep the clock off the
// hot path.
const evalSample = 64

// Engine runs a set of compiled rules against events. Build it once with
// NewEngine; it is immutable afterwards and safe for concurrent use through
// one Matcher per goroutine.
type Engine struct {
	rules        []*Compiled
	correlations []*Rule
	groups       []Logsource
	needles      *needleSet
	needleRules  [][]int32 // needle id → rules anchored on it
	always       []int32   // rules with no needle: evaluated whenever their log source applies
	byRef        map[string]*Compiled
}

// Options configure an Engine.
type Options struct {
	Compile CompileOptions
	// IgnoreLogsource evaluates every rule on every event, whatever log source
	// the event claims. Useful for hunting over unlabelled JSON.
	IgnoreLogsource bool
}

// NewEngine compiles the detection rules, attaches filters to the rules they
// name and records correlation rules. Rules that fail to compile are left out
// and reported, one *Error each; the engine still runs the rest.
func NewEngine(rules []*Rule, opts Options) (*Engine, []error) {
	e := &Engine{byRef: map[string]*Compiled{}}
	var errs []error
	groupIdx := map[Logsource]int{}
	var filters []*Rule
	for _, r := range rules {
		switch r.Kind {
		case KindCorrelation:
			e.correlations = append(e.correlations, r)
			continue
		case KindFilter:
			filters = append(filters, r)
			continue
		}
		root, err := compileDetection(r.Detection, &opts.Compile)
		if err != nil {
			errs = append(errs, ruleError(r, err))
			continue
		}
		ls := r.Logsource
		ls.Definition = ""
		if opts.IgnoreLogsource {
			ls = Logsource{}
		}
		g, ok := groupIdx[ls]
		if !ok {
			g = len(e.groups)
			groupIdx[ls] = g
			e.groups = append(e.groups, ls)
		}
		c := &Compiled{Rule: r, root: root, group: g, Emit: true}
		e.rules = append(e.rules, c)
		for _, ref := range []string{r.ID, r.Name} {
			if ref != "" {
				e.byRef[ref] = c
			}
		}
	}
	for _, f := range filters {
		root, err := compileDetection(f.Filter.Detection, &opts.Compile)
		if err != nil {
			errs = append(errs, ruleError(f, err))
			continue
		}
		for _, ref := range f.Filter.Rules {
			if c, ok := e.byRef[ref]; ok {
				c.filters = append(c.filters, root)
			}
		}
	}
	for _, cr := range e.correlations {
		if cr.Correlation.Generate {
			continue
		}
		for _, ref := range cr.Correlation.Rules {
			if c, ok := e.byRef[ref]; ok {
				c.Emit = false
			}
		}
	}
	e.index()
	return e, errs
}

func ruleError(r *Rule, err error) error {
	line := r.Line
	var le *lineError
	if errors.As(err, &le) && le.line > 0 {
		line = le.line
	}
	return &Error{Path: r.Path, Line: line, Rule: r.Ref(), Reason: err.Error()}
}

// index builds the needle scanner and the per-needle rule lists.
func (e *Engine) index() {
	ids := map[string]int32{}
	var needles []string
	intern := func(n string) int32 {
		id, seen := ids[n]
		if !seen {
			id = int32(len(needles))
			ids[n] = id
			needles = append(needles, n)
			e.needleRules = append(e.needleRules, nil)
		}
		return id
	}
	for i, c := range e.rules {
		set, ok := c.root.needles()
		if !ok || len(set) == 0 {
			e.always = append(e.always, int32(i))
			continue
		}
		for _, n := range set {
			id := intern(n)
			if l := e.needleRules[id]; len(l) == 0 || l[len(l)-1] != int32(i) {
				e.needleRules[id] = append(l, int32(i))
			}
		}
	}
	// The full prefilter formula of each rule uses more needles than the
	// index; they are scanned too, so one pass answers both.
	for _, c := range e.rules {
		c.pre = c.root.formula()
		assignIDs(c.pre, intern)
	}
	e.needles = newNeedleSet(needles)
}

func assignIDs(p *pf, intern func(string) int32) {
	if p == nil {
		return
	}
	if p.op == 'n' {
		p.id = intern(p.needle)
	}
	for _, k := range p.kids {
		assignIDs(k, intern)
	}
}

// Rules returns the compiled detection rules.
func (e *Engine) Rules() []*Compiled { return e.rules }

// Correlations returns the correlation rules the engine was given.
func (e *Engine) Correlations() []*Rule { return e.correlations }

// Lookup finds a compiled rule by id or name.
func (e *Engine) Lookup(ref string) (*Compiled, bool) {
	c, ok := e.byRef[ref]
	return c, ok
}

// Stats describes how the engine indexed its rules.
type Stats struct {
	Rules, Needles, Unindexed, Logsources int
}

// Stats reports the index shape: how many rules are only reachable without a
// needle (evaluated on every event of their log source).
func (e *Engine) Stats() Stats {
	return Stats{Rules: len(e.rules), Needles: len(e.needles.needles), Unindexed: len(e.always), Logsources: len(e.groups)}
}

// Match is one rule matching one event.
type Match struct {
	Rule *Compiled
	// Fields are the event fields that made the rule match. The slice is owned
	// by the Matcher and valid until its next Match call.
	Fields []event.Field
}

// Matcher evaluates events against an Engine. It holds per-goroutine scratch
// space; use one per goroutine.
type Matcher struct {
	e          *Engine
	gen        uint32
	needleSeen []uint32
	ruleSeen   []uint32
	cands      []int32
	groupOK    []bool
	lsKey      []byte
	lsCache    map[string]*lsEntry
	out        []Match
	fields     []event.Field
	foundFn    func(int32)
	sample     uint64
}

type lsEntry struct {
	groupOK []bool
	always  []int32 // rules without needles whose log source applies
	any     bool
}

const maxLsCache = 4096

// NewMatcher returns a Matcher for e.
func (e *Engine) NewMatcher() *Matcher {
	m := &Matcher{
		e:          e,
		needleSeen: make([]uint32, len(e.needleRules)),
		ruleSeen:   make([]uint32, len(e.rules)),
		lsCache:    map[string]*lsEntry{},
	}
	m.foundFn = m.found
	return m
}

func (m *Matcher) found(id int32) {
	if m.needleSeen[id] == m.gen {
		return
	}
	m.needleSeen[id] = m.gen
	for _, r := range m.e.needleRules[id] {
		if m.ruleSeen[r] != m.gen && m.groupOK[m.e.rules[r].group] {
			m.ruleSeen[r] = m.gen
			m.cands = append(m.cands, r)
		}
	}
}

// Match evaluates ev against every rule that can match it and returns the
// matches in rule order. The result is valid until the next call.
func (m *Matcher) Match(ev *event.Event) []Match {
	m.out = m.out[:0]
	m.fields = m.fields[:0]
	ls := m.logsources(ev)
	if !ls.any {
		return nil
	}
	ev.Lower()
	m.gen++
	if m.gen == 0 { // wrapped: clear stamps
		clear(m.needleSeen)
		clear(m.ruleSeen)
		m.gen = 1
	}
	m.groupOK = ls.groupOK
	m.cands = append(m.cands[:0], ls.always...)
	for _, r := range ls.always {
		m.ruleSeen[r] = m.gen
	}
	m.e.needles.scan(ev.Haystack(), m.foundFn)
	slices.Sort(m.cands)
	for _, r := range m.cands {
		c := m.e.rules[r]
		if !m.holds(c.pre) {
			continue
		}
		c.evals.Add(1)
		m.sample++
		var hit bool
		if m.sample%evalSample == 0 {
			t0 := time.Now()
			hit = c.root.eval(ev)
			c.nanos.Add(uint64(time.Since(t0)) * evalSample)
		} else {
			hit = c.root.eval(ev)
		}
		if !hit {
			continue
		}
		suppressed := false
		for _, f := range c.filters {
			if f.eval(ev) {
				suppressed = true
				break
			}
		}
		if suppressed {
			continue
		}
		c.matches.Add(1)
		start := len(m.fields)
		m.fields = c.root.collect(ev, m.fields)
		m.out = append(m.out, Match{Rule: c, Fields: m.fields[start:len(m.fields):len(m.fields)]})
	}
	return m.out
}

// holds evaluates a prefilter formula against the needles found in this event.
func (m *Matcher) holds(p *pf) bool {
	if p == nil {
		return true
	}
	switch p.op {
	case 'n':
		return m.needleSeen[p.id] == m.gen
	case '&':
		for _, k := range p.kids {
			if !m.holds(k) {
				return false
			}
		}
		return true
	}
	for _, k := range p.kids {
		if m.holds(k) {
			return true
		}
	}
	return false
}

// logsources returns, for the event's log source, which rule groups apply and
// which needle-less rules must run. Results are cached by log source.
func (m *Matcher) logsources(ev *event.Event) *lsEntry {
	k := m.lsKey[:0]
	k = append(k, ev.Product...)
	for _, s := range ev.Services {
		k = append(k, 0)
		k = append(k, s...)
	}
	k = append(k, 1)
	for _, c := range ev.Categories {
		k = append(k, 0)
		k = append(k, c...)
	}
	m.lsKey = k
	if ent, ok := m.lsCache[string(k)]; ok {
		return ent
	}
	ent := &lsEntry{groupOK: make([]bool, len(m.e.groups))}
	for i, g := range m.e.groups {
		ok := (g.Product == "" || g.Product == ev.Product) &&
			(g.Service == "" || ev.HasService(g.Service)) &&
			(g.Category == "" || ev.HasCategory(g.Category))
		ent.groupOK[i] = ok
		ent.any = ent.any || ok
	}
	for _, r := range m.e.always {
		if ent.groupOK[m.e.rules[r].group] {
			ent.always = append(ent.always, r)
		}
	}
	if len(m.lsCache) < maxLsCache {
		m.lsCache[string(k)] = ent
	}
	return ent
}

// Compile parses and compiles rule files' contents; a convenience for tests
// and tools that hold rules in memory.
func Compile(path string, data []byte, opts Options) (*Engine, error) {
	rules, errs := ParseFile(path, data)
	e, cerrs := NewEngine(rules, opts)
	errs = append(errs, cerrs...)
	if len(errs) > 0 {
		return e, errors.Join(errs...)
	}
	if len(e.rules) == 0 && len(e.correlations) == 0 {
		return e, fmt.Errorf("%s: no rules", path)
	}
	return e, nil
}
