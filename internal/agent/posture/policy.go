package posture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Limits on one policy file. Wazuh's largest public policies hold a few
// hundred checks in under 1 MiB.
const (
	MaxPolicyBytes = 8 << 20
	MaxChecks      = 10_000
	MaxRules       = 1_000    // per check
	MaxRuleBytes   = 64 << 10 // per rule
	MaxVariables   = 1_000
)

// ErrPolicy is wrapped by every error Parse returns for a policy file that
// does not follow the format.
var ErrPolicy = errors.New("invalid policy")

// Policy is one parsed SCA policy file.
type Policy struct {
	// Source names the file the policy came from in messages ("builtin:…"
	// for embedded ones).
	Source string `json:"source"`
	// SHA256 is the hex digest of the file's bytes.
	SHA256       string            `json:"sha256"`
	ID           string            `json:"id"`
	File         string            `json:"file,omitempty"`
	Name         string            `json:"name"`
	Description  string            `json:"description,omitempty"`
	References   []string          `json:"references,omitempty"`
	RegexType    string            `json:"regex_type,omitempty"` // "osregex" (the default, as in Wazuh) or "pcre2"
	Requirements *Requirements     `json:"requirements,omitempty"`
	Variables    map[string]string `json:"variables,omitempty"` // "$name" → value
	Checks       []Check           `json:"checks"`
}

// Requirements decide whether a policy applies to the host at all.
type Requirements struct {
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Condition   string   `json:"condition"`
	Rules       []string `json:"rules"`
}

// Check is one check of a policy.
type Check struct {
	ID          int64    `json:"id"`
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Rationale   string   `json:"rationale,omitempty"`
	Impact      string   `json:"impact,omitempty"`
	Remediation string   `json:"remediation,omitempty"`
	References  []string `json:"references,omitempty"`
	// Compliance maps a framework name (as the policy writes it, e.g.
	// "cis_csc_v8") to its control identifiers.
	Compliance map[string][]string `json:"compliance,omitempty"`
	Condition  string              `json:"condition"`
	Rules      []string            `json:"rules"`
	RegexType  string              `json:"regex_type,omitempty"`
	// Line is where the check starts in the policy file.
	Line int `json:"line,omitempty"`
}

// Place is a position in a policy file, for messages.
func place(src string, n *yaml.Node) string {
	if n == nil || n.Line == 0 {
		return src
	}
	return fmt.Sprintf("%s:%d:%d", src, n.Line, n.Column)
}

// Parse reads one policy file. src names it in error messages, which give
// the line and column of the problem and wrap ErrPolicy. Problems confined
// to one check's rules (unknown rule types, regexes RE2 cannot run, an
// unknown condition) are not errors: that check evaluates as not applicable
// with the reason, so a policy written for a newer Wazuh still runs.
func Parse(src string, data []byte) (*Policy, error) {
	bad := func(n *yaml.Node, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrPolicy, place(src, n), fmt.Sprintf(format, args...))
	}
	if len(data) > MaxPolicyBytes {
		return nil, bad(nil, "%d bytes, more than the limit of %d", len(data), MaxPolicyBytes)
	}
	if !utf8.Valid(data) {
		line := 1 + bytes.Count(data[:invalidAt(data)], []byte("\n"))
		return nil, bad(&yaml.Node{Line: line, Column: 1}, "not valid UTF-8")
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, bad(nil, "empty file")
		}
		return nil, bad(nil, "%v", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, bad(&extra, "more than one YAML document")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, bad(root, "want a mapping with policy and checks")
	}
	if err := checkDepth(root, 0); err != nil {
		return nil, bad(root, "%v", err)
	}
	p := &Policy{Source: src, SHA256: sha256hex(data)}
	var policyNode, checksNode *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "policy":
			policyNode = v
			var raw struct {
				ID          string   `yaml:"id"`
				File        string   `yaml:"file"`
				Name        string   `yaml:"name"`
				Description string   `yaml:"description"`
				References  []string `yaml:"references"`
				RegexType   string   `yaml:"regex_type"`
			}
			if err := v.Decode(&raw); err != nil {
				return nil, bad(v, "policy: %v", err)
			}
			p.ID, p.File, p.Name, p.Description, p.References, p.RegexType = raw.ID, raw.File, raw.Name, raw.Description, raw.References, raw.RegexType
		case "requirements":
			var r Requirements
			if err := v.Decode(&r); err != nil {
				return nil, bad(v, "requirements: %v", err)
			}
			if len(r.Rules) == 0 {
				return nil, bad(v, "requirements: no rules")
			}
			if len(r.Rules) > MaxRules {
				return nil, bad(v, "requirements: %d rules, more than %d", len(r.Rules), MaxRules)
			}
			p.Requirements = &r
		case "variables":
			if v.Kind != yaml.MappingNode {
				return nil, bad(v, "variables: want a mapping of $name: value")
			}
			if len(v.Content)/2 > MaxVariables {
				return nil, bad(v, "variables: more than %d", MaxVariables)
			}
			p.Variables = map[string]string{}
			for j := 0; j+1 < len(v.Content); j += 2 {
				name, val := v.Content[j], v.Content[j+1]
				if !strings.HasPrefix(name.Value, "$") || len(name.Value) < 2 {
					return nil, bad(name, "variables: name %q does not start with $", name.Value)
				}
				s, err := scalarOrList(val)
				if err != nil {
					return nil, bad(val, "variables: %s: %v", name.Value, err)
				}
				p.Variables[name.Value] = s
			}
		case "checks":
			checksNode = v
		default:
			// Unknown top-level sections are ignored, as Wazuh does.
		}
	}
	if policyNode == nil {
		return nil, bad(root, "no policy section")
	}
	if p.ID == "" {
		return nil, bad(policyNode, "policy: no id")
	}
	switch p.RegexType {
	case "", "pcre2", "osregex":
	default:
		return nil, bad(policyNode, "policy: regex_type %q: want pcre2 or osregex", p.RegexType)
	}
	if p.RegexType == "" {
		// Wazuh's SCA module uses OS_Regex when the header names no engine
		// (wm_sca.c: "The OS_REGEX engine shall be used"), and its public
		// CIS policies are written for it (\. is any character there).
		p.RegexType = "osregex"
	}
	if checksNode == nil {
		return nil, bad(root, "no checks section")
	}
	if checksNode.Kind != yaml.SequenceNode {
		return nil, bad(checksNode, "checks: want a list")
	}
	if len(checksNode.Content) > MaxChecks {
		return nil, bad(checksNode, "%d checks, more than %d", len(checksNode.Content), MaxChecks)
	}
	seen := map[int64]int{}
	for _, cn := range checksNode.Content {
		c, err := decodeCheck(cn)
		if err != nil {
			return nil, bad(cn, "check: %v", err)
		}
		if first, dup := seen[c.ID]; dup {
			return nil, bad(cn, "check %d: the same id as the check at line %d", c.ID, first)
		}
		seen[c.ID] = c.Line
		p.Checks = append(p.Checks, c)
	}
	return p, nil
}

// decodeCheck reads one check. Its id and title are required; a missing
// condition or rules is left for evaluation to report.
func decodeCheck(n *yaml.Node) (Check, error) {
	var raw struct {
		ID          yaml.Node   `yaml:"id"`
		Title       string      `yaml:"title"`
		Description string      `yaml:"description"`
		Rationale   string      `yaml:"rationale"`
		Impact      string      `yaml:"impact"`
		Remediation string      `yaml:"remediation"`
		References  []string    `yaml:"references"`
		Compliance  yaml.Node   `yaml:"compliance"`
		Condition   string      `yaml:"condition"`
		Rules       []yaml.Node `yaml:"rules"`
		RegexType   string      `yaml:"regex_type"`
	}
	if n.Kind != yaml.MappingNode {
		return Check{}, errors.New("want a mapping")
	}
	if err := n.Decode(&raw); err != nil {
		return Check{}, err
	}
	c := Check{Title: raw.Title, Description: raw.Description, Rationale: raw.Rationale, Impact: raw.Impact,
		Remediation: raw.Remediation, References: raw.References, Condition: raw.Condition, RegexType: raw.RegexType, Line: n.Line}
	if raw.ID.Kind == 0 {
		return c, errors.New("no id")
	}
	id, err := strconv.ParseInt(raw.ID.Value, 10, 64)
	if err != nil || raw.ID.Kind != yaml.ScalarNode {
		return c, fmt.Errorf("id %.40q is not an integer", raw.ID.Value)
	}
	c.ID = id
	if c.Title == "" {
		return c, fmt.Errorf("%d: no title", id)
	}
	if len(raw.Rules) > MaxRules {
		return c, fmt.Errorf("%d: %d rules, more than %d", id, len(raw.Rules), MaxRules)
	}
	for _, r := range raw.Rules {
		if r.Kind != yaml.ScalarNode {
			return c, fmt.Errorf("%d: line %d: a rule must be a string", id, r.Line)
		}
		if len(r.Value) > MaxRuleBytes {
			return c, fmt.Errorf("%d: line %d: rule longer than %d bytes", id, r.Line, MaxRuleBytes)
		}
		c.Rules = append(c.Rules, r.Value)
	}
	if raw.Compliance.Kind != 0 {
		if c.Compliance, err = decodeCompliance(&raw.Compliance); err != nil {
			return c, fmt.Errorf("%d: compliance: %v", id, err)
		}
	}
	return c, nil
}

// decodeCompliance accepts Wazuh's list of one-key mappings
// (`- cis: ["1.1"]`) and a plain mapping; values may be a list or a scalar.
func decodeCompliance(n *yaml.Node) (map[string][]string, error) {
	out := map[string][]string{}
	add := func(m *yaml.Node) error {
		if m.Kind != yaml.MappingNode {
			return fmt.Errorf("line %d: want framework: [controls]", m.Line)
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i].Value, m.Content[i+1]
			switch v.Kind {
			case yaml.ScalarNode:
				out[k] = append(out[k], v.Value)
			case yaml.SequenceNode:
				for _, e := range v.Content {
					if e.Kind != yaml.ScalarNode {
						return fmt.Errorf("line %d: %s: want strings", e.Line, k)
					}
					out[k] = append(out[k], e.Value)
				}
			default:
				return fmt.Errorf("line %d: %s: want a list of controls", v.Line, k)
			}
		}
		return nil
	}
	switch n.Kind {
	case yaml.SequenceNode:
		for _, m := range n.Content {
			if err := add(m); err != nil {
				return nil, err
			}
		}
	case yaml.MappingNode:
		if err := add(n); err != nil {
			return nil, err
		}
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil, nil
		}
		return nil, fmt.Errorf("line %d: want a list", n.Line)
	default:
		return nil, fmt.Errorf("line %d: want a list", n.Line)
	}
	return out, nil
}

// scalarOrList returns a variable's value: a scalar as written, a list
// joined with commas (the form Wazuh's file lists take).
func scalarOrList(n *yaml.Node) (string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value, nil
	case yaml.SequenceNode:
		parts := make([]string, 0, len(n.Content))
		for _, e := range n.Content {
			if e.Kind != yaml.ScalarNode {
				return "", errors.New("want strings")
			}
			parts = append(parts, e.Value)
		}
		return strings.Join(parts, ","), nil
	}
	return "", errors.New("want a string or a list of strings")
}

// checkDepth refuses documents nested deeper than any policy needs (and
// alias bombs, which the YAML decoder already bounds, cannot go deep).
func checkDepth(n *yaml.Node, d int) error {
	if d > 32 {
		return errors.New("nested more than 32 levels")
	}
	for _, c := range n.Content {
		if err := checkDepth(c, d+1); err != nil {
			return err
		}
	}
	return nil
}

func invalidAt(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// Frameworks returns the compliance framework names used by the policy's
// checks, sorted.
func (p *Policy) Frameworks() []string {
	set := map[string]bool{}
	for _, c := range p.Checks {
		for k := range c.Compliance {
			set[k] = true
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
