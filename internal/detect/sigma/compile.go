package sigma

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vigil-edr/vigil/internal/event"
)

// CompileOptions are the settings that change how rules compile.
type CompileOptions struct {
	// Placeholders gives the values of %name% placeholders for the expand
	// modifier. A rule using an undefined placeholder is rejected.
	Placeholders map[string][]string
}

// node is one compiled piece of a detection. eval reports whether the event
// matches; collect appends the fields that made a positive match.
type node interface {
	eval(ev *event.Event) bool
	collect(ev *event.Event, out []event.Field) []event.Field
	// needles returns a set of lower-case literals at least one of which every
	// matching event contains, or ok=false when no such set is known.
	needles() (set []string, ok bool)
	// formula returns the whole necessary condition over needles (nil when
	// nothing is known): a cheap test run before eval.
	formula() *pf
}

// pf is a prefilter formula over needle presence: a needle, AND, OR. A nil
// *pf means "unknown" (true).
type pf struct {
	op     byte // 'n' needle, '&' and, '|' or
	needle string
	id     int32
	kids   []*pf
}

func pfAnd(kids []*pf) *pf {
	var keep []*pf
	for _, k := range kids {
		if k != nil {
			keep = append(keep, k)
		}
	}
	switch len(keep) {
	case 0:
		return nil
	case 1:
		return keep[0]
	}
	return &pf{op: '&', kids: keep}
}

func pfOr(kids []*pf) *pf {
	for _, k := range kids {
		if k == nil {
			return nil // one unknown branch makes the whole OR unknown
		}
	}
	switch len(kids) {
	case 0:
		return nil
	case 1:
		return kids[0]
	}
	return &pf{op: '|', kids: kids}
}

func formulas(kids []node) []*pf {
	out := make([]*pf, len(kids))
	for i, k := range kids {
		out[i] = k.formula()
	}
	return out
}

func (n *andNode) formula() *pf { return pfAnd(formulas(n.kids)) }
func (n *orNode) formula() *pf  { return pfOr(formulas(n.kids)) }
func (n *notNode) formula() *pf { return nil }
func (n *ofNode) formula() *pf {
	if n.count >= len(n.kids) {
		return pfAnd(formulas(n.kids))
	}
	return pfOr(formulas(n.kids))
}

func (n *fieldNode) formula() *pf {
	if n.exists != nil || n.fieldref != nil || n.null || len(n.values) == 0 {
		return nil
	}
	var kids []*pf
	for _, m := range n.values {
		s := m.needles()
		if len(s) == 0 {
			if n.all {
				continue
			}
			return nil
		}
		alts := make([]*pf, len(s))
		for i, x := range s {
			alts[i] = &pf{op: 'n', needle: x}
		}
		kids = append(kids, pfOr(alts))
	}
	if n.all {
		return pfAnd(kids)
	}
	return pfOr(kids)
}

type andNode struct{ kids []node }
type orNode struct{ kids []node }
type notNode struct{ kid node }
type ofNode struct {
	kids  []node
	count int
}

func (n *andNode) eval(ev *event.Event) bool {
	for _, k := range n.kids {
		if !k.eval(ev) {
			return false
		}
	}
	return true
}

func (n *orNode) eval(ev *event.Event) bool {
	for _, k := range n.kids {
		if k.eval(ev) {
			return true
		}
	}
	return false
}

func (n *notNode) eval(ev *event.Event) bool { return !n.kid.eval(ev) }

func (n *ofNode) eval(ev *event.Event) bool {
	c := 0
	for _, k := range n.kids {
		if k.eval(ev) {
			c++
			if c >= n.count {
				return true
			}
		}
	}
	return false
}

func (n *andNode) collect(ev *event.Event, out []event.Field) []event.Field {
	for _, k := range n.kids {
		out = k.collect(ev, out)
	}
	return out
}

func (n *orNode) collect(ev *event.Event, out []event.Field) []event.Field {
	for _, k := range n.kids {
		if k.eval(ev) {
			out = k.collect(ev, out)
		}
	}
	return out
}

func (n *notNode) collect(_ *event.Event, out []event.Field) []event.Field { return out }

func (n *ofNode) collect(ev *event.Event, out []event.Field) []event.Field {
	for _, k := range n.kids {
		if k.eval(ev) {
			out = k.collect(ev, out)
		}
	}
	return out
}

func (n *andNode) needles() ([]string, bool) { return bestOf(n.kids) }
func (n *orNode) needles() ([]string, bool)  { return unionOf(n.kids) }
func (n *notNode) needles() ([]string, bool) { return nil, false }
func (n *ofNode) needles() ([]string, bool) {
	if n.count >= len(n.kids) {
		return bestOf(n.kids)
	}
	return unionOf(n.kids)
}

// minNeedle is the shortest literal worth indexing: shorter ones occur in
// nearly every event and would only cost time.
const minNeedle = 4

func unionOf(kids []node) ([]string, bool) {
	var all []string
	for _, k := range kids {
		s, ok := k.needles()
		if !ok {
			return nil, false
		}
		all = append(all, s...)
	}
	return all, len(all) > 0
}

// bestOf picks, among children that must all match, the needle set that is
// most selective: the one whose shortest needle is longest, then the smaller.
func bestOf(kids []node) ([]string, bool) {
	var best []string
	found := false
	for _, k := range kids {
		s, ok := k.needles()
		if !ok {
			continue
		}
		if !found || better(s, best) {
			best, found = s, true
		}
	}
	return best, found
}

func better(a, b []string) bool {
	ma, mb := minLen(a), minLen(b)
	if ma != mb {
		return ma > mb
	}
	return len(a) < len(b)
}

func minLen(s []string) int {
	m := 1 << 30
	for _, x := range s {
		if len(x) < m {
			m = len(x)
		}
	}
	return m
}

// fieldNode matches one FieldSpec against the event.
type fieldNode struct {
	field    string // "" means any field (keyword search)
	values   []valueMatcher
	all      bool
	null     bool  // a null value was listed: absent or empty matches
	exists   *bool // exists modifier
	fieldref []string
	refPlan  fieldSpecPlan
}

func (n *fieldNode) eval(ev *event.Event) bool {
	if n.exists != nil {
		_, ok := ev.Get(n.field)
		return ok == *n.exists
	}
	if n.fieldref != nil {
		return n.evalRef(ev)
	}
	if n.all {
		for _, m := range n.values {
			if !n.anyOccurrence(ev, m) {
				return false
			}
		}
		return true
	}
	if n.null {
		v, ok := ev.Get(n.field)
		if !ok || v == "" {
			return true
		}
	}
	for i := range ev.Fields {
		if n.field != "" && !event.SameName(ev.Fields[i].Name, n.field) {
			continue
		}
		raw, lower := ev.Fields[i].Value, ev.LowerValue(i)
		for _, m := range n.values {
			if m.match(raw, lower) {
				return true
			}
		}
	}
	return false
}

func (n *fieldNode) anyOccurrence(ev *event.Event, m valueMatcher) bool {
	for i := range ev.Fields {
		if n.field != "" && !event.SameName(ev.Fields[i].Name, n.field) {
			continue
		}
		if m.match(ev.Fields[i].Value, ev.LowerValue(i)) {
			return true
		}
	}
	return false
}

// evalRef compares the field with the value of other fields of the same event.
func (n *fieldNode) evalRef(ev *event.Event) bool {
	v, ok := ev.Get(n.field)
	if !ok {
		return false
	}
	hit := func(ref string) bool {
		r, ok := ev.Get(ref)
		if !ok {
			return false
		}
		a, b := v, r
		if !n.refPlan.cased {
			a, b = strings.ToLower(a), strings.ToLower(b)
		}
		var eq bool
		switch {
		case n.refPlan.contains:
			eq = strings.Contains(a, b)
		case n.refPlan.startswith:
			eq = strings.HasPrefix(a, b)
		case n.refPlan.endswith:
			eq = strings.HasSuffix(a, b)
		default:
			eq = a == b
		}
		return eq != n.refPlan.neq
	}
	for _, ref := range n.fieldref {
		h := hit(ref)
		if n.all && !h {
			return false
		}
		if !n.all && h {
			return true
		}
	}
	return n.all
}

func (n *fieldNode) collect(ev *event.Event, out []event.Field) []event.Field {
	if n.exists != nil || n.fieldref != nil || n.null {
		if v, ok := ev.Get(n.field); ok {
			out = append(out, event.Field{Name: n.field, Value: v})
		}
		return out
	}
	for i := range ev.Fields {
		if n.field != "" && !event.SameName(ev.Fields[i].Name, n.field) {
			continue
		}
		raw, lower := ev.Fields[i].Value, ev.LowerValue(i)
		for _, m := range n.values {
			if m.match(raw, lower) {
				out = append(out, ev.Fields[i])
				break
			}
		}
	}
	return out
}

func (n *fieldNode) needles() ([]string, bool) {
	if n.exists != nil || n.fieldref != nil || n.null || len(n.values) == 0 {
		return nil, false
	}
	var set []string
	for _, m := range n.values {
		s := m.needles()
		if len(s) == 0 {
			if n.all {
				continue // another value may still give a needle
			}
			return nil, false
		}
		if n.all {
			// Every value must match, so any one value's set is necessary: keep the best.
			if len(set) == 0 || better(s, set) {
				set = s
			}
			continue
		}
		set = append(set, s...)
	}
	return set, len(set) > 0
}

// compileSearch builds the node for one search identifier.
func compileSearch(s *Search, opts *CompileOptions) (node, error) {
	if s.Keywords != nil {
		// Keywords are a free-text search: each value may occur anywhere in a
		// value of the event, as every Sigma backend implements them.
		kw := *s.Keywords
		if !slices.Contains(kw.Modifiers, "re") && !slices.Contains(kw.Modifiers, "contains") {
			kw.Modifiers = append(append([]string(nil), kw.Modifiers...), "contains")
		}
		return compileFieldSpec(&kw, opts)
	}
	var alts []node
	for _, m := range s.Maps {
		var ands []node
		for i := range m {
			n, err := compileFieldSpec(&m[i], opts)
			if err != nil {
				return nil, &lineError{line: m[i].Line, err: err}
			}
			ands = append(ands, n)
		}
		alts = append(alts, collapse(&andNode{kids: ands}))
	}
	return collapse(&orNode{kids: alts}), nil
}

func collapse(n node) node {
	switch x := n.(type) {
	case *andNode:
		if len(x.kids) == 1 {
			return x.kids[0]
		}
	case *orNode:
		if len(x.kids) == 1 {
			return x.kids[0]
		}
	}
	return n
}

func compileFieldSpec(fs *FieldSpec, opts *CompileOptions) (node, error) {
	p, err := planModifiers(fs.Modifiers)
	if err != nil {
		return nil, fmt.Errorf("field %q: %w", fs.Field, err)
	}
	n := &fieldNode{field: fs.Field, all: p.all}
	if p.exists {
		if fs.Field == "" {
			return nil, fmt.Errorf("exists needs a field name")
		}
		if len(fs.Values) != 1 {
			return nil, fmt.Errorf("field %q: exists takes one value, true or false", fs.Field)
		}
		b, ok := parseBool(fs.Values[0].S)
		if !ok {
			return nil, fmt.Errorf("field %q: exists takes true or false, not %q", fs.Field, fs.Values[0].S)
		}
		n.exists = &b
		return n, nil
	}
	if p.fieldref {
		if fs.Field == "" {
			return nil, fmt.Errorf("fieldref needs a field name")
		}
		for _, v := range fs.Values {
			n.fieldref = append(n.fieldref, v.S)
		}
		n.refPlan = p
		return n, nil
	}
	for _, v := range fs.Values {
		if v.Null {
			if fs.Field == "" {
				return nil, fmt.Errorf("null is not a keyword")
			}
			n.null = true
		}
	}
	if n.values, err = compileValues(fs, p, opts); err != nil {
		return nil, fmt.Errorf("field %q: %w", fs.Field, err)
	}
	if !n.all {
		n.values = mergeContains(n.values)
	}
	if n.null && n.all && len(n.values) > 0 {
		return nil, fmt.Errorf("field %q: null cannot be combined with |all", fs.Field)
	}
	return n, nil
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes":
		return true, true
	case "false", "no":
		return false, true
	}
	return false, false
}

// compileDetection compiles a detection section into one node: the OR of its
// conditions.
func compileDetection(d *Detection, opts *CompileOptions) (node, error) {
	searches := make(map[string]node, len(d.Searches))
	for _, name := range d.Order {
		n, err := compileSearch(d.Searches[name], opts)
		if err != nil {
			line := d.Searches[name].Line
			var le *lineError
			if errors.As(err, &le) {
				line = le.line
			}
			return nil, &lineError{line: line, err: fmt.Errorf("search %q: %w", name, err)}
		}
		searches[name] = n
	}
	var roots []node
	for _, c := range d.Condition {
		ast, err := parseCondition(c, d.Order)
		if err != nil {
			return nil, &lineError{line: d.CondLine, err: err}
		}
		roots = append(roots, buildCond(ast, searches))
	}
	return collapse(&orNode{kids: roots}), nil
}

type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return e.err.Error() }
func (e *lineError) Unwrap() error { return e.err }

func buildCond(c *cond, s map[string]node) node {
	kids := func() []node {
		out := make([]node, len(c.kids))
		for i, k := range c.kids {
			out[i] = buildCond(k, s)
		}
		return out
	}
	switch c.kind {
	case condIdent:
		return s[c.name]
	case condAnd:
		return &andNode{kids: kids()}
	case condOr:
		return &orNode{kids: kids()}
	case condNot:
		return &notNode{kid: buildCond(c.kids[0], s)}
	case condAllOf:
		return collapse(&andNode{kids: kids()})
	case condOneOf:
		if c.count == 1 {
			return collapse(&orNode{kids: kids()})
		}
		return &ofNode{kids: kids(), count: c.count}
	}
	panic("sigma: unknown condition node")
}
