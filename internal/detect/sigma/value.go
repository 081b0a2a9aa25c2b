package sigma

import (
	"encoding/base64"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"regexp/syntax"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/vigil-edr/vigil/internal/event"
)

// valueMatcher tests one field value. raw is the value as the event holds it,
// lower its lower-case form (see event.Event.Lower).
type valueMatcher interface {
	match(raw, lower string) bool
	// needles returns lower-case literals at least one of which every value
	// this matcher accepts contains; nil when none is known.
	needles() []string
}

func one(s string) []string {
	if len(s) < minNeedle {
		return nil
	}
	return []string{event.ToLower(s)}
}

// String matchers. s is lower-cased unless cased is set.
type (
	strEq struct {
		s     string
		cased bool
	}
	strPrefix struct {
		s     string
		cased bool
	}
	strSuffix struct {
		s     string
		cased bool
	}
	strContains struct {
		s     string
		cased bool
	}
	strGlob struct {
		p     pattern
		cased bool
	}
	strNeq struct{ inner valueMatcher }
)

func pick(raw, lower string, cased bool) string {
	if cased {
		return raw
	}
	return lower
}

func (m strEq) match(raw, lower string) bool { return pick(raw, lower, m.cased) == m.s }
func (m strEq) needles() []string            { return one(m.s) }
func (m strPrefix) match(raw, lower string) bool {
	return strings.HasPrefix(pick(raw, lower, m.cased), m.s)
}
func (m strPrefix) needles() []string { return one(m.s) }
func (m strSuffix) match(raw, lower string) bool {
	return strings.HasSuffix(pick(raw, lower, m.cased), m.s)
}
func (m strSuffix) needles() []string { return one(m.s) }
func (m strContains) match(raw, lower string) bool {
	return strings.Contains(pick(raw, lower, m.cased), m.s)
}
func (m strContains) needles() []string { return one(m.s) }
func (m strGlob) match(raw, lower string) bool {
	return globMatch(m.p, pick(raw, lower, m.cased))
}
func (m strGlob) needles() []string           { return one(m.p.longestLiteral()) }
func (m strNeq) match(raw, lower string) bool { return !m.inner.match(raw, lower) }
func (m strNeq) needles() []string            { return nil }
func (m reMatch) match(raw, lower string) bool {
	// Every string the expression matches holds one literal of each set
	// (lower-cased, as lower is): a value missing one cannot match, and
	// checking costs far less than running the expression.
	for _, set := range m.pre {
		if !containsAny(lower, set) {
			return false
		}
	}
	return m.re.MatchString(raw)
}
func (m reMatch) needles() []string          { return m.lits }
func (m cidrMatch) needles() []string        { return nil }
func (m numMatch) needles() []string         { return nil }
func (m timeMatch) needles() []string        { return nil }
func (m cidrMatch) match(raw, _ string) bool { return matchCIDR(m.p, raw) }
func (m numMatch) match(raw, _ string) bool  { return m.cmp.holds(raw) }
func (m timeMatch) match(raw, _ string) bool { return m.holds(raw) }

type reMatch struct {
	re   *regexp.Regexp
	lits []string   // required literals, lower-case, from requiredLiterals
	pre  [][]string // prefilter: sets of short required literals (requiredSets), most selective first
}

func containsAny(s string, set []string) bool {
	for _, lit := range set {
		if len(lit) == 1 {
			if strings.IndexByte(s, lit[0]) >= 0 {
				return true
			}
		} else if strings.Contains(s, lit) {
			return true
		}
	}
	return false
}

type cidrMatch struct{ p netip.Prefix }

func matchCIDR(p netip.Prefix, raw string) bool {
	s := strings.TrimSpace(raw)
	s = strings.TrimPrefix(strings.TrimSuffix(s, "]"), "[")
	if i := strings.IndexByte(s, '%'); i >= 0 {
		s = s[:i]
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return false
	}
	return p.Contains(a.Unmap())
}

// numCmp compares a field, read as a number, with a constant; the
// comparison itself is the one correlation conditions use.
type numCmp Comparison

func (c numCmp) holds(raw string) bool {
	v, ok := parseNumber(raw)
	return ok && Comparison(c).Holds(v)
}

// parseNumber reads decimal, float and 0x-hex numbers, as Windows logs write
// them.
func parseNumber(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		u, err := strconv.ParseUint(s[2:], 16, 64)
		return float64(u), err == nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

type numMatch struct{ cmp numCmp }

// timeMatch extracts a calendar part from a time value and compares it.
type timeMatch struct {
	part string
	cmp  numCmp
}

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02",
}

func (m timeMatch) holds(raw string) bool {
	var t time.Time
	var err error
	for _, l := range timeLayouts {
		if t, err = time.Parse(l, strings.TrimSpace(raw)); err == nil {
			break
		}
	}
	if err != nil {
		return false
	}
	var v int
	switch m.part {
	case "minute":
		v = t.Minute()
	case "hour":
		v = t.Hour()
	case "day":
		v = t.Day()
	case "week":
		_, v = t.ISOWeek()
	case "month":
		v = int(t.Month())
	case "year":
		v = t.Year()
	}
	return m.cmp.holds(strconv.Itoa(v))
}

// fieldSpecPlan is what the modifiers of one FieldSpec ask for.
type fieldSpecPlan struct {
	all, cased, contains, startswith, endswith, neq bool
	re                                              bool
	reFlags                                         string
	cidr, exists, fieldref, expand                  bool
	cmp                                             string // gt, gte, lt, lte
	timePart                                        string
	transforms                                      []string // in order: base64, base64offset, utf16*, wide, windash
}

var knownModifiers = map[string]bool{
	"all": true, "cased": true, "contains": true, "startswith": true, "endswith": true,
	"neq": true, "re": true, "i": true, "m": true, "s": true, "ignorecase": true,
	"multiline": true, "dotall": true, "cidr": true, "exists": true, "fieldref": true,
	"expand": true, "gt": true, "gte": true, "lt": true, "lte": true,
	"minute": true, "hour": true, "day": true, "week": true, "month": true, "year": true,
	"base64": true, "base64offset": true, "utf16": true, "utf16le": true, "utf16be": true,
	"wide": true, "windash": true,
}

func planModifiers(mods []string) (fieldSpecPlan, error) {
	var p fieldSpecPlan
	for _, m := range mods {
		if !knownModifiers[m] {
			return p, fmt.Errorf("unknown modifier %q", m)
		}
		switch m {
		case "all":
			p.all = true
		case "cased":
			p.cased = true
		case "contains":
			p.contains = true
		case "startswith":
			p.startswith = true
		case "endswith":
			p.endswith = true
		case "neq":
			p.neq = true
		case "re":
			p.re = true
		case "i", "ignorecase":
			p.reFlags += "i"
		case "m", "multiline":
			p.reFlags += "m"
		case "s", "dotall":
			p.reFlags += "s"
		case "cidr":
			p.cidr = true
		case "exists":
			p.exists = true
		case "fieldref":
			p.fieldref = true
		case "expand":
			p.expand = true
		case "gt", "gte", "lt", "lte":
			if p.cmp != "" {
				return p, fmt.Errorf("modifiers %s and %s cannot be combined", p.cmp, m)
			}
			p.cmp = m
		case "minute", "hour", "day", "week", "month", "year":
			p.timePart = m
		default:
			p.transforms = append(p.transforms, m)
		}
	}
	if p.reFlags != "" && !p.re {
		return p, fmt.Errorf("regular expression flags (i, m, s) need the re modifier")
	}
	kinds := 0
	for _, b := range []bool{p.re, p.cidr, p.exists, p.cmp != "" && p.timePart == "", p.contains || p.startswith || p.endswith} {
		if b {
			kinds++
		}
	}
	if kinds > 1 {
		return p, fmt.Errorf("modifiers %s cannot be combined", strings.Join(mods, "|"))
	}
	if (p.re || p.cidr || p.exists) && len(p.transforms) > 0 {
		return p, fmt.Errorf("modifier %s cannot be combined with %s", p.transforms[0], strings.Join(mods, "|"))
	}
	return p, nil
}

// compileValues turns the values of one FieldSpec into matchers.
func compileValues(fs *FieldSpec, p fieldSpecPlan, opts *CompileOptions) ([]valueMatcher, error) {
	if p.all && len(fs.Values) < 2 && !p.exists && fs.Field != "" {
		// The specification forbids |all on one value; accept it (it means the
		// same as without) rather than reject rules for style.
		p.all = false
	}
	var out []valueMatcher
	for _, v := range fs.Values {
		if v.Null {
			continue // handled by the field matcher
		}
		ms, err := compileValue(v.S, p, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

const maxExpansions = 4096

func compileValue(s string, p fieldSpecPlan, opts *CompileOptions) ([]valueMatcher, error) {
	switch {
	case p.re:
		return compileRegex(s, p.reFlags)
	case p.cidr:
		pr, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			a, aerr := netip.ParseAddr(strings.TrimSpace(s))
			if aerr != nil {
				return nil, fmt.Errorf("cidr: %q is not a network (%v)", s, err)
			}
			pr = netip.PrefixFrom(a, a.BitLen())
		}
		return []valueMatcher{cidrMatch{pr.Masked()}}, nil
	case p.timePart != "":
		op := p.cmp
		if op == "" {
			op = "eq"
		}
		n, ok := parseNumber(s)
		if !ok {
			return nil, fmt.Errorf("%s: %q is not a number", p.timePart, s)
		}
		return []valueMatcher{timeMatch{part: p.timePart, cmp: numCmp{Op: op, N: n}}}, nil
	case p.cmp != "":
		n, ok := parseNumber(s)
		if !ok {
			return nil, fmt.Errorf("%s: %q is not a number", p.cmp, s)
		}
		return []valueMatcher{numMatch{numCmp{Op: p.cmp, N: n}}}, nil
	}

	var pats []pattern
	if p.expand {
		vals, err := expandPlaceholders(s, opts)
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			pats = append(pats, parsePattern(v))
		}
	} else {
		pats = []pattern{parsePattern(s)}
	}
	for _, t := range p.transforms {
		var err error
		if pats, err = transform(t, pats); err != nil {
			return nil, err
		}
		if len(pats) > maxExpansions {
			return nil, fmt.Errorf("modifier %s expands the value into more than %d variants", t, maxExpansions)
		}
	}
	out := make([]valueMatcher, 0, len(pats))
	for _, pt := range pats {
		m := stringMatcher(pt, p)
		if p.neq {
			m = strNeq{m}
		}
		out = append(out, m)
	}
	return out, nil
}

func stringMatcher(pt pattern, p fieldSpecPlan) valueMatcher {
	if !p.cased {
		pt = pt.mapLit(event.ToLower)
	}
	if p.contains || p.endswith {
		if len(pt) == 0 || pt[0].kind != '*' {
			pt = append(pattern{{kind: '*'}}, pt...)
		}
	}
	if p.contains || p.startswith {
		if len(pt) == 0 || pt[len(pt)-1].kind != '*' {
			pt = append(pt, ptok{kind: '*'})
		}
	}
	// Recognise the four common shapes; the rest is a glob.
	lit := func(t ptok) bool { return t.kind == 0 }
	star := func(t ptok) bool { return t.kind == '*' }
	switch {
	case len(pt) == 0:
		return strEq{"", p.cased}
	case len(pt) == 1 && lit(pt[0]):
		return strEq{pt[0].lit, p.cased}
	case len(pt) == 2 && lit(pt[0]) && star(pt[1]):
		return strPrefix{pt[0].lit, p.cased}
	case len(pt) == 2 && star(pt[0]) && lit(pt[1]):
		return strSuffix{pt[1].lit, p.cased}
	case len(pt) == 3 && star(pt[0]) && lit(pt[1]) && star(pt[2]):
		return strContains{pt[1].lit, p.cased}
	case len(pt) == 1 && star(pt[0]):
		return strGlob{pt, p.cased}
	}
	return strGlob{pt, p.cased}
}

func compileRegex(s, flags string) ([]valueMatcher, error) {
	expr := s
	if flags != "" {
		expr = "(?" + flags + ")" + s
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		var se *syntax.Error
		if ok := asSyntaxError(err, &se); ok {
			return nil, fmt.Errorf("regular expression %q uses %s (%s), which RE2 does not support", clip(s, 80), se.Expr, se.Code)
		}
		return nil, fmt.Errorf("regular expression %q: %v", clip(s, 80), err)
	}
	var lits []string
	var pre [][]string
	if parsed, err := syntax.Parse(expr, syntax.Perl); err == nil {
		simple := parsed.Simplify()
		lits, _ = requiredLiterals(simple)
		pre = requiredSets(simple)
	}
	return []valueMatcher{reMatch{re: re, lits: lits, pre: pre}}, nil
}

// maxLiteralSet bounds the alternatives kept by requiredLiterals.
const maxLiteralSet = 64

// maxPrefilterSets bounds the literal sets a regex value checks before
// running the expression.
const maxPrefilterSets = 4

// requiredLiterals returns lower-case literals of at least minNeedle bytes,
// at least one of which occurs in every string the expression matches
// (ok=false when none is known). It is the "inner literal" analysis of
// grep-like tools, simplified: a literal is itself, a concatenation takes its
// most selective part, an alternation the union of its branches, and
// repetitions with a minimum of one their body.
func requiredLiterals(re *syntax.Regexp) ([]string, bool) {
	return requiredLits(re, minNeedle, false)
}

// requiredLits is requiredLiterals with literals of at least min bytes.
// With strict set, a case-insensitive literal is refused when a letter of it
// also matches a character whose lower case differs from the letter's (k
// matches the Kelvin sign, s the long s): the lower-cased value would not
// hold the literal.
func requiredLits(re *syntax.Regexp, min int, strict bool) ([]string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		if strict && re.Flags&syntax.FoldCase != 0 && !foldSafe(re.Rune) {
			return nil, false
		}
		s := event.ToLower(string(re.Rune))
		if len(s) < min {
			return nil, false
		}
		return []string{s}, true
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLits(re.Sub[0], min, strict)
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLits(re.Sub[0], min, strict)
		}
	case syntax.OpConcat:
		var best []string
		found := false
		for _, sub := range re.Sub {
			if set, ok := requiredLits(sub, min, strict); ok && (!found || better(set, best)) {
				best, found = set, true
			}
		}
		return best, found
	case syntax.OpAlternate:
		var all []string
		for _, sub := range re.Sub {
			set, ok := requiredLits(sub, min, strict)
			if !ok {
				return nil, false
			}
			all = append(all, set...)
		}
		if len(all) > maxLiteralSet {
			return nil, false
		}
		return all, len(all) > 0
	}
	return nil, false
}

// foldSafe reports whether every rune is ASCII and, if a letter, one whose
// case-insensitive matches are only its ASCII upper and lower case.
func foldSafe(rs []rune) bool {
	for _, r := range rs {
		switch {
		case r >= utf8.RuneSelf:
			return false
		case r == 'k' || r == 'K' || r == 's' || r == 'S':
			return false
		}
	}
	return true
}

// requiredSets returns sets of lower-case literals of any length such that
// every string the expression matches holds a literal of each set: the
// required literals of each part of a concatenation, which must all be
// present (where requiredLiterals keeps only the most selective one, and
// only literals long enough to index). At most maxPrefilterSets are kept,
// fewest alternatives first.
func requiredSets(re *syntax.Regexp) [][]string {
	var sets [][]string
	var walk func(re *syntax.Regexp)
	walk = func(re *syntax.Regexp) {
		switch {
		case re.Op == syntax.OpCapture || re.Op == syntax.OpPlus || re.Op == syntax.OpRepeat && re.Min >= 1:
			walk(re.Sub[0])
		case re.Op == syntax.OpConcat:
			for _, sub := range re.Sub {
				walk(sub)
			}
		default:
			if set, ok := requiredLits(re, 1, true); ok && !slices.ContainsFunc(sets, func(s []string) bool { return slices.Equal(s, set) }) {
				sets = append(sets, set)
			}
		}
	}
	walk(re)
	sort.SliceStable(sets, func(i, j int) bool {
		if len(sets[i]) != len(sets[j]) {
			return len(sets[i]) < len(sets[j])
		}
		return minLen(sets[i]) > minLen(sets[j])
	})
	if len(sets) > maxPrefilterSets {
		sets = sets[:maxPrefilterSets]
	}
	return sets
}

func asSyntaxError(err error, target **syntax.Error) bool {
	se, ok := err.(*syntax.Error)
	if ok {
		*target = se
	}
	return ok
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func expandPlaceholders(s string, opts *CompileOptions) ([]string, error) {
	out := []string{""}
	for len(s) > 0 {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			break
		}
		name := s[i+1 : i+1+j]
		vals, ok := opts.Placeholders[name]
		if !ok {
			return nil, fmt.Errorf("expand: placeholder %%%s%% has no values; define it in the placeholders setting", name)
		}
		var next []string
		for _, o := range out {
			for _, v := range vals {
				next = append(next, o+s[:i]+v)
			}
		}
		if len(next) > maxExpansions {
			return nil, fmt.Errorf("expand: more than %d variants", maxExpansions)
		}
		out = next
		s = s[i+2+j:]
	}
	for k := range out {
		out[k] += s
	}
	return out, nil
}

// transform applies one encoding modifier to every pattern.
func transform(mod string, pats []pattern) ([]pattern, error) {
	var out []pattern
	for _, pt := range pats {
		if mod == "windash" {
			out = append(out, windash(pt)...)
			continue
		}
		s, ok := pt.literal()
		if !ok {
			return nil, fmt.Errorf("modifier %s cannot encode a value with wildcards", mod)
		}
		switch mod {
		case "base64":
			out = append(out, literalPattern(base64.StdEncoding.EncodeToString([]byte(s))))
		case "base64offset":
			for _, v := range base64Offsets(s) {
				out = append(out, literalPattern(v))
			}
		case "utf16le", "wide":
			out = append(out, literalPattern(utf16Bytes(s, false)))
		case "utf16be":
			out = append(out, literalPattern(utf16Bytes(s, true)))
		case "utf16":
			out = append(out, literalPattern("\xff\xfe"+utf16Bytes(s, false)))
		}
	}
	return out, nil
}

// base64Offsets returns the three stable middles of s base64-encoded at byte
// offsets 0, 1 and 2 of a longer string.
func base64Offsets(s string) []string {
	start := [3]int{0, 2, 3}
	endTrim := [3]int{0, 3, 2}
	var out []string
	for i := 0; i < 3; i++ {
		enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat(" ", i) + s))
		end := len(enc) - endTrim[(len(s)+i)%3]
		if start[i] < end {
			out = append(out, enc[start[i]:end])
		}
	}
	return out
}

func utf16Bytes(s string, bigEndian bool) string {
	units := utf16.Encode([]rune(s))
	b := make([]byte, 0, 2*len(units))
	for _, u := range units {
		if bigEndian {
			b = append(b, byte(u>>8), byte(u))
		} else {
			b = append(b, byte(u), byte(u>>8))
		}
	}
	return string(b)
}

var dashes = []string{"-", "/", "\u2013", "\u2014", "\u2015"}

// windash expands every "-" or "/" that starts a word (not preceded by a word
// character, followed by one) into the five dash forms Windows accepts.
func windash(pt pattern) []pattern {
	out := []pattern{nil}
	for ti, t := range pt {
		if t.kind != 0 {
			for i := range out {
				out[i] = append(out[i], t)
			}
			continue
		}
		prevWord := ti > 0 && pt[ti-1].kind == '?'
		pieces := []string{""}
		s := t.lit
		last := 0
		for i := 0; i < len(s); i++ {
			c := s[i]
			before := prevWord
			if i > 0 {
				before = isWordByte(s[i-1])
			}
			if (c == '-' || c == '/') && !before && i+1 < len(s) && isWordByte(s[i+1]) {
				var next []string
				for _, p := range pieces {
					for _, d := range dashes {
						next = append(next, p+s[last:i]+d)
					}
				}
				pieces = next
				last = i + 1
				if len(pieces) > maxExpansions {
					break
				}
			}
		}
		for i := range pieces {
			pieces[i] += s[last:]
		}
		var next []pattern
		for _, o := range out {
			for _, p := range pieces {
				np := append(append(pattern(nil), o...), ptok{lit: p})
				next = append(next, np)
			}
		}
		out = next
	}
	return out
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c >= 0x80
}

// multiContains tests many "contains" literals in one pass over the value: a
// bitmap of the literals' first bytes skips positions no literal can start
// at, and only literals with that first byte are compared. Rules that list
// dozens of characters (emoji, homoglyphs, Unicode look-alikes) over a
// mostly-ASCII command line cost one table look-up per byte instead of one
// search per literal.
type multiContains struct {
	bits    [4]uint64
	byFirst map[byte][]string
	lits    []string
	cased   bool
}

// minMultiContains is the list length from which a field's contains values
// are merged into one multiContains.
const minMultiContains = 8

func newMultiContains(lits []string, cased bool) *multiContains {
	m := &multiContains{byFirst: map[byte][]string{}, lits: lits, cased: cased}
	for _, l := range lits {
		c := l[0]
		m.bits[c>>6] |= 1 << (c & 63)
		m.byFirst[c] = append(m.byFirst[c], l)
	}
	return m
}

func (m *multiContains) match(raw, lower string) bool {
	s := pick(raw, lower, m.cased)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if m.bits[c>>6]&(1<<(c&63)) == 0 {
			continue
		}
		for _, l := range m.byFirst[c] {
			if strings.HasPrefix(s[i:], l) {
				return true
			}
		}
	}
	return false
}

func (m *multiContains) needles() []string {
	out := make([]string, 0, len(m.lits))
	for _, l := range m.lits {
		n := one(l)
		if n == nil {
			return nil
		}
		out = append(out, n...)
	}
	return out
}

// mergeContains replaces many plain contains matchers of one field by one
// multiContains; other matchers are kept as they are.
func mergeContains(ms []valueMatcher) []valueMatcher {
	var lits [2][]string // by cased
	for _, m := range ms {
		if c, ok := m.(strContains); ok && c.s != "" {
			i := 0
			if c.cased {
				i = 1
			}
			lits[i] = append(lits[i], c.s)
		}
	}
	if len(lits[0]) < minMultiContains && len(lits[1]) < minMultiContains {
		return ms
	}
	var out []valueMatcher
	for _, m := range ms {
		if c, ok := m.(strContains); ok && c.s != "" {
			i := 0
			if c.cased {
				i = 1
			}
			if len(lits[i]) >= minMultiContains {
				continue
			}
		}
		out = append(out, m)
	}
	for i, l := range lits {
		if len(l) >= minMultiContains {
			out = append(out, newMultiContains(l, i == 1))
		}
	}
	return out
}
