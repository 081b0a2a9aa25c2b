package hygiene

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the computed result (go test -update rewrites it; review the diff):\n%s", p, got)
	}
}

type scoreCases struct {
	Now   time.Time `json:"now"`
	Cases []struct {
		Name  string `json:"name"`
		Input Input  `json:"input"`
	} `json:"cases"`
}

// TestCompute: each case of testdata/scores.json scored at its "now",
// then the fleet of them summarised and ranked worst first, against
// testdata/scores.golden.json.
func TestCompute(t *testing.T) {
	b, err := os.ReadFile("testdata/scores.json")
	if err != nil {
		t.Fatal(err)
	}
	var cs scoreCases
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cs); err != nil {
		t.Fatal(err)
	}
	type out struct {
		Name  string    `json:"name"`
		Score HostScore `json:"score"`
	}
	var res struct {
		Hosts  []out    `json:"hosts"`
		Ranked []string `json:"ranked"`
		Fleet  Fleet    `json:"fleet"`
	}
	var all []HostScore
	for _, c := range cs.Cases {
		s := Compute(&c.Input, cs.Now)
		lost := 0.0
		for _, d := range s.Deductions {
			lost += d.Points
		}
		if got := 100 - lost; got < float64(s.Score)-0.5 || got > float64(s.Score)+0.5 || s.Score < 0 || s.Score > 100 {
			t.Errorf("%s: score %d but deductions sum to %.1f", c.Name, s.Score, lost)
		}
		res.Hosts = append(res.Hosts, out{c.Name, s})
		all = append(all, s)
	}
	Rank(all)
	for _, s := range all {
		res.Ranked = append(res.Ranked, s.Hostname)
	}
	res.Fleet = Summarise(all)
	got, _ := json.MarshalIndent(res, "", "  ")
	golden(t, "scores.golden.json", append(got, '\n'))
}

// TestKeyIgnoresSilenceLength: a host silent a little longer is the same
// point of history; a new deduction is not.
func TestKeyIgnoresSilenceLength(t *testing.T) {
	in := &Input{}
	in.Agent.ID = "a"
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	in.Agent.LastSeen = now.Add(-3 * time.Hour)
	a := Compute(in, now)
	in.Agent.LastSeen = now.Add(-4 * time.Hour)
	b := Compute(in, now)
	if key(a.Score, a.Deductions) != key(b.Score, b.Deductions) {
		t.Errorf("keys differ: %v / %v", a.Deductions, b.Deductions)
	}
	in.Agent.LastSeen = now.Add(-30 * time.Hour)
	c := Compute(in, now)
	if key(a.Score, a.Deductions) == key(c.Score, c.Deductions) {
		t.Errorf("silent 3 h and 30 h have one key")
	}
}

func TestSummariseEmpty(t *testing.T) {
	if f := Summarise(nil); f.Score != -1 || f.Monitored != 0 {
		t.Errorf("%+v", f)
	}
}
