// Package rules_test checks Vigil's own rule pack: every rule loads, carries
// ATT&CK tags, a description and false-positive notes where it can be noisy,
// and has a test case file in tests/ with events it must and must not match.
//
// A correlation rule's case file holds sequences instead: events, each
// "@after" a duration (default 1s) after the one before, run through the
// detection rules and then the correlation engine, and whether the
// correlation must fire on them.
package rules_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/detect/correlate"
	"github.com/vigil-edr/vigil/internal/detect/sigma"
	"github.com/vigil-edr/vigil/internal/event"
)

type testCase struct {
	Rule      string `json:"rule"`
	Logsource struct {
		Product    string   `json:"product"`
		Services   []string `json:"services"`
		Categories []string `json:"categories"`
	} `json:"logsource"`
	Match     []map[string]string `json:"match"`
	NoMatch   []map[string]string `json:"nomatch"`
	Sequences []sequence          `json:"sequences"`
}

// sequence is a correlation test: the events in order and whether the
// rule must fire.
type sequence struct {
	Fires  bool                `json:"fires"`
	Why    string              `json:"why"`
	Events []map[string]string `json:"events"`
}

func TestRulePack(t *testing.T) {
	rules, errs := sigma.LoadPaths("linux", "windows")
	eng, cerrs := sigma.NewEngine(rules, sigma.Options{})
	for _, err := range append(errs, cerrs...) {
		t.Error(err)
	}
	byID := map[string]*sigma.Rule{}
	for _, r := range rules {
		if r.ID == "" {
			t.Errorf("%s: rule %q has no id", r.Path, r.Title)
		}
		byID[r.ID] = r
		if r.Description == "" || r.Author != "Vigil project" {
			t.Errorf("%s: %q needs a description and the project as author", r.Path, r.Title)
		}
		if (r.Kind == sigma.KindDetection && !generatesOnlyForCorrelation(r, rules)) || r.Kind == sigma.KindCorrelation {
			attack := false
			for _, tag := range r.Tags {
				if strings.HasPrefix(tag, "attack.t") {
					attack = true
				}
			}
			if !attack {
				t.Errorf("%s: %q has no ATT&CK technique tag", r.Path, r.Title)
			}
		}
	}
	// A rule with its own ATT&CK tags alerts by itself: a correlation that
	// refers to it must say generate: true, or its alerts would vanish.
	for _, r := range rules {
		if c, ok := eng.Lookup(r.ID); ok && r.Kind == sigma.KindDetection && len(r.Tags) > 0 && !c.Emit {
			t.Errorf("%s: %q has ATT&CK tags but only feeds a correlation (set generate: true there)", r.Path, r.Title)
		}
	}
	files, _ := filepath.Glob("tests/*.json")
	tested := map[string]bool{}
	m := eng.NewMatcher()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var tc testCase
		if err := json.Unmarshal(data, &tc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if byID[tc.Rule] == nil {
			t.Errorf("%s: no rule %s", f, tc.Rule)
			continue
		}
		tested[tc.Rule] = true
		if byID[tc.Rule].Kind == sigma.KindCorrelation {
			testCorrelation(t, f, tc, rules, m)
			continue
		}
		if len(tc.Match) == 0 || len(tc.NoMatch) == 0 {
			t.Errorf("%s: needs at least one match and one nomatch case", f)
		}
		run := func(fields map[string]string, want bool) {
			ev := &event.Event{Product: tc.Logsource.Product, Services: tc.Logsource.Services, Categories: tc.Logsource.Categories}
			for k, v := range fields {
				ev.Add(k, v)
			}
			got := false
			for _, x := range m.Match(ev) {
				if x.Rule.Rule.ID == tc.Rule {
					got = true
				}
			}
			if got != want {
				t.Errorf("%s (%s): match=%v, want %v for %v", f, byID[tc.Rule].Title, got, want, fields)
			}
		}
		for _, ev := range tc.Match {
			run(ev, true)
		}
		for _, ev := range tc.NoMatch {
			run(ev, false)
		}
	}
	for _, r := range rules {
		if r.Kind == sigma.KindDetection && !tested[r.ID] {
			t.Errorf("%s: rule %q has no test case in tests/", r.Path, r.Title)
		}
		if r.Kind == sigma.KindCorrelation && !tested[r.ID] {
			t.Errorf("%s: correlation %q has no test case in tests/", r.Path, r.Title)
		}
	}
}

// testCorrelation runs each sequence through the detection rules and a fresh
// correlation engine and checks whether tc.Rule fired.
func testCorrelation(t *testing.T, file string, tc testCase, rules []*sigma.Rule, m *sigma.Matcher) {
	t.Helper()
	var fires, quiet bool
	for i, seq := range tc.Sequences {
		corr, errs := correlate.New(rules, nil, correlate.Options{})
		for _, err := range errs {
			t.Fatal(err)
		}
		at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		got := false
		for j, fields := range seq.Events {
			step := time.Second
			ev := &event.Event{Product: tc.Logsource.Product, Services: tc.Logsource.Services, Categories: tc.Logsource.Categories}
			for k, v := range fields {
				if k == "@after" {
					d, err := time.ParseDuration(v)
					if err != nil {
						t.Fatalf("%s: sequence %d event %d: %v", file, i, j, err)
					}
					step = d
					continue
				}
				ev.Add(k, v)
			}
			if j > 0 {
				at = at.Add(step)
			}
			ev.Time = at
			for _, x := range m.Match(ev) {
				r := x.Rule.Rule
				for _, h := range corr.Observe(correlate.Observation{RuleID: r.ID, RuleName: r.Name, Time: at, Fields: ev}) {
					if h.Rule.ID == tc.Rule {
						got = true
					}
				}
			}
		}
		if got != seq.Fires {
			t.Errorf("%s: sequence %d (%s): fired=%v, want %v", file, i, seq.Why, got, seq.Fires)
		}
		fires = fires || seq.Fires
		quiet = quiet || !seq.Fires
	}
	if !fires || !quiet {
		t.Errorf("%s: a correlation needs a sequence that fires and one that does not", file)
	}
}

// generatesOnlyForCorrelation reports whether r exists only to feed a
// correlation rule (its tags live on the correlation).
func generatesOnlyForCorrelation(r *sigma.Rule, all []*sigma.Rule) bool {
	for _, c := range all {
		if c.Kind != sigma.KindCorrelation {
			continue
		}
		for _, ref := range c.Correlation.Rules {
			if ref == r.Name || ref == r.ID {
				return true
			}
		}
	}
	return false
}
