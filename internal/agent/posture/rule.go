package posture

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// A rule as written: `[not ]TYPE:TARGET[ -> PATTERN[ -> PATTERN]]`, where
// TYPE is f (file), d (directory), p (process), c (command) or r (Windows
// registry). docs/sca.md describes the grammar and its semantics.
type rule struct {
	raw     string
	negate  bool
	kind    byte     // 'f', 'd', 'p', 'c', 'r'
	targets []string // f, d: paths (a comma-separated list, variables expanded); p: one name; c: one command line; r: one key
	// d: only: the file name test of `d:DIR -> FILE[ -> CONTENT]`.
	file *term
	// content is the pattern after ` -> ` (for d:, after the file test);
	// nil for an existence rule.
	content  *expr
	regValue string // r: the value name of `r:KEY -> VALUE[ -> CONTENT]`
}

// expr is a content pattern: minterms joined with ` && `, all of which one
// line must satisfy; stat terms (the mode:, owner: and group: extensions)
// test the file itself.
type expr struct {
	text  string
	terms []term
}

// term is one minterm of a content pattern.
type term struct {
	neg  bool
	kind byte // 'l' literal line, 'r' regex, 'n' numeric comparison, 'm' mode, 'o' owner, 'g' group
	lit  string
	re   *regexp.Regexp
	op   string // n: <, <=, ==, !=, >=, >
	val  int64  // n: the right-hand side; m: the most permissive mode
	who  []string
}

func (t *term) stat() bool { return t.kind == 'm' || t.kind == 'o' || t.kind == 'g' }

// errRule wraps every rule syntax problem; the check is then not applicable.
var errRule = errors.New("rule not supported")

func ruleErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errRule, fmt.Sprintf(format, args...))
}

const sep = " -> "

// parseRule parses one rule with the policy's variables expanded in its
// left part (Wazuh expands them there only).
func parseRule(raw string, vars map[string]string, regexType string) (*rule, error) {
	s := strings.Trim(raw, " \t")
	r := &rule{raw: raw}
	if strings.HasPrefix(s, "not ") {
		r.negate = true
		s = strings.TrimLeft(s[4:], " \t")
	}
	parts := strings.Split(s, sep)
	left := strings.TrimRight(parts[0], " \t")
	pats := parts[1:]
	colon := strings.IndexByte(left, ':')
	if colon < 0 {
		return nil, ruleErr("no rule type (want f:, d:, p:, c: or r:)")
	}
	typ := strings.TrimPrefix(left[:colon], "!")
	if len(typ) != 1 || !strings.Contains("fdpcr", typ) {
		return nil, ruleErr("unknown rule type %q (want f, d, p, c or r)", clip(typ, 20))
	}
	r.kind = typ[0]
	target, err := expandVars(left[colon+1:], vars)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(target) == "" {
		return nil, ruleErr("empty target")
	}
	switch r.kind {
	case 'f':
		r.targets = splitList(target)
		if len(pats) > 0 {
			r.content, err = parseExpr(strings.Join(pats, sep), regexType, true)
		}
	case 'd':
		r.targets = splitList(target)
		if len(pats) > 0 {
			ft, err := parseTerm(strings.TrimSpace(pats[0]), regexType, false)
			if err != nil {
				return nil, err
			}
			if ft.kind == 'n' {
				return nil, ruleErr("a directory's file test cannot be numeric")
			}
			r.file = &ft
		}
		if len(pats) > 1 {
			r.content, err = parseExpr(strings.Join(pats[1:], sep), regexType, true)
		}
	case 'p':
		if len(pats) > 0 {
			return nil, ruleErr("process rules check existence only")
		}
		r.targets = []string{strings.TrimSpace(target)}
	case 'c':
		if len(pats) == 0 {
			return nil, ruleErr("command rules need an output pattern (c:COMMAND -> PATTERN)")
		}
		r.targets = []string{strings.TrimSpace(target)}
		r.content, err = parseExpr(strings.Join(pats, sep), regexType, false)
	case 'r':
		r.targets = []string{strings.TrimSpace(target)}
		if len(pats) > 0 {
			r.regValue = pats[0]
		}
		if len(pats) > 1 {
			r.content, err = parseExpr(strings.Join(pats[1:], sep), regexType, false)
		}
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// expandVars replaces the policy's variables in s in one pass (values are
// not expanded again), the longest name first at each '$' so that $a does
// not eat the start of $ab. Unknown $names are left alone: a command may
// hold shell or awk variables.
func expandVars(s string, vars map[string]string) (string, error) {
	if len(vars) == 0 || !strings.Contains(s, "$") {
		return s, nil
	}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] == '$' {
			matched := false
			for _, k := range names {
				if strings.HasPrefix(s[i:], k) {
					if b.Len()+len(vars[k]) > MaxRuleBytes {
						return "", ruleErr("longer than %d bytes once its variables are expanded", MaxRuleBytes)
					}
					b.WriteString(vars[k])
					i += len(k)
					matched = true
					break
				}
			}
			if matched {
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String(), nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseExpr parses `TERM && TERM ...`. statOK allows the file extensions.
func parseExpr(s, regexType string, statOK bool) (*expr, error) {
	e := &expr{text: s}
	for _, m := range strings.Split(s, " && ") {
		t, err := parseTerm(m, regexType, statOK)
		if err != nil {
			return nil, err
		}
		e.terms = append(e.terms, t)
	}
	return e, nil
}

func parseTerm(m, regexType string, statOK bool) (term, error) {
	var t term
	if strings.HasPrefix(m, "!") {
		t.neg = true
		m = m[1:]
	}
	switch {
	case strings.HasPrefix(m, "r:"):
		re, err := compileRegex(m[2:], regexType)
		if err != nil {
			return t, err
		}
		t.kind, t.re = 'r', re
	case strings.HasPrefix(m, "n:"):
		body := m[2:]
		i := strings.LastIndex(body, " compare ")
		if i < 0 {
			return t, ruleErr("numeric pattern without \" compare \"")
		}
		fields := strings.Fields(body[i+len(" compare "):])
		if len(fields) != 2 {
			return t, ruleErr("numeric pattern: want compare OPERATOR VALUE")
		}
		switch fields[0] {
		case "<", "<=", "==", "!=", ">=", ">":
		default:
			return t, ruleErr("numeric pattern: unknown operator %q", clip(fields[0], 10))
		}
		v, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return t, ruleErr("numeric pattern: value %q is not an integer", clip(fields[1], 30))
		}
		re, err := compileRegex(body[:i], regexType)
		if err != nil {
			return t, err
		}
		t.kind, t.re, t.op, t.val = 'n', re, fields[0], v
	case statOK && strings.HasPrefix(m, "mode:"):
		v, err := strconv.ParseUint(strings.TrimSpace(m[5:]), 8, 32)
		if err != nil || v > 0o7777 {
			return t, ruleErr("mode: want an octal mode such as 0640")
		}
		t.kind, t.val = 'm', int64(v)
	case statOK && (strings.HasPrefix(m, "owner:") || strings.HasPrefix(m, "group:")):
		t.kind = m[0]
		t.who = splitList(m[6:])
		if len(t.who) == 0 {
			return t, ruleErr("%s needs a name or id", m[:6])
		}
	default:
		t.kind, t.lit = 'l', m
	}
	return t, nil
}

// compileRegex compiles a policy regex for RE2. OS_Regex patterns (the
// default, as in Wazuh) are translated first. PCRE2 patterns (regex_type:
// pcre2) compile as they are where RE2 shares the syntax; lookaround,
// backreferences, atomic groups and possessive quantifiers are refused with
// the reason.
// Matching is case-insensitive, as in Wazuh (OS_Regex always was; its PCRE2
// engine compiles with PCRE2_CASELESS); a pattern may start with (?-i).
func compileRegex(pat, regexType string) (*regexp.Regexp, error) {
	if regexType != "pcre2" { // as Wazuh: any other value is OS_Regex
		pat = fromOSRegex(pat)
	} else if c := unsupportedPCRE(pat); c != "" {
		return nil, ruleErr("regex %q uses %s, which RE2 does not support", clip(pat, 80), c)
	}
	re, err := regexp.Compile("(?i)" + pat)
	if err != nil {
		return nil, ruleErr("regex %q is not valid for RE2: %s", clip(pat, 80), strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return re, nil
}

// unsupportedPCRE names the first PCRE2-only construct in pat, or "".
func unsupportedPCRE(pat string) string {
	for i := 0; i < len(pat); i++ {
		switch pat[i] {
		case '\\':
			if i+1 < len(pat) {
				c := pat[i+1]
				switch {
				case c >= '1' && c <= '9':
					return "a backreference (\\" + string(c) + ")"
				case strings.IndexByte("hHRKGZkgNXvV", c) >= 0:
					return "\\" + string(c)
				}
				i++
			}
		case '(':
			rest := pat[i+1:]
			for _, p := range []string{"?=", "?!", "?<=", "?<!", "?>", "?|", "?R", "?&", "?P=", "?P>", "*"} {
				if strings.HasPrefix(rest, p) {
					return "(" + p
				}
			}
		case '+':
			if i > 0 && strings.IndexByte("*+?}", pat[i-1]) >= 0 && (i < 2 || pat[i-2] != '\\') {
				return "a possessive quantifier"
			}
		}
	}
	return ""
}

// fromOSRegex translates Wazuh's OS_Regex syntax to RE2: \. is any
// character, \p one of the punctuation characters OS_Regex lists, \w
// letters, digits, '-', '@' and '_', \s a space; the special characters are
// ^ $ | ( ) + * and everything else is literal. A + or * with nothing to
// repeat (after another quantifier, or after ^ | ( or at the start) is taken
// as the literal character: iptables rules write `lo\.**\.*0.0.0.0/0` for
// "lo, then a literal * further on".
func fromOSRegex(p string) string {
	var b strings.Builder
	repeatable := false // the last item written can take a quantifier
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '\\' && i+1 < len(p) {
			i++
			switch p[i] {
			case '.':
				b.WriteString(".")
			case 'w':
				b.WriteString(`[A-Za-z0-9@_\-]`)
			case 'W':
				b.WriteString(`[^A-Za-z0-9@_\-]`)
			case 'd':
				b.WriteString(`[0-9]`)
			case 'D':
				b.WriteString(`[^0-9]`)
			case 's':
				b.WriteString(`[ ]`)
			case 'S':
				b.WriteString(`[^ ]`)
			case 't':
				b.WriteString(`\t`)
			case 'p':
				b.WriteString(osPunct)
			default:
				b.WriteString(regexp.QuoteMeta(p[i : i+1]))
			}
			repeatable = true
			continue
		}
		switch c {
		case '+', '*':
			if !repeatable {
				b.WriteString(regexp.QuoteMeta(string(c)))
				repeatable = true
				continue
			}
			b.WriteByte(c)
			repeatable = false
		case '^', '|', '(':
			b.WriteByte(c)
			repeatable = false
		case '$', ')':
			b.WriteByte(c)
			repeatable = c == ')'
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
			repeatable = true
		}
	}
	return b.String()
}

// osPunct is OS_Regex's \p: ()*+,-.:;<=>?[]!"'#$%&|{} and nothing else.
const osPunct = `[()*+,\-.:;<=>?\[\]!"'#$%&|{}]`

// splitCommand splits a command line into argv the way Wazuh does before
// it executes a command without a shell: on blanks, with "double" and
// 'single' quoted parts kept together (quotes removed, no escapes).
func splitCommand(s string) ([]string, error) {
	var (
		args []string
		cur  strings.Builder
		in   bool
		q    byte
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			q, in = c, true
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				args = append(args, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if q != 0 {
		return nil, fmt.Errorf("unbalanced %c quote in the command", q)
	}
	if in {
		args = append(args, cur.String())
	}
	if len(args) == 0 {
		return nil, errors.New("empty command")
	}
	return args, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
