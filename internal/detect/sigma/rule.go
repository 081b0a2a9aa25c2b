package sigma

import (
	"fmt"
	"strings"
	"time"
)

// Level is a rule's severity, ordered from informational to critical.
type Level int

// Levels in increasing severity. LevelUnknown sorts below everything.
const (
	LevelUnknown Level = iota
	LevelInformational
	LevelLow
	LevelMedium
	LevelHigh
	LevelCritical
)

var levelNames = [...]string{"unknown", "informational", "low", "medium", "high", "critical"}

func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return "unknown"
}

// ParseLevel reads a level name ("high", "critical", …).
func ParseLevel(s string) (Level, error) {
	for i, n := range levelNames {
		if strings.EqualFold(s, n) {
			return Level(i), nil
		}
	}
	return LevelUnknown, fmt.Errorf("unknown level %q (want informational, low, medium, high or critical)", s)
}

// Kind tells what a Sigma document is.
type Kind int

// Document kinds.
const (
	KindDetection Kind = iota
	KindCorrelation
	KindFilter
)

// Logsource is where a rule's events come from.
type Logsource struct {
	Product    string
	Category   string
	Service    string
	Definition string
}

// Rule is one parsed Sigma document: a detection rule, a correlation rule or a
// filter. Rules are immutable once parsed.
type Rule struct {
	Kind        Kind
	Path        string // file the rule came from
	Line        int    // line of the document's first key
	ID          string
	Name        string
	Title       string
	Description string
	Status      string
	Author      string
	Level       Level
	Tags        []string
	References  []string
	Logsource   Logsource

	// Detection is set for KindDetection.
	Detection *Detection
	// Correlation is set for KindCorrelation.
	Correlation *Correlation
	// Filter is set for KindFilter.
	Filter *Filter
}

// Ref names the rule for messages: its id, else its name, else its title.
func (r *Rule) Ref() string {
	switch {
	case r.ID != "":
		return r.ID
	case r.Name != "":
		return r.Name
	}
	return r.Title
}

// Detection is a rule's detection section: named search identifiers and the
// condition that combines them.
type Detection struct {
	Searches  map[string]*Search
	Order     []string // search identifiers in file order, for "them" and patterns
	Condition []string // several conditions are OR-ed, as the specification says
	CondLine  int
}

// Search is one search identifier: a map (AND of field matches), a list of
// maps (OR), or a list of keywords (OR).
type Search struct {
	Name string
	Line int
	// Exactly one of Maps and Keywords is set.
	Maps     [][]FieldSpec // OR of ANDs
	Keywords *FieldSpec    // field-less values, OR-ed (or AND-ed with |all)
}

// FieldSpec is one "Field|mod|mod: values" entry.
type FieldSpec struct {
	Field     string   // empty for keyword search
	Modifiers []string // in the order written
	Values    []Value
	Line      int
}

// Value is one value of a FieldSpec.
type Value struct {
	S    string // the value as written (numbers and booleans in YAML text form)
	Null bool   // YAML null
	Num  bool   // written as a YAML number
}

// CorrelationType is the kind of a correlation rule.
type CorrelationType string

// Correlation types of the specification.
const (
	EventCount      CorrelationType = "event_count"
	ValueCount      CorrelationType = "value_count"
	Temporal        CorrelationType = "temporal"
	TemporalOrdered CorrelationType = "temporal_ordered"
	ValueSum        CorrelationType = "value_sum"
	ValueAvg        CorrelationType = "value_avg"
	ValuePercentile CorrelationType = "value_percentile"
)

// Correlation is the correlation section of a correlation rule.
type Correlation struct {
	Type     CorrelationType
	Rules    []string // ids or names of the correlated rules
	GroupBy  []string
	Timespan time.Duration
	// Aliases maps an alias field name to, per rule name or id, the event
	// field that stands for it.
	Aliases   map[string]map[string]string
	Condition []Comparison // AND-ed; empty for temporal types (meaning: all rules seen)
	Field     string       // value_count, value_sum, value_avg, value_percentile
	Generate  bool
}

// Comparison is one criterion of a correlation condition: count OP N.
type Comparison struct {
	Op string // gt, gte, lt, lte, eq, neq
	N  float64
}

// Holds reports whether v satisfies the comparison.
func (c Comparison) Holds(v float64) bool {
	switch c.Op {
	case "gt":
		return v > c.N
	case "gte":
		return v >= c.N
	case "lt":
		return v < c.N
	case "lte":
		return v <= c.N
	case "eq":
		return v == c.N
	case "neq":
		return v != c.N
	}
	return false
}

// Filter is a Sigma global filter: a detection that, when it matches,
// suppresses the matches of the rules it names.
type Filter struct {
	Rules     []string
	Detection *Detection
}
