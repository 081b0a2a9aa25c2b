package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/audit"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/wire"
)

// TestServerCaseFromAlert: an agent's event becomes an alert, an analyst's
// case is opened from it through the API, marked as a personal-data breach,
// and its report is exported in Paris time; the case's changes are in the
// server's audit log, whose chain verifies.
func TestServerCaseFromAlert(t *testing.T) {
	s, admin := testServer(t, corpusLinuxRules(t))
	c := enrolAgent(t, s, admin, "web-01")
	ev := &event.Event{Product: "linux", Categories: []string{"process_creation"}, Time: time.Now().UTC()}
	ev.Add("Image", "/usr/bin/base64")
	ev.Add("CommandLine", "base64 -d /tmp/.x | bash <script>alert(1)</script>")
	ev.Add("ParentImage", "/usr/bin/bash")
	ev.Add("User", "www-data")
	send(t, c, &wire.Batch{Version: wire.Version, BootEpoch: 1, Events: []wire.Event{wire.FromEvent(1, ev)}})

	var alerts struct {
		Items []struct {
			ID        int64  `json:"id"`
			RuleTitle string `json:"rule_title"`
		} `json:"items"`
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(alerts.Items) == 0 {
		if code := api(t, s, admin, "GET", "/api/v1/alerts?host=web-01", nil, &alerts); code != 200 {
			t.Fatalf("list alerts: %d", code)
		}
		if time.Now().After(deadline) {
			t.Fatal("no alert within 5 s")
		}
		time.Sleep(25 * time.Millisecond)
	}
	var cs struct {
		ID        int64 `json:"id"`
		Deadlines []struct {
			Notice string `json:"notice"`
			State  string `json:"state"`
		} `json:"deadlines"`
	}
	if code := api(t, s, admin, "POST", "/api/v1/cases", map[string]any{"title": "base64 to bash on web-01",
		"alert_ids": []int64{alerts.Items[0].ID}}, &cs); code != 201 {
		t.Fatalf("create case: %d", code)
	}
	path := fmt.Sprintf("/api/v1/cases/%d", cs.ID)
	if code := api(t, s, admin, "PATCH", path, map[string]any{"personal_data_breach": true}, &cs); code != 200 ||
		len(cs.Deadlines) != 1 || cs.Deadlines[0].Notice != "gdpr_authority" || cs.Deadlines[0].State != "due" {
		t.Fatalf("mark breach: %d %+v", code, cs)
	}

	req, _ := http.NewRequest("GET", "https://"+s.Addr().String()+path+"/report?tz=Europe/Paris", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.auth.CAPool(), ServerName: "127.0.0.1"}}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	out := string(body)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") ||
		!strings.Contains(out, alerts.Items[0].RuleTitle) || !strings.Contains(out, "Europe/Paris") ||
		!strings.Contains(out, "GDPR Art. 33(1)") || strings.Contains(out, "<script>alert(1)") {
		t.Fatalf("report: %d %v\n%.400s", resp.StatusCode, resp.Header, out)
	}

	es, err := s.db.AuditEntries(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range es {
		if e.Target == fmt.Sprintf("case:%d", cs.ID) {
			actions = append(actions, e.Action)
		}
	}
	if strings.Join(actions, " ") != "case.created case.alerts_added case.flag api.cases.report.get" { // the report download is audited
		t.Errorf("audit actions for the case: %v", actions)
	}
	if _, err := audit.Verify(t.Context(), s.db, nil); err != nil {
		t.Errorf("audit chain: %v", err)
	}
}
