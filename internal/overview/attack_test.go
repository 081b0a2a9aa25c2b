package overview_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-edr/vigil/internal/overview"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

func TestParseTag(t *testing.T) {
	for _, tc := range []struct {
		tag    string
		tactic string // Tactic.ID
		tech   string
	}{
		{"attack.execution", "TA0002", ""},
		{"ATTACK.Defense_Evasion", "TA0005", ""},
		{"attack.command-and-control", "TA0011", ""},
		{"attack.t1059", "", "T1059"},
		{"attack.T1059.001", "", "T1059"},
		{"attack.t1059.01", "", ""},
		{"attack.t10599", "", ""},
		{"attack.t105x", "", ""},
		{"attack.t1059-001", "", ""},
		{"attack.g0016", "", ""},
		{"attack.s0002", "", ""},
		{"attack.", "", ""},
		{"attack", "", ""},
		{"cve.2021-44228", "", ""},
		{"attack.executionx", "", ""},
		{"attack.exe\xffution", "", ""},
		{"attack.t１０５９", "", ""}, // full-width digits are not digits
	} {
		ta, te := overview.ParseTag(tc.tag)
		gotTactic := ""
		if ta >= 0 {
			gotTactic = overview.Tactics[ta].ID
		}
		if gotTactic != tc.tactic || te != tc.tech {
			t.Errorf("ParseTag(%q) = %q, %q; want %q, %q", tc.tag, gotTactic, te, tc.tactic, tc.tech)
		}
	}
}

// TestBuildMatrix compares the matrix of a set of rules with
// testdata/matrix.golden.json (go test -update rewrites it).
func TestBuildMatrix(t *testing.T) {
	rules := []overview.RuleCount{
		{RuleID: "a", Tags: []string{"attack.execution", "attack.t1059.001", "attack.t1059.003"}, Alerts: 10},
		{RuleID: "b", Tags: []string{"attack.execution", "attack.persistence", "attack.t1053.005"}, Alerts: 3},
		{RuleID: "c", Tags: []string{"attack.t1003"}, Alerts: 2},                  // no tactic: Other
		{RuleID: "d", Tags: []string{"attack.discovery"}, Alerts: 4},              // no technique
		{RuleID: "e", Tags: []string{"attack.impact", "attack.t1486"}, Alerts: 0}, // no alerts
		{RuleID: "f", Tags: []string{"cve.2024-1", "<script>"}, Alerts: 5},        // nothing ATT&CK
	}
	m := overview.BuildMatrix(rules)
	got, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "matrix.golden.json")
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(got)+"\n" {
		t.Errorf("matrix differs from %s (run with -update and review the diff):\n%s", golden, got)
	}
	if m.Max != 10 || len(m.Columns) != len(overview.Tactics)+1 {
		t.Errorf("max %d, columns %d", m.Max, len(m.Columns))
	}
}

func TestHeat(t *testing.T) {
	for _, tc := range []struct {
		n, top int64
		want   int
	}{{0, 10, 0}, {1, 10, 1}, {2, 10, 1}, {5, 10, 2}, {10, 10, 5}, {11, 10, 5}, {3, 0, 0}, {-1, 5, 0}} {
		if got := overview.Heat(tc.n, tc.top); got != tc.want {
			t.Errorf("Heat(%d, %d) = %d, want %d", tc.n, tc.top, got, tc.want)
		}
	}
}

// FuzzParseTag: any tag parses without panicking into a known tactic or a
// well-formed technique id.
func FuzzParseTag(f *testing.F) {
	for _, s := range []string{"attack.execution", "attack.t1059.001", "attack.T1003", "attack.", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		ta, te := overview.ParseTag(tag)
		if ta >= len(overview.Tactics) || ta >= 0 && te != "" {
			t.Fatalf("ParseTag(%q) = %d, %q", tag, ta, te)
		}
		if te != "" && (len(te) != 5 || te[0] != 'T') {
			t.Fatalf("technique %q from %q", te, tag)
		}
		overview.BuildMatrix([]overview.RuleCount{{Tags: []string{tag, tag}, Alerts: 1}})
	})
}
