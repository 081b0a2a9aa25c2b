package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/agent"
	"github.com/vigil-edr/vigil/internal/atomics"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/testkit"
)

// `vigil validate atomics` end to end on this host: a real server, the
// in-process agent with its kernel audit and fanotify sensors, and a small
// set of safe corpus atomics. Each test must come out as expected: read
// /etc/shadow with shell builtins (detected through the test shell's
// command line), write a cron file (detected from the file event of a
// process descending from the test's shell), run hostname (runs, no rule
// covers it) and a reboot (refused).
func TestValidateAtomicsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("heavy: runs in the integration step of scripts/test.sh")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: kernel audit, fanotify, network namespaces")
	}
	dir := testkit.Corpus(t, "atomics")
	s, _ := testServer(t)
	url := "https://" + s.Addr().String()
	acfg, err := enrolLocalAgent(context.Background(), s, url)
	if err != nil {
		t.Fatal(err)
	}
	acfg.Sensors.AuthLog, acfg.Sensors.Inventory = false, false
	acfg.Sensors.FIMPaths = []string{"/etc/cron.d"}
	acfg.HealthEvery = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	agentDone := make(chan error, 1)
	go func() { agentDone <- agent.RunHost(ctx, acfg, s.cfg.Logger, agent.HostOptions{Shared: true}) }()
	defer func() { cancel(); <-agentDone }()
	waitFIM(t, s)

	var out, errOut bytes.Buffer
	cfg := validateConfig{
		Dir: dir, Yes: true, Server: url, Data: s.cfg.Data, Format: "json", Timeout: 20 * time.Second, Settle: 20 * time.Second,
		Techniques: []string{"T1003.008#5", "T1053.003#3", "T1082#3", "T1082#8", "T1529#3"},
	}
	start := time.Now()
	if err := runValidateAtomics(context.Background(), cfg, &out, &errOut); err != nil {
		t.Fatalf("validate: %v\n%s", err, errOut.String())
	}
	t.Logf("5 atomics validated in %s", time.Since(start).Round(time.Millisecond))
	var rep struct {
		Summary atomics.Summary  `json:"summary"`
		Results []atomics.Result `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	want := map[string]struct {
		status atomics.Status
		rule   string // a detection by this rule title is required
		via    string
	}{
		"T1003.008 #5": {atomics.StatusDetected, "Password hashes read by a command line tool", "session"},
		"T1053.003 #3": {atomics.StatusDetected, "Cron job created or modified", "lineage"},
		// uname -a, cat /etc/os-release, uptime from one shell within
		// seconds: the discovery correlation, through the live pipeline.
		"T1082 #3": {atomics.StatusDetected, "Burst of discovery commands from one shell", "session"},
		// A lone hostname is everyday administration: no alert.
		"T1082 #8": {atomics.StatusNotDetected, "", ""},
		"T1529 #3": {atomics.StatusSkipped, "", ""},
	}
	if len(rep.Results) != len(want) {
		t.Fatalf("%d results, want %d: %s", len(rep.Results), len(want), out.String())
	}
	for _, r := range rep.Results {
		w, ok := want[r.ID()]
		if !ok || r.Status != w.status {
			t.Errorf("%s: %s (%s), want %s", r.ID(), r.Status, r.Detail, w.status)
			continue
		}
		if w.rule != "" && !hasDetection(r.Detections, w.rule, w.via) {
			t.Errorf("%s: detections %+v, want %q via %s", r.ID(), r.Detections, w.rule, w.via)
		}
		if r.Ran && (r.Execution == nil || r.Execution.Test.PID == 0) {
			t.Errorf("%s ran without a recorded shell: %+v", r.ID(), r.Execution)
		}
	}
	if skip := rep.Results[len(rep.Results)-1]; skip.Reason != atomics.ReasonDenied || !strings.Contains(skip.Detail, "shutdown") {
		t.Errorf("T1529 #3 skipped as %q (%s), want the shutdown denylist entry", skip.Reason, skip.Detail)
	}
	if _, err := os.Stat("/etc/cron.d/persistevil"); !os.IsNotExist(err) {
		t.Errorf("the cron test's cleanup did not remove /etc/cron.d/persistevil: %v", err)
	}
	// The viewer token the run created is revoked.
	toks, err := s.db.ListTokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if strings.HasPrefix(tok.ID, "validate-") && !tok.Revoked {
			t.Errorf("validation token %s left valid", tok.ID)
		}
	}
}

func hasDetection(ds []atomics.Detection, title, via string) bool {
	for _, d := range ds {
		if d.RuleTitle == title && d.Via == via {
			return true
		}
	}
	return false
}

// waitFIM waits until the agent's file sensor reports a change in
// /etc/cron.d, so the cron atomic's write cannot be missed at start-up.
func waitFIM(t *testing.T, s *Server) {
	t.Helper()
	probe := filepath.Join("/etc/cron.d", "vigil-validate-probe")
	defer os.Remove(probe)
	deadline := time.Now().Add(20 * time.Second)
	for {
		os.WriteFile(probe, []byte("# vigil validate test probe "+time.Now().String()+"\n"), 0o644)
		time.Sleep(300 * time.Millisecond)
		recs, err := s.db.Search(context.Background(), eventstore.Query{Fields: []eventstore.FieldFilter{{Name: "TargetFilename", Value: probe}}, Limit: 1})
		if err == nil && len(recs) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the file sensor reported no change of %s within 20 s (err %v)", probe, err)
		}
	}
}
