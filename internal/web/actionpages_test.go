package web

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/respond"
	"github.com/vigil-edr/vigil/internal/testkit"
	"github.com/vigil-edr/vigil/internal/transport"
)

// TestActionPagesXSS puts the 200 XSS payloads in host names, action notes,
// quarantine paths (where the payload is a clean absolute path), agent
// errors and result output, and renders the actions page (per host, and
// the approval queue) and each host page: nothing became markup, and the
// payloads show as text.
func TestActionPagesXSS(t *testing.T) {
	h := newHarness(t, newMemStore())
	ctx := context.Background()
	now := time.Now().UTC()
	seed := respond.Principal{Actor: "token:seed", Role: authz.RoleAdmin}
	sess := h.newSession("admin", false)
	check := func(path string, want ...string) {
		t.Helper()
		resp, body := h.browser(browserReq{method: "GET", path: path, sess: &sess})
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d\n%.300s", path, resp.StatusCode, body)
			return
		}
		checkSecurityHeaders(t, path, resp.Header)
		for _, p := range testkit.CheckInertHTML(body, want...) {
			t.Errorf("GET %.80s: %s", path, p)
		}
	}
	for i, p := range testkit.XSSPayloads() {
		agentID := fmt.Sprintf("agent-a%03d", i)
		host := testkit.Printable(p)
		must(t, h.be.PutAgent(ctx, transport.Agent{ID: agentID, Hostname: host, OS: "linux", Arch: "amd64",
			CertSerial: fmt.Sprint(i), CertNotAfter: now.Add(time.Hour), EnrolledAt: now, LastSeen: now}))
		note := strings.ToValidUTF8(p, "")
		want := []string{host, note}
		if i%2 == 0 {
			// Isolation waits for a second approver: the queue.
			_, err := h.actions.Request(ctx, seed, respond.Request{Type: "isolate", AgentID: agentID, Note: note})
			must(t, err)
		} else {
			path := "/q/" + host
			if filepath.Clean(path) != path {
				path = fmt.Sprintf("/q/%d", i)
			} else {
				want = append(want, path)
			}
			_, err := h.actions.Request(ctx, seed, respond.Request{Type: "quarantine", AgentID: agentID, Args: map[string]string{"path": path}, Note: note})
			must(t, err)
			ds, err := h.actions.Poll(ctx, agentID, 0)
			if err != nil || len(ds) != 1 {
				t.Fatalf("poll: %v %v", ds, err)
			}
			out, _ := json.Marshal(map[string]any{"path": p, "rows": []string{p}})
			res, _ := json.Marshal(map[string]any{"id": ds[0].ID, "status": "failed", "error": note, "output": json.RawMessage(out)})
			must(t, h.actions.Report(ctx, agentID, res))
		}
		check("/actions?agent_id="+agentID, want...)
		check("/hosts/"+agentID, host)
	}
	check("/actions")
	check("/actions?state=awaiting_approval")
	check("/actions?state=failed")
}

// TestActionButtons: the host, alert and actions pages show each action
// form only to roles holding actions:request and the type's permission,
// and the approval queue never offers the requester their own approval.
func TestActionButtons(t *testing.T) {
	h := newHarness(t, newMemStore())
	ctx := context.Background()
	// An alert whose process_creation event carries pid and start time,
	// and one whose event lacks the start time.
	alertWith := func(seq uint64, fields ...string) int64 {
		ev := &event.Event{Time: h.now.Add(-time.Minute), Product: "linux", Categories: []string{"process_creation"}}
		for i := 0; i+1 < len(fields); i += 2 {
			ev.Add(fields[i], fields[i+1])
		}
		ins, err := h.be.Insert(ctx, []eventstore.Stored{{AgentID: h.agentID, BootEpoch: 1, Seq: seq, Host: "h1", Event: ev}})
		must(t, err)
		id, _, err := h.proc.Record(ctx, alert.Finding{RuleID: fmt.Sprint("rule-act-", seq), RuleTitle: "act", Level: "high",
			Host: "h1", AgentID: h.agentID, Time: ev.Time, EventIDs: []int64{ins[0].ID}})
		must(t, err)
		return id
	}
	full := alertWith(10, "Image", "/tmp/evil", "ProcessId", "4242", startTimeField, "987654")
	noStart := alertWith(11, "Image", "/tmp/evil2", "ProcessId", "4243")
	own, err := h.actions.Request(ctx, respond.Principal{Actor: "user:admin", Role: authz.RoleAdmin}, respond.Request{Type: "isolate", AgentID: h.agentID})
	must(t, err)

	has := func(body, id string) bool { return strings.Contains(body, `id="`+id+`"`) }
	for _, c := range []struct {
		role     authz.Role
		path     string
		want     []string
		wantNot  []string
		contains []string
	}{
		{authz.RoleAdmin, "/hosts/" + h.agentID, []string{"act-isolate", "act-release", "act-block", "act-query"}, nil, nil},
		{authz.RoleAnalyst, "/hosts/" + h.agentID, []string{"act-query"}, []string{"act-isolate", "act-block"}, nil},
		{authz.RoleViewer, "/hosts/" + h.agentID, nil, []string{"host-actions", "act-query"}, nil},
		{authz.RoleAnalyst, fmt.Sprintf("/alerts/%d", full), []string{"act-kill", "act-quarantine"}, []string{"act-kill-unavailable"},
			[]string{`name="args.pid" value="4242"`, `name="args.start_time" value="987654"`, `name="args.path" value="/tmp/evil"`}},
		{authz.RoleAnalyst, fmt.Sprintf("/alerts/%d", noStart), []string{"act-kill-unavailable", "act-quarantine"}, []string{"act-kill"}, nil},
		{authz.RoleViewer, fmt.Sprintf("/alerts/%d", full), nil, []string{"alert-actions", "act-kill", "act-quarantine"}, nil},
		// The seeded isolate (requested by token:seed) can be approved by
		// the admin; the admin's own cannot.
		{authz.RoleAdmin, "/actions", []string{"approval-queue", "action-" + h.approveID, "action-" + own[0].ID}, nil,
			[]string{`data-api="/api/v1/actions/` + h.approveID + `/approve"`, "another person must approve"}},
	} {
		sess := h.newSession(string(c.role), false)
		resp, body := h.browser(browserReq{method: "GET", path: c.path, sess: &sess})
		if resp.StatusCode != 200 {
			t.Errorf("%s as %s: %d", c.path, c.role, resp.StatusCode)
			continue
		}
		for _, id := range c.want {
			if !has(body, id) {
				t.Errorf("%s as %s: no #%s", c.path, c.role, id)
			}
		}
		for _, id := range c.wantNot {
			if has(body, id) {
				t.Errorf("%s as %s: shows #%s", c.path, c.role, id)
			}
		}
		for _, s := range c.contains {
			if !strings.Contains(body, s) {
				t.Errorf("%s as %s: lacks %s", c.path, c.role, s)
			}
		}
		if c.path == "/actions" && strings.Contains(body, `/api/v1/actions/`+own[0].ID+`/approve"`) {
			t.Errorf("/actions offers the admin to approve their own request")
		}
	}
	// The analyst sees the queue but may neither approve nor cancel an
	// isolate (admin permissions); it may cancel its pending query.
	sess := h.newSession("analyst", false)
	_, body := h.browser(browserReq{method: "GET", path: "/actions", sess: &sess})
	for _, bad := range []string{"/approve\"", `/api/v1/actions/` + h.approveID + `/cancel"`} {
		if strings.Contains(body, bad) {
			t.Errorf("/actions as analyst offers %s", bad)
		}
	}
	if !strings.Contains(body, `/api/v1/actions/`+h.actionCancelID+`/cancel"`) {
		t.Errorf("/actions as analyst: no cancel for the pending query")
	}
}

// TestActionButtonsCSRF sends what the buttons send (POST /api/v1/actions
// and /{id}/approve, /{id}/cancel with a session) without the session's
// CSRF token, with another session's, and from another origin or site: all
// refused, nothing changed. With the token the same requests pass, and the
// API still refuses a requester approving their own action.
func TestActionButtonsCSRF(t *testing.T) {
	h := newHarness(t, newMemStore())
	ctx := context.Background()
	sess := h.newSession("admin", false)
	other := h.newSession("admin", false)
	count := func() int {
		as, err := h.actions.List(ctx, respond.Filter{Limit: 1000})
		must(t, err)
		return len(as)
	}
	state := func(id string) respond.State {
		a, err := h.actions.Get(ctx, id)
		must(t, err)
		return a.State
	}
	isolate := `{"type":"isolate","agent_id":"` + h.agentID + `"}`
	posts := []struct{ path, body string }{
		{"/api/v1/actions", isolate},
		{"/api/v1/actions", `{"type":"query","agent_id":"` + h.agentID + `","args":{"name":"processes"}}`},
		{"/api/v1/actions/" + h.approveID + "/approve", ""},
		{"/api/v1/actions/" + h.actionCancelID + "/cancel", ""},
	}
	n := count()
	for _, p := range posts {
		for _, bad := range []browserReq{
			{},
			{csrf: other.csrf},
			{csrf: sess.csrf, origin: "https://evil.example"},
			{csrf: sess.csrf, origin: "null"},
			{csrf: sess.csrf, fetchSite: "cross-site"},
			{csrf: sess.csrf, fetchSite: "same-site"},
		} {
			bad.method, bad.path, bad.sess, bad.json = "POST", p.path, &sess, p.body
			if resp, b := h.browser(bad); resp.StatusCode != 403 {
				t.Errorf("POST %s csrf=%v origin=%q site=%q: %d %s, want 403", p.path, bad.csrf == sess.csrf, bad.origin, bad.fetchSite, resp.StatusCode, b)
			}
		}
	}
	if got := count(); got != n {
		t.Errorf("refused requests created %d actions", got-n)
	}
	if state(h.approveID) != respond.AwaitingApproval || state(h.actionCancelID) != respond.Pending {
		t.Errorf("refused requests changed actions: %s %s", state(h.approveID), state(h.actionCancelID))
	}
	// With the token: the admin's own isolate waits, and the admin cannot
	// approve it; the seeded one (another requester's) is approved.
	resp, b := h.browser(browserReq{method: "POST", path: "/api/v1/actions", sess: &sess, csrf: sess.csrf, json: isolate})
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	var created actionList
	must(t, json.Unmarshal([]byte(b), &created))
	if len(created.Items) != 1 || created.Items[0].State != respond.AwaitingApproval || created.Items[0].RequestedBy != "user:admin" {
		t.Fatalf("created %+v", created.Items)
	}
	resp, b = h.browser(browserReq{method: "POST", path: "/api/v1/actions/" + created.Items[0].ID + "/approve", sess: &sess, csrf: sess.csrf})
	if resp.StatusCode != 403 || !strings.Contains(b, "requester cannot approve") {
		t.Errorf("self-approval: %d %s", resp.StatusCode, b)
	}
	resp, b = h.browser(browserReq{method: "POST", path: "/api/v1/actions/" + h.approveID + "/approve", sess: &sess, csrf: sess.csrf})
	if resp.StatusCode != 200 || state(h.approveID) != respond.Pending {
		t.Errorf("approve: %d %s", resp.StatusCode, b)
	}
	// An analyst's session passes CSRF but lacks the permission: the
	// server refuses although no button was shown.
	as := h.newSession("analyst", false)
	resp, b = h.browser(browserReq{method: "POST", path: "/api/v1/actions", sess: &as, csrf: as.csrf, json: isolate})
	if resp.StatusCode != 403 {
		t.Errorf("analyst isolate: %d %s", resp.StatusCode, b)
	}
}
