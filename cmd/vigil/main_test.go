package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func corpus(t *testing.T) string {
	t.Helper()
	c, _ := filepath.Abs("../../../shared/corpus")
	if _, err := os.Stat(c); err != nil {
		t.Skipf("CORPUS MISSING: %s not found; CLI corpus tests skipped", c)
	}
	return c
}

func TestHuntJSONL(t *testing.T) {
	c := corpus(t)
	out, stderr, err := run(t, "hunt", "--format", "jsonl", "--min-level", "medium",
		"--rules", filepath.Join(c, "sigma", "rules", "windows"),
		filepath.Join(c, "evtx", "Credential Access"))
	if err != nil {
		t.Fatalf("hunt: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 5 {
		t.Fatalf("only %d detections on credential-access samples", len(lines))
	}
	for _, l := range lines {
		var d map[string]any
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		for _, k := range []string{"rule_id", "rule_title", "level", "tags", "timestamp", "source", "record_id", "fields"} {
			if _, ok := d[k]; !ok {
				t.Errorf("detection lacks %q: %s", k, l)
			}
		}
		if lvl := d["level"]; lvl == "low" || lvl == "informational" {
			t.Errorf("--min-level medium let through %v", lvl)
		}
	}
	for _, want := range []string{"events/s", "detections", "top rules:"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("summary lacks %q:\n%s", want, stderr)
		}
	}
}

func TestHuntErrors(t *testing.T) {
	if _, _, err := run(t, "hunt", "somewhere"); err == nil || !strings.Contains(err.Error(), "--rules") {
		t.Errorf("hunt without rules: err = %v", err)
	}
	if _, _, err := run(t, "hunt", "--rules", "testdata/bad_rules/good.yml", "--min-level", "severe", "x"); err == nil {
		t.Error("bad --min-level accepted")
	}
	if _, _, err := run(t, "hunt", "--rules", "testdata/bad_rules/good.yml", "does/not/exist"); err == nil {
		t.Error("missing input path accepted")
	}
	// Nothing found is still a successful hunt.
	if _, _, err := run(t, "hunt", "--rules", "testdata/bad_rules/good.yml", "testdata/bad_rules/good.yml"); err != nil {
		t.Errorf("hunt that finds nothing failed: %v", err)
	}
}

func TestLintJSON(t *testing.T) {
	out, _, err := run(t, "rules", "lint", "--format", "json", "testdata/bad_rules")
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("lint with rejected rules: err = %v, want exit status 1", err)
	}
	var res struct {
		Loaded   int `json:"loaded"`
		Rejected []struct {
			Path   string `json:"path"`
			Line   int    `json:"line"`
			Reason string `json:"reason"`
		} `json:"rejected"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.Loaded != 1 || len(res.Rejected) != 2 {
		t.Fatalf("loaded %d rejected %d, want 1 and 2: %s", res.Loaded, len(res.Rejected), out)
	}
	for _, r := range res.Rejected {
		if r.Path == "" || r.Reason == "" || r.Line == 0 {
			t.Errorf("rejection without path, line or reason: %+v", r)
		}
	}
	if !strings.Contains(out, "RE2 does not support") {
		t.Errorf("look-ahead rejection does not name the construct: %s", out)
	}
}

func TestRulesTestCorpus(t *testing.T) {
	c := corpus(t)
	out, _, err := run(t, "rules", "test", filepath.Join(c, "sigma"))
	// One upstream case disagrees with its own rule (see hunt's
	// upstreamMismatch), so the command reports one failing rule on both
	// renderings and exits 1.
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("rules test: err = %v", err)
	}
	if !strings.Contains(out, "194 passed, 2 failed") {
		t.Errorf("summary line: %s", out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	}
}
