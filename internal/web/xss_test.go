package web

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/testkit"
	"github.com/vigil-edr/vigil/internal/transport"
)

// TestXSSInert puts 200 XSS payloads in every attacker-controlled field of
// stored events, alerts and hosts (command line, file name, user name, host
// name, rule title) and renders every console page: parsed as a browser
// would, no payload became markup, and each appears as text where the page
// shows it. The browser half (nothing ran) is TestConsoleXSS in cmd/vigil.
func TestXSSInert(t *testing.T) {
	h := newHarness(t, newMemStore())
	ctx := context.Background()
	payloads := testkit.XSSPayloads()
	if len(payloads) != 200 {
		t.Fatalf("%d payloads", len(payloads))
	}
	ids := make([]int64, len(payloads))
	now := time.Now().UTC()
	for i, p := range payloads {
		agentID := fmt.Sprintf("agent-x%03d", i)
		must(t, h.be.PutAgent(ctx, transport.Agent{ID: agentID, Hostname: testkit.Printable(p), OS: p, Arch: "amd64",
			Version: p, CertSerial: fmt.Sprint(i), CertNotAfter: now.Add(time.Hour), EnrolledAt: now, LastSeen: now}))
		ev := &event.Event{Time: now.Add(-time.Duration(200-i) * time.Second), Product: "linux", Categories: []string{"process_creation"}}
		ev.Add("Image", "/opt/xss/"+p)
		ev.Add("CommandLine", p)
		ev.Add("TargetFilename", p)
		ev.Add("User", p)
		ev.Add("ProcessId", fmt.Sprint(5000+i))
		ev.Add("ProcessStartTime", p) // the kill form's hidden field
		ev.Add("ParentProcessId", "1")
		ev.Add("ParentImage", p)
		ins, err := h.be.Insert(ctx, []eventstore.Stored{{AgentID: agentID, BootEpoch: 1, Seq: uint64(i + 1), Host: p, Event: ev}})
		must(t, err)
		ids[i], _, err = h.proc.Record(ctx, alert.Finding{RuleID: "xss-" + p, RuleTitle: p, Level: "high", Tags: []string{p},
			Host: p, AgentID: agentID, Time: ev.Time, EventIDs: []int64{ins[0].ID},
			Fields: []event.Field{{Name: "CommandLine", Value: p}, {Name: "User", Value: p}}})
		must(t, err)
		must(t, h.be.AddComment(ctx, &alert.Comment{AlertID: ids[i], Author: "seed", Text: p, At: now}))
	}
	sess := h.newSession("admin", false)
	check := func(path string, want ...string) {
		t.Helper()
		resp, body := h.browser(browserReq{method: "GET", path: path, sess: &sess})
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
			return
		}
		checkSecurityHeaders(t, path, resp.Header)
		for _, p := range testkit.CheckInertHTML(body, want...) {
			t.Errorf("GET %.80s: %s", path, p)
		}
	}
	// The queue shows all 200; the detail of each shows its payload as
	// title, host, command line, file name, user name and comment.
	check("/alerts", payloads...)
	for i, p := range payloads {
		check(fmt.Sprintf("/alerts/%d", ids[i]), p)
	}
	for _, p := range payloads[:20] {
		check("/alerts?" + url.Values{"host": {p}, "rule_id": {"xss-" + p}}.Encode())
	}
	// Every other page of the table, as the page × role test reaches it,
	// plus a search for the payloads where there is a search page.
	for _, pg := range h.srv.pages {
		if pg.perm == "public" || pg.pending || (pg.method != "" && pg.method != "GET") {
			continue
		}
		path := h.pagePath(pg)
		if strings.HasPrefix(path, "/alerts") {
			continue
		}
		check(path)
		if path == "/search" {
			check("/search?" + url.Values{"q": {"xss"}}.Encode())
		}
	}
}
