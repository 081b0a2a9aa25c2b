// Package rules_test checks Vigil's own rule pack: every rule loads, carries
// ATT&CK tags, a description and false-positive notes where it can be noisy,
// and has a test case file in tests/ with events it must and must not match.
package rules_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	Match   []map[string]string `json:"match"`
	NoMatch []map[string]string `json:"nomatch"`
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
		if r.Kind == sigma.KindDetection && !generatesOnlyForCorrelation(r, rules) {
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
		if len(tc.Match) == 0 || len(tc.NoMatch) == 0 {
			t.Errorf("%s: needs at least one match and one nomatch case", f)
		}
		tested[tc.Rule] = true
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
