package sigma

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Limits that keep a hostile rule file from exhausting time or memory. They
// are far above anything a real rule needs (the largest SigmaHQ rule is about
// 40 KiB and 8 levels deep).
const (
	MaxFileSize   = 4 << 20 // bytes in one rule file
	MaxDepth      = 64      // nesting of YAML collections
	MaxDocuments  = 256     // documents in one file
	MaxValues     = 100_000 // values in one rule
	maxValueBytes = 64 << 10
)

// Error is a problem with one rule, safe to show to a user: it names the file,
// the line and what is wrong.
type Error struct {
	Path   string
	Line   int
	Rule   string // id or title, when known
	Reason string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Rule != "" {
		fmt.Fprintf(&b, ": rule %s", e.Rule)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// ErrTooDeep is returned (wrapped in an *Error) for a document nested deeper
// than MaxDepth.
var ErrTooDeep = errors.New("document nested too deeply")

// ParseFile parses every document of one rule file. It returns the rules that
// parsed and one *Error per document that did not; a file-level problem
// (too large, too deep, not YAML) yields no rules and one error.
func ParseFile(path string, data []byte) ([]*Rule, []error) {
	if len(data) > MaxFileSize {
		return nil, []error{&Error{Path: path, Reason: fmt.Sprintf("file is %d bytes, more than the %d allowed", len(data), MaxFileSize)}}
	}
	if line, err := checkDepth(data); err != nil {
		return nil, []error{&Error{Path: path, Line: line, Reason: err.Error()}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var rules []*Rule
	var errs []error
	for n := 0; ; n++ {
		if n >= MaxDocuments {
			errs = append(errs, &Error{Path: path, Reason: fmt.Sprintf("more than %d documents in one file", MaxDocuments)})
			break
		}
		var doc yaml.Node
		err := dec.Decode(&doc)
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, &Error{Path: path, Line: yamlErrLine(err), Reason: "not valid YAML: " + trimYAMLErr(err)})
			break
		}
		if len(doc.Content) == 0 {
			continue
		}
		r, err := parseDocument(path, doc.Content[0])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if r != nil {
			rules = append(rules, r)
		}
	}
	return rules, errs
}

// checkDepth rejects documents nested more than MaxDepth levels before the
// YAML decoder sees them: block nesting by indentation, flow nesting by
// brackets. It is a linear scan that understands just enough YAML (quoted
// scalars, comments, where a bracket can open a flow collection) not to
// mistake a bracket inside a value for nesting.
func checkDepth(data []byte) (int, error) {
	line, flow := 1, 0
	var indents []int // stack of block indentation levels
	atLineStart, indent := true, 0
	inQuote := byte(0)
	prev := byte('\n') // previous significant byte, for "can a scalar start here?"
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inQuote != 0 {
			switch {
			case c == '\n':
				line++
			case c == '\\' && inQuote == '"':
				i++
			case c == inQuote:
				if inQuote == '\'' && i+1 < len(data) && data[i+1] == '\'' {
					i++ // '' is an escaped quote
					continue
				}
				inQuote, prev = 0, 'x'
			}
			continue
		}
		if c == '\n' {
			line++
			atLineStart, indent, prev = true, 0, '\n'
			continue
		}
		if atLineStart {
			if c == ' ' || c == '-' && i+1 < len(data) && data[i+1] == ' ' {
				indent++
				continue
			}
			atLineStart = false
			if c != '#' && c != '\r' && flow == 0 {
				for len(indents) > 0 && indents[len(indents)-1] >= indent {
					indents = indents[:len(indents)-1]
				}
				indents = append(indents, indent)
				if len(indents) > MaxDepth {
					return line, fmt.Errorf("%w: more than %d levels of indentation", ErrTooDeep, MaxDepth)
				}
			}
		}
		scalarStart := prev == '\n' || prev == ':' || prev == '-' || prev == ',' || prev == '[' || prev == '{' || prev == '?'
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			continue // keeps prev
		case (c == '"' || c == '\'') && scalarStart:
			inQuote = c
		case c == '#' && (prev == '\n' || i > 0 && (data[i-1] == ' ' || data[i-1] == '\t')):
			for i+1 < len(data) && data[i+1] != '\n' {
				i++
			}
			continue
		case (c == '[' || c == '{') && (flow > 0 || scalarStart):
			flow++
			if flow+len(indents) > MaxDepth {
				return line, fmt.Errorf("%w: more than %d levels of nesting", ErrTooDeep, MaxDepth)
			}
		case (c == ']' || c == '}') && flow > 0:
			flow--
		}
		prev = c
	}
	return 0, nil
}

func yamlErrLine(err error) int {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return 0
	}
	s := err.Error()
	if i := strings.Index(s, "line "); i >= 0 {
		j := i + 5
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		n, _ := strconv.Atoi(s[i+5 : j])
		return n
	}
	return 0
}

func trimYAMLErr(err error) string {
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

type docParser struct {
	path   string
	rule   string
	values int
}

func (p *docParser) errf(n *yaml.Node, format string, args ...any) *Error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &Error{Path: p.path, Line: line, Rule: p.rule, Reason: fmt.Sprintf(format, args...)}
}

func parseDocument(path string, root *yaml.Node) (*Rule, error) {
	p := &docParser{path: path}
	if root.Kind != yaml.MappingNode {
		return nil, p.errf(root, "a rule must be a YAML mapping, found %s", kindName(root))
	}
	r := &Rule{Path: path, Line: root.Line}
	var detection, correlation, filter, logsource *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		var err error
		switch k.Value {
		case "title":
			r.Title, err = p.str(v)
		case "id":
			r.ID, err = p.str(v)
		case "name":
			r.Name, err = p.str(v)
		case "description":
			r.Description, err = p.str(v)
		case "status":
			r.Status, err = p.str(v)
		case "author":
			r.Author, err = p.str(v)
		case "level":
			var s string
			if s, err = p.str(v); err == nil && s != "" {
				if r.Level, err = ParseLevel(s); err != nil {
					err = p.errf(v, "%v", err)
				}
			}
		case "tags":
			r.Tags, err = p.strList(v)
		case "references":
			r.References, err = p.strList(v)
		case "logsource":
			logsource = v
		case "detection":
			detection = v
		case "correlation":
			correlation = v
		case "filter":
			filter = v
		case "action":
			if v.Value == "global" || v.Value == "reset" || v.Value == "repeat" {
				return nil, p.errf(k, "action: %s (Sigma v1 rule collections) is not part of Sigma v2; split the file into complete rules", v.Value)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	p.rule = r.Ref()
	if r.Title == "" {
		return nil, p.errf(root, "missing title")
	}
	if logsource != nil {
		ls, err := p.logsource(logsource)
		if err != nil {
			return nil, err
		}
		r.Logsource = ls
	}
	var err error
	switch {
	case correlation != nil:
		r.Kind = KindCorrelation
		r.Correlation, err = p.correlation(correlation)
	case filter != nil:
		r.Kind = KindFilter
		r.Filter, err = p.filter(filter)
	case detection != nil:
		r.Kind = KindDetection
		if logsource == nil {
			return nil, p.errf(root, "missing logsource")
		}
		r.Detection, err = p.detection(detection, false)
	default:
		return nil, p.errf(root, "no detection, correlation or filter section")
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a scalar"
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

func (p *docParser) str(n *yaml.Node) (string, error) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode {
		return "", p.errf(n, "expected a scalar, found %s", kindName(n))
	}
	if n.Tag == "!!null" {
		return "", nil
	}
	return n.Value, nil
}

func (p *docParser) strList(n *yaml.Node) ([]string, error) {
	if n.Kind == yaml.ScalarNode {
		s, err := p.str(n)
		if s == "" {
			return nil, err
		}
		return []string{s}, err
	}
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, "expected a list, found %s", kindName(n))
	}
	out := make([]string, 0, len(n.Content))
	for _, c := range n.Content {
		s, err := p.str(c)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (p *docParser) logsource(n *yaml.Node) (Logsource, error) {
	var ls Logsource
	if n.Kind != yaml.MappingNode {
		return ls, p.errf(n, "logsource must be a mapping, found %s", kindName(n))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		s, err := p.str(v)
		if err != nil {
			return ls, err
		}
		switch k.Value {
		case "product":
			ls.Product = strings.ToLower(s)
		case "category":
			ls.Category = strings.ToLower(s)
		case "service":
			ls.Service = strings.ToLower(s)
		case "definition":
			ls.Definition = s
		}
	}
	return ls, nil
}

func (p *docParser) detection(n *yaml.Node, isFilter bool) (*Detection, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, "detection must be a mapping, found %s", kindName(n))
	}
	d := &Detection{Searches: map[string]*Search{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "condition":
			d.CondLine = v.Line
			if v.Kind == yaml.SequenceNode {
				for _, c := range v.Content {
					s, err := p.str(c)
					if err != nil {
						return nil, err
					}
					d.Condition = append(d.Condition, s)
				}
			} else {
				s, err := p.str(v)
				if err != nil {
					return nil, err
				}
				d.Condition = []string{s}
			}
		case "timeframe":
			return nil, p.errf(k, "timeframe belongs to Sigma v1 aggregations; write a correlation rule instead")
		default:
			if _, dup := d.Searches[k.Value]; dup {
				return nil, p.errf(k, "search identifier %q defined twice", k.Value)
			}
			s, err := p.search(k.Value, v)
			if err != nil {
				return nil, err
			}
			d.Searches[k.Value] = s
			d.Order = append(d.Order, k.Value)
		}
	}
	if len(d.Condition) == 0 {
		if isFilter && len(d.Searches) == 1 {
			d.Condition = []string{d.Order[0]}
		} else {
			return nil, p.errf(n, "detection has no condition")
		}
	}
	if len(d.Searches) == 0 {
		return nil, p.errf(n, "detection has no search identifiers")
	}
	return d, nil
}

func (p *docParser) search(name string, n *yaml.Node) (*Search, error) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	s := &Search{Name: name, Line: n.Line}
	switch n.Kind {
	case yaml.MappingNode:
		m, err := p.fieldMap(n)
		if err != nil {
			return nil, err
		}
		s.Maps = [][]FieldSpec{m}
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			return nil, p.errf(n, "search identifier %q is an empty list", name)
		}
		kw := &FieldSpec{Line: n.Line}
		for _, c := range n.Content {
			if c.Kind == yaml.AliasNode && c.Alias != nil {
				c = c.Alias
			}
			switch c.Kind {
			case yaml.MappingNode:
				m, err := p.fieldMap(c)
				if err != nil {
					return nil, err
				}
				s.Maps = append(s.Maps, m)
			case yaml.ScalarNode:
				v, err := p.value(c)
				if err != nil {
					return nil, err
				}
				kw.Values = append(kw.Values, v)
			default:
				return nil, p.errf(c, "search identifier %q: list items must be maps or values, found %s", name, kindName(c))
			}
		}
		if len(kw.Values) > 0 {
			if len(s.Maps) > 0 {
				// A list mixing maps and keywords: the keywords become one more OR-ed map.
				s.Maps = append(s.Maps, []FieldSpec{*kw})
			} else {
				s.Keywords = kw
			}
		}
	case yaml.ScalarNode:
		v, err := p.value(n)
		if err != nil {
			return nil, err
		}
		s.Keywords = &FieldSpec{Line: n.Line, Values: []Value{v}}
	default:
		return nil, p.errf(n, "search identifier %q has an unusable value", name)
	}
	return s, nil
}

func (p *docParser) fieldMap(n *yaml.Node) ([]FieldSpec, error) {
	specs := make([]FieldSpec, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, p.errf(k, "field name must be a scalar")
		}
		parts := strings.Split(k.Value, "|")
		fs := FieldSpec{Field: strings.TrimSpace(parts[0]), Line: k.Line}
		for _, m := range parts[1:] {
			fs.Modifiers = append(fs.Modifiers, strings.TrimSpace(m))
		}
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		switch v.Kind {
		case yaml.SequenceNode:
			if len(v.Content) == 0 {
				return nil, p.errf(v, "field %q has an empty list of values", fs.Field)
			}
			for _, c := range v.Content {
				if c.Kind == yaml.AliasNode && c.Alias != nil {
					c = c.Alias
				}
				if c.Kind != yaml.ScalarNode {
					return nil, p.errf(c, "field %q: values must be scalars, found %s", fs.Field, kindName(c))
				}
				val, err := p.value(c)
				if err != nil {
					return nil, err
				}
				fs.Values = append(fs.Values, val)
			}
		case yaml.ScalarNode:
			val, err := p.value(v)
			if err != nil {
				return nil, err
			}
			fs.Values = []Value{val}
		default:
			return nil, p.errf(v, "field %q: value must be a scalar or a list, found %s", fs.Field, kindName(v))
		}
		specs = append(specs, fs)
	}
	if len(specs) == 0 {
		return nil, p.errf(n, "empty map in detection")
	}
	return specs, nil
}

func (p *docParser) value(n *yaml.Node) (Value, error) {
	p.values++
	if p.values > MaxValues {
		return Value{}, p.errf(n, "more than %d values in one rule", MaxValues)
	}
	if len(n.Value) > maxValueBytes {
		return Value{}, p.errf(n, "value of %d bytes is longer than the %d allowed", len(n.Value), maxValueBytes)
	}
	switch n.Tag {
	case "!!null":
		return Value{Null: true}, nil
	case "!!int", "!!float":
		return Value{S: n.Value, Num: true}, nil
	}
	return Value{S: n.Value}, nil
}

func (p *docParser) filter(n *yaml.Node) (*Filter, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, "filter must be a mapping, found %s", kindName(n))
	}
	f := &Filter{}
	det := &yaml.Node{Kind: yaml.MappingNode, Line: n.Line}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "rules" {
			var err error
			if f.Rules, err = p.strList(v); err != nil {
				return nil, err
			}
			continue
		}
		det.Content = append(det.Content, k, v)
	}
	if len(f.Rules) == 0 {
		return nil, p.errf(n, "filter names no rules")
	}
	var err error
	f.Detection, err = p.detection(det, true)
	return f, err
}

func (p *docParser) correlation(n *yaml.Node) (*Correlation, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, "correlation must be a mapping, found %s", kindName(n))
	}
	c := &Correlation{}
	var haveTimespan bool
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var err error
		switch k.Value {
		case "type":
			var s string
			s, err = p.str(v)
			c.Type = CorrelationType(s)
		case "rules":
			c.Rules, err = p.strList(v)
		case "group-by":
			c.GroupBy, err = p.strList(v)
		case "timespan", "timeframe":
			var s string
			if s, err = p.str(v); err == nil {
				c.Timespan, err = parseTimespan(s)
				if err != nil {
					err = p.errf(v, "%v", err)
				}
				haveTimespan = true
			}
		case "generate":
			var s string
			if s, err = p.str(v); err == nil {
				c.Generate, err = strconv.ParseBool(s)
				if err != nil {
					err = p.errf(v, "generate must be true or false")
				}
			}
		case "aliases":
			c.Aliases, err = p.aliases(v)
		case "condition":
			err = p.corrCondition(c, v)
		}
		if err != nil {
			return nil, err
		}
	}
	switch c.Type {
	case EventCount, ValueCount, ValueSum, ValueAvg, ValuePercentile:
		if len(c.Condition) == 0 {
			return nil, p.errf(n, "%s correlation needs a condition", c.Type)
		}
		if c.Type != EventCount && c.Field == "" {
			return nil, p.errf(n, "%s correlation needs condition.field", c.Type)
		}
	case Temporal, TemporalOrdered:
	case "":
		return nil, p.errf(n, "correlation has no type")
	default:
		return nil, p.errf(n, "unknown correlation type %q", c.Type)
	}
	if len(c.Rules) == 0 {
		return nil, p.errf(n, "correlation names no rules")
	}
	if !haveTimespan {
		return nil, p.errf(n, "correlation has no timespan")
	}
	return c, nil
}

func (p *docParser) corrCondition(c *Correlation, v *yaml.Node) error {
	if v.Kind != yaml.MappingNode {
		return p.errf(v, "correlation condition must be a mapping such as {gte: 10}")
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, x := v.Content[i], v.Content[i+1]
		s, err := p.str(x)
		if err != nil {
			return err
		}
		switch k.Value {
		case "field":
			c.Field = s
		case "gt", "gte", "lt", "lte", "eq", "neq":
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return p.errf(x, "condition %s needs a number, found %q", k.Value, s)
			}
			c.Condition = append(c.Condition, Comparison{Op: k.Value, N: f})
		default:
			return p.errf(k, "unknown correlation condition operator %q", k.Value)
		}
	}
	return nil
}

func (p *docParser) aliases(v *yaml.Node) (map[string]map[string]string, error) {
	if v.Kind != yaml.MappingNode {
		return nil, p.errf(v, "aliases must be a mapping")
	}
	out := map[string]map[string]string{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		alias, m := v.Content[i], v.Content[i+1]
		if m.Kind != yaml.MappingNode {
			return nil, p.errf(m, "alias %q must map rule names to fields", alias.Value)
		}
		per := map[string]string{}
		for j := 0; j+1 < len(m.Content); j += 2 {
			s, err := p.str(m.Content[j+1])
			if err != nil {
				return nil, err
			}
			per[m.Content[j].Value] = s
		}
		out[alias.Value] = per
	}
	return out, nil
}

// parseTimespan reads the specification's "number + unit" form (30s, 5m, 1h,
// 7d); upper-case M and y are accepted for month and year as pySigma does.
func parseTimespan(s string) (time.Duration, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("timespan %q: want a number and a unit (s, m, h, d)", s)
	}
	n, err := strconv.ParseUint(s[:len(s)-1], 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("timespan %q: want a positive whole number before the unit", s)
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 's':
		unit = time.Second
	case 'm':
		unit = time.Minute
	case 'h':
		unit = time.Hour
	case 'd':
		unit = 24 * time.Hour
	case 'w':
		unit = 7 * 24 * time.Hour
	case 'M':
		unit = 30 * 24 * time.Hour
	case 'y':
		unit = 365 * 24 * time.Hour
	default:
		return 0, fmt.Errorf("timespan %q: unknown unit %q (want s, m, h or d)", s, s[len(s)-1:])
	}
	return time.Duration(n) * unit, nil
}
