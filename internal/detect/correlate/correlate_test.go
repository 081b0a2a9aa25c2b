package correlate

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vigil-edr/vigil/internal/detect/sigma"
	"github.com/vigil-edr/vigil/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite golden files")

// A case file holds the correlation rules (a Sigma multi-document string) and
// a stream of observations: which base rule matched, when (seconds from the
// start) and with which fields. The golden file lists the hits.
type caseFile struct {
	Rules  string `yaml:"rules"`
	Stream []struct {
		T      float64           `yaml:"t"`
		Rule   string            `yaml:"rule"`
		Fields map[string]string `yaml:"fields"`
	} `yaml:"stream"`
}

type mapFields map[string]string

func (m mapFields) Get(k string) (string, bool) { v, ok := m[k]; return v, ok }

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) < 7 {
		t.Fatalf("found %d cases, want one per correlation type at least", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var cf caseFile
			if err := yaml.Unmarshal(data, &cf); err != nil {
				t.Fatal(err)
			}
			rules, errs := sigma.ParseFile(f, []byte(cf.Rules))
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			e, errs := New(rules, func(string) bool { return true }, Options{MaxGroups: 100})
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			var out strings.Builder
			for i, o := range cf.Stream {
				at := epoch.Add(time.Duration(o.T * float64(time.Second)))
				hits := e.Observe(Observation{RuleName: o.Rule, RuleID: o.Rule, Time: at, Fields: mapFields(o.Fields), Ref: Ref{Record: uint64(i + 1), Time: at, Rule: o.Rule}})
				for _, h := range hits {
					fmt.Fprintf(&out, "t=%g %s value=%g group=%s records=%s\n", at.Sub(epoch).Seconds(), h.Rule.Title, h.Value, groupString(h.GroupBy), refString(h.Refs))
				}
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if out.String() != string(want) {
				t.Errorf("hits differ from %s\ngot:\n%swant:\n%s", golden, out.String(), want)
			}
		})
	}
}

func groupString(g []GroupValue) string {
	var parts []string
	for _, x := range g {
		parts = append(parts, x.Field+":"+x.Value)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func refString(r []Ref) string {
	var ids []string
	for _, x := range r {
		ids = append(ids, fmt.Sprint(x.Record))
	}
	return strings.Join(ids, ",")
}

// The specification's own examples must parse and build.
func TestSpecExamples(t *testing.T) {
	dir := filepath.Join(corpus(t), "sigma-spec", "tests", "schema", "correlation")
	files, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
	if len(files) != 8 {
		t.Fatalf("found %d spec correlation examples, want 8", len(files))
	}
	seen := map[sigma.CorrelationType]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rules, errs := sigma.ParseFile(f, data)
		if len(errs) > 0 || len(rules) != 1 || rules[0].Kind != sigma.KindCorrelation {
			t.Fatalf("%s: rules=%d errs=%v", f, len(rules), errs)
		}
		if _, errs := New(rules, func(string) bool { return true }, Options{}); len(errs) > 0 {
			t.Fatalf("%s: %v", f, errs)
		}
		seen[rules[0].Correlation.Type] = true
	}
	for _, ty := range []sigma.CorrelationType{sigma.EventCount, sigma.ValueCount, sigma.Temporal, sigma.TemporalOrdered, sigma.ValueSum, sigma.ValueAvg, sigma.ValuePercentile} {
		if !seen[ty] {
			t.Errorf("no spec example of %s", ty)
		}
	}
}

func TestUnknownReference(t *testing.T) {
	rules, _ := sigma.ParseFile("c.yml", []byte("title: c\ncorrelation:\n  type: event_count\n  rules: [nope]\n  group-by: [a]\n  timespan: 1m\n  condition: {gte: 1}\n"))
	_, errs := New(rules, func(string) bool { return false }, Options{})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `unknown rule "nope"`) {
		t.Fatalf("errs = %v", errs)
	}
}

func TestBoundedGroups(t *testing.T) {
	rules, _ := sigma.ParseFile("c.yml", []byte("title: c\ncorrelation:\n  type: event_count\n  rules: [r]\n  group-by: [k]\n  timespan: 1h\n  condition: {gte: 1000}\n"))
	e, _ := New(rules, func(string) bool { return true }, Options{MaxGroups: 10})
	for i := 0; i < 100; i++ {
		e.Observe(Observation{RuleID: "r", Time: epoch, Fields: mapFields{"k": fmt.Sprint(i)}})
	}
	s := e.Stats()
	if s.Groups != 10 || s.DroppedGroups != 90 {
		t.Fatalf("stats = %+v, want 10 groups and 90 dropped", s)
	}
	// After the timespan the idle groups are swept and new ones fit again.
	e.Observe(Observation{RuleID: "r", Time: epoch.Add(2 * time.Hour), Fields: mapFields{"k": "new"}})
	if s := e.Stats(); s.Groups != 1 {
		t.Fatalf("after sweep groups = %d, want 1", s.Groups)
	}
}

func corpus(t *testing.T) string {
	t.Helper()
	return testkit.Corpus(t)
}

// Equal process ids on two hosts stay apart when the rule groups by AgentId;
// a field of that name in the event itself wins over the added one.
func TestWithAgent(t *testing.T) {
	rules, errs := sigma.ParseFile("c.yml", []byte("title: c\ncorrelation:\n  type: event_count\n  rules: [r]\n  group-by: [AgentId, ParentProcessId]\n  timespan: 1m\n  condition: {gte: 2}\n"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	e, errs := New(rules, func(string) bool { return true }, Options{})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	obs := func(sec int, f Fields) []Hit {
		return e.Observe(Observation{RuleName: "r", Time: epoch.Add(time.Duration(sec) * time.Second), Fields: f})
	}
	if h := obs(0, WithAgent(mapFields{"ParentProcessId": "100"}, "a")); len(h) != 0 {
		t.Fatalf("first event fired: %+v", h)
	}
	if h := obs(1, WithAgent(mapFields{"ParentProcessId": "100"}, "b")); len(h) != 0 {
		t.Fatalf("same pid on another agent fired: %+v", h)
	}
	if h := obs(2, WithAgent(mapFields{"ParentProcessId": "100", "AgentId": "b"}, "a")); len(h) != 1 || groupString(h[0].GroupBy) != "[AgentId:b,ParentProcessId:100]" {
		t.Fatalf("the event's own AgentId: hits %+v", h)
	}
	if f := WithAgent(mapFields{}, ""); f == nil {
		t.Fatal("nil fields")
	} else if _, ok := f.Get(AgentField); ok {
		t.Fatal("an empty agent added a field")
	}
}
