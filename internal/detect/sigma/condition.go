package sigma

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
)

// The condition grammar (Sigma v2):
//
//	expr     = and { "or" and }
//	and      = unary { "and" unary }
//	unary    = "not" unary | primary
//	primary  = "(" expr ")" | quant "of" ( pattern | "them" ) | identifier
//	quant    = number | "all" | "any"
//
// "not" binds tighter than "and", which binds tighter than "or". Keywords are
// case-insensitive. Patterns use * as a wildcard. The v1 aggregation syntax
// ("| count() by x > 5", "near") is rejected with a pointer to correlations.

// condKind is the node type of a parsed condition.
type condKind int

const (
	condIdent condKind = iota
	condAnd
	condOr
	condNot
	condOneOf // at least N of the identifiers
	condAllOf
)

// cond is a node of a parsed condition.
type cond struct {
	kind  condKind
	name  string  // condIdent
	kids  []*cond // and/or/not; the expanded identifiers for of-quantifiers
	count int     // condOneOf: how many must hold
}

const maxCondDepth = 64
const maxCondLen = 16 << 10

type condParser struct {
	toks  []string
	pos   int
	depth int
	names []string // search identifiers in file order
}

// parseCondition parses one condition string against the search identifiers
// the rule defines.
func parseCondition(s string, names []string) (*cond, error) {
	if len(s) > maxCondLen {
		return nil, fmt.Errorf("condition is %d bytes, more than the %d allowed", len(s), maxCondLen)
	}
	if i := strings.IndexByte(s, '|'); i >= 0 {
		return nil, fmt.Errorf("condition uses the Sigma v1 aggregation %q, which Sigma v2 replaced by correlation rules", strings.TrimSpace(s[i:]))
	}
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("condition is empty")
	}
	p := &condParser{toks: toks, names: names}
	c, err := p.expr()
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("condition: unexpected %q at token %d", p.toks[p.pos], p.pos+1)
	}
	return c, nil
}

func tokenize(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, s[i:i+1])
			i++
		case isIdentByte(c):
			j := i
			for j < len(s) && isIdentByte(s[j]) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		default:
			return nil, fmt.Errorf("condition: unexpected character %q at offset %d", c, i)
		}
	}
	return toks, nil
}

func isIdentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '*' || c == '-' || c == '.' || c == '?'
}

func (p *condParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *condParser) isKw(kw string) bool { return strings.EqualFold(p.peek(), kw) }

func (p *condParser) expr() (*cond, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxCondDepth {
		return nil, fmt.Errorf("condition nested more than %d levels", maxCondDepth)
	}
	left, err := p.and()
	if err != nil {
		return nil, err
	}
	if !p.isKw("or") {
		return left, nil
	}
	n := &cond{kind: condOr, kids: []*cond{left}}
	for p.isKw("or") {
		p.pos++
		right, err := p.and()
		if err != nil {
			return nil, err
		}
		n.kids = append(n.kids, right)
	}
	return n, nil
}

func (p *condParser) and() (*cond, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	if !p.isKw("and") {
		return left, nil
	}
	n := &cond{kind: condAnd, kids: []*cond{left}}
	for p.isKw("and") {
		p.pos++
		right, err := p.unary()
		if err != nil {
			return nil, err
		}
		n.kids = append(n.kids, right)
	}
	return n, nil
}

func (p *condParser) unary() (*cond, error) {
	if p.isKw("not") {
		p.pos++
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > maxCondDepth {
			return nil, fmt.Errorf("condition nested more than %d levels", maxCondDepth)
		}
		k, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &cond{kind: condNot, kids: []*cond{k}}, nil
	}
	return p.primary()
}

func (p *condParser) primary() (*cond, error) {
	t := p.peek()
	switch {
	case t == "":
		return nil, fmt.Errorf("condition ends where an identifier or '(' was expected")
	case t == "(":
		p.pos++
		c, err := p.expr()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("condition: missing ')'")
		}
		p.pos++
		return c, nil
	case t == ")":
		return nil, fmt.Errorf("condition: unexpected ')'")
	}
	lower := strings.ToLower(t)
	if lower == "and" || lower == "or" || lower == "of" || lower == "them" {
		return nil, fmt.Errorf("condition: unexpected keyword %q", t)
	}
	if p.pos+1 < len(p.toks) && strings.EqualFold(p.toks[p.pos+1], "of") {
		return p.quantifier()
	}
	p.pos++
	if strings.ContainsAny(t, "*?") {
		return nil, fmt.Errorf("condition: pattern %q may only follow '1 of' or 'all of'", t)
	}
	if !slices.Contains(p.names, t) {
		return nil, fmt.Errorf("condition refers to %q, which the detection does not define", t)
	}
	return &cond{kind: condIdent, name: t}, nil
}

func (p *condParser) quantifier() (*cond, error) {
	q := strings.ToLower(p.toks[p.pos])
	p.pos += 2 // quantifier and "of"
	target := p.peek()
	if target == "" || target == "(" || target == ")" {
		return nil, fmt.Errorf("condition: '%s of' needs a pattern or 'them'", q)
	}
	p.pos++
	var matched []string
	if strings.EqualFold(target, "them") {
		for _, n := range p.names {
			if !strings.HasPrefix(n, "_") {
				matched = append(matched, n)
			}
		}
	} else {
		for _, n := range p.names {
			if ok, _ := path.Match(target, n); ok {
				matched = append(matched, n)
			}
		}
	}
	if len(matched) == 0 {
		return nil, fmt.Errorf("condition: %q matches no search identifier", target)
	}
	kids := make([]*cond, len(matched))
	for i, n := range matched {
		kids[i] = &cond{kind: condIdent, name: n}
	}
	switch q {
	case "all":
		return &cond{kind: condAllOf, kids: kids}, nil
	case "any":
		return &cond{kind: condOneOf, kids: kids, count: 1}, nil
	}
	n, err := strconv.Atoi(q)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("condition: %q of: want a positive number, 'all' or 'any'", q)
	}
	return &cond{kind: condOneOf, kids: kids, count: n}, nil
}
