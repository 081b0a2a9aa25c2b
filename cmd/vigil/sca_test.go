package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/agent"
	"github.com/vigil-edr/vigil/internal/agent/posture"
	"github.com/vigil-edr/vigil/internal/sca"
)

// vigil sca run prints every check of the built-in baselines with a
// status and a reason, in text and JSON.
func TestSCARunCLI(t *testing.T) {
	out, _, err := run(t, "sca", "run", "--policy", "builtin:vigil_debian12", "--policy", "builtin:vigil_ubuntu", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var reps []posture.Report
	if err := json.Unmarshal([]byte(out), &reps); err != nil {
		t.Fatal(err)
	}
	if len(reps) != 2 {
		t.Fatalf("%d reports", len(reps))
	}
	for _, r := range reps {
		if len(r.Results) < 40 || r.Summary.Total != len(r.Results) {
			t.Errorf("%s: %d results, summary %+v", r.PolicyID, len(r.Results), r.Summary)
		}
		for _, res := range r.Results {
			if res.Reason == "" {
				t.Errorf("%s %d: %s without a reason", r.PolicyID, res.CheckID, res.Status)
			}
		}
	}
	dir := t.TempDir()
	pol := filepath.Join(dir, "p.yml")
	os.WriteFile(pol, []byte("policy: {id: cli}\nchecks:\n  - {id: 1, title: echo, condition: all, rules: ['c:echo hello -> hello']}\n"), 0o600)
	out, _, err = run(t, "sca", "run", "--policy", pol)
	if err != nil || !strings.Contains(out, "1  passed") || !strings.Contains(out, "1 passed, 0 failed") {
		t.Errorf("text output %q, %v", out, err)
	}
	out, _, _ = run(t, "sca", "run", "--policy", pol, "--commands=false")
	if !strings.Contains(out, "not_applicable") || !strings.Contains(out, "commands are disabled") {
		t.Errorf("--commands=false: %q", out)
	}
	os.WriteFile(pol, []byte("checks: []\n"), 0o600)
	if _, _, err := run(t, "sca", "run", "--policy", pol); err == nil || !strings.Contains(err.Error(), pol+":1:1: no policy section") {
		t.Errorf("bad policy: %v", err)
	}
}

// The whole SCA path on this host: the agent's SCA sensor runs the
// built-in baselines, its events go through the spool, ingest, the bus and
// the pipeline's recorder into SQLite, and the API serves every check of
// the baseline that applies here with a status and a reason.
func TestLocalAgentSCA(t *testing.T) {
	s, admin := testServer(t)
	url := "https://" + s.Addr().String()
	acfg, err := enrolLocalAgent(context.Background(), s, url)
	if err != nil {
		t.Fatal(err)
	}
	acfg.Sensors.Process, acfg.Sensors.AuthLog, acfg.Sensors.FIM, acfg.Sensors.Network, acfg.Sensors.Inventory = false, false, false, false, false
	acfg.HealthEvery = time.Hour
	id, err := agent.LoadIdentity(acfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	agentDone := make(chan error, 1)
	go func() { agentDone <- agent.RunHost(ctx, acfg, s.cfg.Logger, agent.HostOptions{Shared: true}) }()
	defer func() { cancel(); <-agentDone }()

	var h sca.Host
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st := api(t, s, admin, "GET", "/api/v1/hosts/"+id.AgentID+"/sca", nil, &h); st != 200 {
			t.Fatalf("sca: %d", st)
		}
		if len(h.Policies) == len(posture.BuiltinNames()) {
			done := true
			for _, p := range h.Policies {
				done = done && len(p.Results) == p.Total
			}
			if done {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no complete SCA results within 30 s: %+v", h.Policies)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, p := range h.Policies {
		if p.Total < 40 || len(p.History) != 1 {
			t.Errorf("%s: total %d, history %d", p.PolicyID, p.Total, len(p.History))
		}
		for _, r := range p.Results {
			if r.Reason == "" || (r.Status != sca.StatusPassed && r.Status != sca.StatusFailed && r.Status != sca.StatusNotApplicable) {
				t.Errorf("%s %d: %q %q", p.PolicyID, r.CheckID, r.Status, r.Reason)
			}
		}
		t.Logf("%s: applicable=%v passed=%d failed=%d not_applicable=%d score=%d", p.PolicyID, p.Applicable, p.Passed, p.Failed, p.NotApplicable, p.Score)
	}
	var f sca.Fleet
	if st := api(t, s, admin, "GET", "/api/v1/sca", nil, &f); st != 200 || len(f.Hosts) != len(h.Policies) {
		t.Errorf("fleet: %d %+v", st, f.Hosts)
	}
}
