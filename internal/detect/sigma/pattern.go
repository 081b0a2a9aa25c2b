package sigma

import (
	"strings"
	"unicode/utf8"
)

// pattern is a Sigma string after escape processing: literal text with
// unescaped * (any run) and ? (one character) wildcards.
type pattern []ptok

type ptok struct {
	lit  string
	kind byte // 0 literal, '*' any run, '?' one character
}

// parsePattern applies the specification's escape rules: \* and \? are
// literal wildcards, \\ is one backslash, and any other backslash is literal.
func parsePattern(s string) pattern {
	var p pattern
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			p = append(p, ptok{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '?' || s[i+1] == '\\') {
				lit.WriteByte(s[i+1])
				i++
			} else {
				lit.WriteByte('\\')
			}
		case '*', '?':
			flush()
			if c == '*' && len(p) > 0 && p[len(p)-1].kind == '*' {
				continue // ** is *
			}
			p = append(p, ptok{kind: c})
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return p
}

// literalPattern is a pattern of one literal, for values that have no
// wildcard semantics (encoded values).
func literalPattern(s string) pattern {
	if s == "" {
		return nil
	}
	return pattern{{lit: s}}
}

// isLiteral reports whether p has no wildcards, and returns its text.
func (p pattern) literal() (string, bool) {
	switch len(p) {
	case 0:
		return "", true
	case 1:
		if p[0].kind == 0 {
			return p[0].lit, true
		}
	}
	return "", false
}

func (p pattern) mapLit(f func(string) string) pattern {
	out := make(pattern, len(p))
	for i, t := range p {
		if t.kind == 0 {
			t.lit = f(t.lit)
		}
		out[i] = t
	}
	return out
}

// longestLiteral returns the longest literal run of p: every string p matches
// contains it.
func (p pattern) longestLiteral() string {
	best := ""
	for _, t := range p {
		if t.kind == 0 && len(t.lit) > len(best) {
			best = t.lit
		}
	}
	return best
}

// globMatch reports whether s matches p entirely. It is the classic
// backtrack-to-last-star algorithm: linear in practice, O(len(s)·len(p)) worst
// case, never exponential.
func globMatch(p pattern, s string) bool {
	pi, si := 0, 0
	starP, starS := -1, 0
	for {
		if pi < len(p) {
			t := p[pi]
			switch t.kind {
			case '*':
				starP, starS = pi, si
				pi++
				continue
			case '?':
				if si < len(s) {
					_, n := utf8.DecodeRuneInString(s[si:])
					si += n
					pi++
					continue
				}
			default:
				if strings.HasPrefix(s[si:], t.lit) {
					si += len(t.lit)
					pi++
					continue
				}
			}
		} else if si == len(s) {
			return true
		}
		if starP < 0 || starS >= len(s) {
			return false
		}
		// Let the last star swallow one more character and retry from there.
		_, n := utf8.DecodeRuneInString(s[starS:])
		starS += n
		pi, si = starP+1, starS
	}
}
