package web

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/hygiene"
	"github.com/vigil-edr/vigil/internal/sca"
	"github.com/vigil-edr/vigil/internal/vuln"
)

// hygieneFor is the real hygiene service over the backend: SQLite's
// stores where it has them, empty ones otherwise.
func hygieneFor(be backend) Hygiene {
	o := hygiene.Options{Hosts: be, SCA: scaFor(be), Vulns: vulnsFor(be), Alerts: be}
	if st, ok := be.(hygiene.Store); ok {
		o.Store = st
	}
	return hygiene.NewService(o)
}

// TestHygieneAPI: a host with a failed check, a fixable critical finding
// and an open alert in the real store (beside the harness's) is scored with those deductions;
// Snapshot records the point the history then serves; 404, 400 and 401.
func TestHygieneAPI(t *testing.T) {
	h := newHarness(t, backends["sqlite"](t))
	ctx := context.Background()
	at := h.now.Add(-time.Minute)
	must(t, h.be.(sca.Store).AddSCAResults(ctx, h.agentID, []sca.Result{
		{PolicyID: "p", CheckID: 1, ScanID: "s1", ScannedAt: at, Title: "SSH: root login is disabled", Status: "failed",
			Compliance: map[string][]string{"cis_csc_v8": {"5.4"}}},
	}))
	must(t, h.be.(sca.Store).AddSCASummary(ctx, h.agentID, sca.Summary{PolicyID: "p", ScanID: "s1", ScannedAt: at, Failed: 1, Total: 1, Applicable: true}))
	must(t, h.be.(vuln.Store).ReplaceFindings(ctx, h.agentID, vuln.Evaluation{SnapshotID: "snap", Generation: 1, EvaluatedAt: at, Ecosystem: "Debian:12"},
		[]vuln.Finding{{Source: "osv", AdvisoryID: "DSA-1", Package: "openssl", Installed: "1", Fixed: "2", Severity: vuln.Severity{Level: vuln.Critical}, Why: "w"}}))
	must(t, h.be.CreateAlert(ctx, &alert.Alert{RuleID: "r", RuleTitle: "t", Level: "high", Host: "h1", AgentID: h.agentID,
		State: alert.StateNew, Count: 1, FirstSeen: at, LastSeen: at}))

	var host hygiene.HostView
	h.get("/api/v1/hosts/"+h.agentID+"/hygiene", "viewer", &host)
	var texts []string
	lost := 0.0
	for _, d := range host.Deductions {
		texts = append(texts, d.Text)
		lost += d.Points
	}
	// The harness has seeded open alerts of its own (high and low).
	want := "−5: 1 failed high-severity configuration check|−5: 1 critical vulnerability with a fix available|−10: 2 open high alerts|−1: 1 open low alert"
	if strings.Join(texts, "|") != want || host.Score != 79 || lost != 21 || len(host.History) != 0 {
		t.Errorf("host: score %d history %d deductions\n%s\nwant\n%s", host.Score, len(host.History), strings.Join(texts, "|"), want)
	}
	if _, err := hygieneFor(h.be).(*hygiene.Service).Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	var fleet hygiene.FleetView
	h.get("/api/v1/hygiene?history=10", "viewer", &fleet)
	if fleet.Fleet.Score != 79 || len(fleet.Hosts) != 1 || fleet.Hosts[0].AgentID != h.agentID || len(fleet.History) != 1 || fleet.History[0].Score != 79 {
		b, _ := json.Marshal(fleet)
		t.Errorf("fleet %s", b)
	}
	h.get("/api/v1/hosts/"+h.agentID+"/hygiene?history=1", "viewer", &host)
	if len(host.History) != 1 {
		t.Errorf("host history %+v", host.History)
	}
	for _, q := range []string{"", "?host=" + h.agentID + "&tz=Europe/Paris"} {
		st, b, hdr := h.do("GET", "/api/v1/hygiene/report"+q, "viewer", nil)
		if st != 200 || hdr.Get("Content-Security-Policy") != hygiene.ReportCSP || !strings.HasPrefix(hdr.Get("Content-Disposition"), "attachment;") ||
			hdr.Get("Content-Type") != "text/html; charset=utf-8" || !strings.Contains(string(b), "SSH: root login is disabled") {
			t.Errorf("report%s: %d %v", q, st, hdr)
		}
	}
	for path, want := range map[string]int{
		"/api/v1/hygiene/report?host=nobody":                   404,
		"/api/v1/hygiene/report?tz=Mars/Olympus":               400,
		"/api/v1/hosts/nobody/hygiene":                         404,
		"/api/v1/hosts/" + h.agentID + "/hygiene?history=5000": 400,
		"/api/v1/hygiene?history=x":                            400,
		"/api/v1/hygiene?x=1":                                  400,
	} {
		if st, b, _ := h.do("GET", path, "viewer", nil); st != want {
			t.Errorf("%s: %d %s, want %d", path, st, b, want)
		}
	}
	if st, _, _ := h.do("GET", "/api/v1/hygiene", "", nil); st != 401 {
		t.Errorf("anonymous: %d", st)
	}
}
