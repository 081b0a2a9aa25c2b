package sigma

import (
	"testing"

	"github.com/vigil-edr/vigil/internal/event"
)

// FuzzParseFile feeds arbitrary bytes to the rule loader and compiler, and
// runs whatever compiles against a small event: nothing may panic or hang.
func FuzzParseFile(f *testing.F) {
	f.Add([]byte(ruleWith("sel:\n  Image|endswith: '\\cmd.exe'\ncondition: sel")))
	f.Add([]byte(ruleWith("sel:\n  CommandLine|windash|contains|all:\n    - ' -a'\n    - '/b'\nfilter:\n  User: null\ncondition: sel and not filter")))
	f.Add([]byte(ruleWith("k:\n  - 'x*y?z'\n  - 5\ncondition: 1 of them")))
	f.Add([]byte("title: c\ncorrelation:\n  type: value_count\n  rules: [a]\n  group-by: [x]\n  timespan: 5m\n  condition: {field: y, gte: 3}\n"))
	f.Add([]byte("title: f\nlogsource: {product: x}\nfilter:\n  rules: [a]\n  selection: {U|startswith: adm}\n  condition: selection\n"))
	f.Add([]byte("[[[[{{{{"))
	f.Add([]byte("a: &x [*x, *x]\n"))
	e := &event.Event{Product: "test"}
	e.Add("Image", "C:\\Windows\\cmd.exe")
	e.Add("CommandLine", "cmd /c -a /b")
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, _ := ParseFile("fuzz.yml", data)
		eng, _ := NewEngine(rules, Options{})
		eng.NewMatcher().Match(e)
	})
}

// FuzzCondition parses arbitrary condition strings against fixed identifiers.
func FuzzCondition(f *testing.F) {
	for _, s := range []string{
		"sel", "sel and not filter", "1 of sel_* and not 1 of filter_*", "all of them",
		"(a or (b and not c))", "2 of them", "sel | count() by x > 5", "not not not sel", "((((", "any of s*",
	} {
		f.Add(s)
	}
	names := []string{"sel", "filter", "sel_a", "sel_b", "filter_x", "a", "b", "c", "_hidden"}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCondition(s, names)
		if err == nil && c == nil {
			t.Fatal("no error and no condition")
		}
	})
}
