package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/audit"
	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/cases"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/overview"
	"github.com/vigil-edr/vigil/internal/respond"
	"github.com/vigil-edr/vigil/internal/ruleset"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
	"github.com/vigil-edr/vigil/internal/transport"
)

// backend is what the tests need from a storage backend: the store
// interfaces the API's Options are adapted from, plus the writes used to
// seed data. memStore and store/sqlite's DB both satisfy it.
type backend interface {
	authz.Store
	alert.Store
	Events
	Hosts
	Enrollment
	ruleset.Store
	PutAgent(ctx context.Context, a transport.Agent) error
	Insert(ctx context.Context, evs []eventstore.Stored) ([]eventstore.Inserted, error)
}

// backends lists the storage backends the tests run against. sqlite_test.go
// adds the real SQLite backend.
var backends = map[string]func(t *testing.T) backend{
	"mem": func(*testing.T) backend { return newMemStore() },
}

// alerts is the production wiring shape of Options.Alerts.
type alerts struct {
	alert.Store
	*alert.Processor
}

const testRule = `title: Whoami run
id: 7c1f3c2e-0000-4000-8000-000000000001
status: test
logsource:
  category: process_creation
  product: linux
detection:
  sel:
    Image|endswith: /whoami
  condition: sel
level: high
`

// harness is a running API over a seeded backend.
type harness struct {
	t       *testing.T
	be      backend
	srv     *Server
	http    *httptest.Server
	proc    *alert.Processor
	secrets map[string]string // by case: admin, analyst, viewer, expired, revoked
	now     time.Time

	alertHigh, alertLow, eventID, supID int64
	agentID, ruleID, enrollID, victimID string
	// Notification channel and route ids (notify_test.go); the victims are
	// the ones DELETE routes remove.
	channelID, victimChannel, routeID, victimRoute int64
	hookURL                                        string

	login *authz.Authenticator
	// sessions by user (admin, analyst, viewer): cookie secret and CSRF token
	sessions map[string]testSession

	cases   *cases.Service
	casesDB *sqlite.DB // the cases store and audit log (the backend itself when it is SQLite)
	caseID  int64
	fileSum string // an uploaded file of caseID

	// Response actions (actions_test.go): one collected file, one pending
	// query to cancel, one isolate awaiting approval.
	actions                                 *respond.Service
	actionFileID, actionCancelID, approveID string
	playbookID                              string // the victim of DELETE /api/v1/playbooks/{id}
}

func newHarness(t *testing.T, be backend, mutate ...func(*Options)) *harness {
	t.Helper()
	ctx := context.Background()
	h := &harness{t: t, be: be, secrets: map[string]string{}, now: time.Now().UTC().Truncate(time.Second)}

	for _, c := range []struct {
		name    string
		role    authz.Role
		expires time.Time
		revoked bool
	}{
		{"admin", authz.RoleAdmin, time.Time{}, false},
		{"analyst", authz.RoleAnalyst, h.now.Add(time.Hour), false},
		{"viewer", authz.RoleViewer, time.Time{}, false},
		{"expired", authz.RoleAdmin, h.now.Add(-time.Second), false},
		{"revoked", authz.RoleAdmin, time.Time{}, true},
		{"victim", authz.RoleViewer, time.Time{}, false},
	} {
		secret := authz.NewSecret()
		tok := authz.Token{ID: "tok-" + c.name, Name: c.name, Role: c.role, Hash: authz.Hash(secret),
			CreatedAt: h.now, ExpiresAt: c.expires}
		must(t, be.CreateToken(ctx, tok))
		if c.revoked {
			must(t, be.RevokeToken(ctx, tok.ID))
		}
		h.secrets[c.name] = secret
	}
	h.victimID = "tok-victim"

	h.agentID = "agent-0001"
	must(t, be.PutAgent(ctx, transport.Agent{ID: h.agentID, Hostname: "h1", OS: "linux", Arch: "amd64",
		Version: "0.1", CertSerial: "01", CertNotAfter: h.now.Add(24 * time.Hour), EnrolledAt: h.now, LastSeen: h.now,
		Health: []byte(`{"time":"2026-12-02T14:00:00Z","cpu_percent":1.5}`), HealthAt: h.now}))

	ev := &event.Event{Time: h.now.Add(-time.Minute), Product: "linux", Categories: []string{"process_creation"}}
	ev.Add("Image", "/usr/bin/whoami")
	ev.Add("User", "root")
	ev2 := &event.Event{Time: h.now.Add(-2 * time.Hour), Product: "linux", Categories: []string{"network_connection"}}
	ev2.Add("DestinationIp", "10.0.0.9")
	ins, err := be.Insert(ctx, []eventstore.Stored{
		{AgentID: h.agentID, BootEpoch: 1, Seq: 1, Host: "h2", Event: ev2},
		{AgentID: h.agentID, BootEpoch: 1, Seq: 2, Host: "h1", Event: ev},
	})
	must(t, err)
	h.eventID = ins[1].ID

	h.proc = alert.NewProcessor(alert.Options{Store: be})
	h.alertLow, _, err = h.proc.Record(ctx, alert.Finding{RuleID: "rule-low", RuleTitle: "Low", Level: "low",
		Host: "h2", AgentID: h.agentID, Time: h.now.Add(-2 * time.Hour), EventIDs: []int64{ins[0].ID}})
	must(t, err)
	h.alertHigh, _, err = h.proc.Record(ctx, alert.Finding{RuleID: "rule-high", RuleTitle: "High", Level: "high",
		Host: "h1", AgentID: h.agentID, Time: h.now.Add(-time.Minute), EventIDs: []int64{h.eventID},
		Fields: []event.Field{{Name: "Image", Value: "/usr/bin/whoami"}}})
	must(t, err)
	sp := alert.Suppression{RuleID: "rule-low", Host: "h9", Reason: "lab host", CreatedBy: "seed", ExpiresAt: h.now.Add(time.Hour)}
	must(t, h.proc.Suppress(ctx, &sp))
	h.supID = sp.ID

	h.enrollID = "00000000000000e1"
	must(t, be.CreateEnrollToken(ctx, transport.EnrollToken{ID: h.enrollID, SecretHash: authz.Hash("s"),
		Note: "seed", CreatedAt: h.now, ExpiresAt: h.now.Add(time.Hour)}))

	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "whoami.yml"), []byte(testRule), 0o600))
	rules := ruleset.New(ruleset.Options{Paths: []string{dir}, Store: be})
	must(t, rules.Load(ctx))
	h.ruleID = "7c1f3c2e-0000-4000-8000-000000000001"

	ntf := h.seedNotify()
	// Cases have no in-memory store: with the mem backend they live in a
	// real SQLite file next to it (alerts and events still come from be).
	if db, ok := be.(*sqlite.DB); ok {
		h.casesDB = db
	} else {
		h.casesDB = openSQLite(t)
	}
	h.cases = cases.NewService(cases.Options{Store: h.casesDB, Alerts: be, Events: be,
		Audit: audit.New(h.casesDB, nil), MaxFileBytes: 64 << 10})
	c, err := h.cases.Create(ctx, cases.NewCase{Title: "seed case", AlertIDs: []int64{h.alertHigh}}, "seed")
	must(t, err)
	h.caseID = c.ID
	fe, err := h.cases.UploadFile(ctx, c.ID, "seed.bin", strings.NewReader("seed file"), "", "seed")
	must(t, err)
	h.fileSum = fe.Ref

	h.seedConsole()
	h.seedActions(t, be)

	opts := Options{
		Actions: h.actions, Playbooks: h.actions,
		Users: h.casesDB, Sessions: h.casesDB, Login: h.login, Audit: audit.New(h.casesDB, nil),
		StreamMax: 100 * time.Millisecond, StreamPoll: 20 * time.Millisecond,
		Tokens: be, Alerts: alerts{be, h.proc}, Events: be, Hosts: be, Enrollment: be, Rules: rules, Notify: ntf, Cases: h.cases, Inventory: inventoryFor(be), SCA: scaFor(be), Vulns: vulnsFor(be), Hygiene: hygieneFor(be),
		Ready: func() error { return nil },
		AgentHandler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusTeapot)
		}),
	}
	if ov, ok := be.(overview.Store); ok {
		opts.Overview = ov
	}
	for _, m := range mutate {
		m(&opts)
	}
	h.srv = New(opts)
	h.http = httptest.NewServer(h.srv.Handler())
	t.Cleanup(h.http.Close)
	return h
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// do sends a request as who (a key of h.secrets, "" for none, or
// "raw:<header>" for a literal Authorization header) and returns the status
// and body. A non-nil body is sent as JSON.
func (h *harness) do(method, path, who string, body any) (int, []byte, http.Header) {
	h.t.Helper()
	var rd io.Reader
	contentType := "application/json"
	switch b := body.(type) {
	case rawBody:
		rd, contentType = bytes.NewReader(b.data), b.contentType
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		must(h.t, err)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, h.http.URL+path, rd)
	must(h.t, err)
	if rd != nil && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	switch {
	case strings.HasPrefix(who, "raw:"):
		req.Header.Set("Authorization", strings.TrimPrefix(who, "raw:"))
	case who != "":
		s, ok := h.secrets[who]
		if !ok {
			s = who // a secret made by the test
		}
		req.Header.Set("Authorization", "Bearer "+s)
	}
	resp, err := h.http.Client().Do(req)
	must(h.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(h.t, err)
	return resp.StatusCode, b, resp.Header
}

// rawBody is a request body sent as is, with its own media type ("" for
// none).
type rawBody struct {
	contentType string
	data        []byte
}

// get decodes a 200 JSON response into v.
func (h *harness) get(path, who string, v any) {
	h.t.Helper()
	st, b, _ := h.do("GET", path, who, nil)
	if st != http.StatusOK {
		h.t.Fatalf("GET %s: %d %s", path, st, b)
	}
	must(h.t, json.Unmarshal(b, v))
}

func forEachBackend(t *testing.T, f func(t *testing.T, newBackend func(*testing.T) backend)) {
	for name, nb := range backends {
		t.Run(name, func(t *testing.T) { f(t, nb) })
	}
}

// pathFor fills a route pattern's {id} with an object the harness seeded.
func (h *harness) pathFor(rt route) string {
	id := ""
	switch {
	case strings.HasSuffix(rt.pattern, "/approve") && strings.HasPrefix(rt.pattern, "/api/v1/actions/"):
		id = h.approveID
	case strings.HasSuffix(rt.pattern, "/cancel") && strings.HasPrefix(rt.pattern, "/api/v1/actions/"):
		id = h.actionCancelID
	case strings.HasPrefix(rt.pattern, "/api/v1/actions/"):
		id = h.actionFileID
	case strings.HasPrefix(rt.pattern, "/api/v1/playbooks/"):
		id = h.playbookID
	case strings.HasPrefix(rt.pattern, "/api/v1/alerts/"):
		id = fmt.Sprint(h.alertHigh)
	case strings.HasPrefix(rt.pattern, "/api/v1/cases/"):
		id = fmt.Sprint(h.caseID)
	case strings.HasPrefix(rt.pattern, "/api/v1/events/"):
		id = fmt.Sprint(h.eventID)
	case strings.HasPrefix(rt.pattern, "/api/v1/hosts/"):
		id = h.agentID
	case strings.HasPrefix(rt.pattern, "/api/v1/enrollment-tokens/"):
		id = h.enrollID
	case strings.HasPrefix(rt.pattern, "/api/v1/suppressions/"):
		id = fmt.Sprint(h.supID)
	case strings.HasPrefix(rt.pattern, "/api/v1/rules/"):
		id = h.ruleID
	case strings.HasPrefix(rt.pattern, "/api/v1/tokens/"):
		id = h.victimID
	case strings.HasPrefix(rt.pattern, "/api/v1/notify/channels/"):
		id = fmt.Sprint(h.channelID)
		if rt.method == "DELETE" {
			id = fmt.Sprint(h.victimChannel)
		}
	case strings.HasPrefix(rt.pattern, "/api/v1/notify/routes/"):
		id = fmt.Sprint(h.routeID)
		if rt.method == "DELETE" {
			id = fmt.Sprint(h.victimRoute)
		}
	}
	p := strings.Replace(strings.Replace(rt.pattern, "{id}", id, 1), "{sha256}", h.fileSum, 1)
	p = strings.Replace(p, "{name}", "analyst", 1) // /api/v1/users/{name}/…
	if rt.pattern == "/api/v1/cases/{id}/files" {
		p += "?name=sample.bin"
	}
	return p
}

// sampleBody is a valid request body for each route that takes one.
func (h *harness) sampleBody(rt route) any {
	if rt.body == nil {
		return nil
	}
	switch rt.pattern {
	case "/api/v1/actions":
		return map[string]any{"type": "query", "agent_id": h.agentID, "args": map[string]string{"name": "processes"}}
	case "/api/v1/playbooks":
		return map[string]any{"name": "query on high", "min_level": "high", "type": "query", "args": map[string]string{"name": "processes"}}
	case "/api/v1/alerts/{id}/state":
		return map[string]any{"state": "acknowledged"}
	case "/api/v1/alerts/{id}/assign":
		return map[string]any{"assignee": "alice"}
	case "/api/v1/alerts/{id}/comments":
		return map[string]any{"text": "looked at it"}
	case "/api/v1/enrollment-tokens":
		return map[string]any{"note": "rack 4", "max_uses": 3}
	case "/api/v1/suppressions":
		return map[string]any{"rule_id": "rule-high", "host": "h1", "reason": "known admin", "expires_at": h.now.Add(time.Hour)}
	case "/api/v1/tokens":
		return map[string]any{"name": "ci", "role": "viewer"}
	case "/api/v1/users":
		return map[string]any{"name": "new.viewer", "role": "viewer"}
	case "/api/v1/users/{name}/role":
		return map[string]any{"role": "analyst"}
	case "/api/v1/notify/channels", "/api/v1/notify/channels/{id}":
		return map[string]any{"name": "soc hook", "kind": "webhook", "url": h.hookURL, "secret": "0123456789abcdef"}
	case "/api/v1/notify/routes", "/api/v1/notify/routes/{id}":
		return map[string]any{"name": "high to soc", "min_level": "high", "channels": []int64{h.channelID}}
	case "/api/v1/cases":
		return map[string]any{"title": "Whoami on h1", "alert_ids": []int64{h.alertHigh}}
	case "/api/v1/cases/{id}":
		return map[string]any{"assignee": "alice"}
	case "/api/v1/cases/{id}/alerts":
		return map[string]any{"alert_ids": []int64{h.alertLow}}
	case "/api/v1/cases/{id}/comments":
		return map[string]any{"text": "isolating h1"}
	case "/api/v1/cases/{id}/evidence":
		return map[string]any{"kind": "host", "ref": "h1"}
	case "/api/v1/cases/{id}/files":
		return rawBody{"application/octet-stream", []byte("sample evidence")}
	}
	h.t.Fatalf("no sample body for %s %s", rt.method, rt.pattern)
	return nil
}

// TestRouteRoleMatrix checks every route of the table for every role and
// every kind of bad credential: 401 without a valid token, 403 when the role
// lacks the route's permission, and neither otherwise. Public routes never
// answer 401 or 403.
func TestRouteRoleMatrix(t *testing.T) {
	forEachBackend(t, func(t *testing.T, nb func(*testing.T) backend) {
		h := newHarness(t, nb(t))
		if len(h.srv.routes) < 25 {
			t.Fatalf("route table has %d routes", len(h.srv.routes))
		}
		callers := []string{"", "raw:Bearer", "raw:Basic YWRtaW46YWRtaW4=", "raw:Bearer " + authz.NewSecret(),
			"raw:Bearer " + strings.Repeat("x", 5000), "expired", "revoked", "admin", "analyst", "viewer"}
		for _, rt := range h.srv.routes {
			firstAllowed := true
			for _, who := range callers {
				path := h.pathFor(rt)
				st, b, hdr := h.do(rt.method, path, who, h.sampleBody(rt))
				role, isRole := authz.Role(who), who == "admin" || who == "analyst" || who == "viewer"
				var want string
				switch {
				case rt.perm == authz.PermPublic:
					want = "allowed"
				case !isRole:
					want = "401"
				case !role.Allows(rt.perm):
					want = "403"
				default:
					want = "allowed"
				}
				got := fmt.Sprint(st)
				if st != 401 && st != 403 {
					got = "allowed"
				}
				if got != want {
					t.Errorf("%s %s as %q: got %d (%s), want %s", rt.method, path, who, st, b, want)
					continue
				}
				if st >= 500 {
					t.Errorf("%s %s as %q: %d %s", rt.method, path, who, st, b)
				}
				if want == "allowed" && firstAllowed {
					firstAllowed = false
					if st < 200 || st > 299 {
						t.Errorf("%s %s as %q: first allowed call got %d %s", rt.method, path, who, st, b)
					}
				}
				if st == 401 && hdr.Get("WWW-Authenticate") == "" {
					t.Errorf("%s %s: 401 without WWW-Authenticate", rt.method, path)
				}
				if hdr.Get("X-Content-Type-Options") != "nosniff" {
					t.Errorf("%s %s as %q: no nosniff", rt.method, path, who)
				}
				if ct := hdr.Get("Content-Type"); st != 204 && !strings.HasPrefix(ct, "application/json") && rt.text == "" {
					t.Errorf("%s %s as %q: Content-Type %q", rt.method, path, who, ct)
				}
			}
		}
	})
}

func TestRouteWithoutPermissionPanics(t *testing.T) {
	h := newHarness(t, newMemStore())
	for _, perm := range []authz.Permission{"", authz.PermAgent, authz.PermEnrollWithToken} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("registering a route with permission %q did not panic", perm)
				}
			}()
			h.srv.register(route{method: "GET", pattern: "/api/v1/x" + string(perm), perm: perm, summary: "x",
				handle: func(http.ResponseWriter, *http.Request) error { return nil }})
		}()
	}
	seen := map[string]bool{}
	for _, rt := range h.srv.routes {
		k := rt.method + " " + rt.pattern
		if seen[k] {
			t.Errorf("route %s listed twice", k)
		}
		seen[k] = true
	}
}

func TestEnrollmentTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, nb func(*testing.T) backend) {
		h := newHarness(t, nb(t))
		st, b, _ := h.do("POST", "/api/v1/enrollment-tokens", "admin", map[string]any{"note": "rack 4", "max_uses": 2})
		if st != http.StatusCreated {
			t.Fatalf("create: %d %s", st, b)
		}
		var created enrollTokenCreated
		must(t, json.Unmarshal(b, &created))
		id, secret, ok := strings.Cut(created.Secret, ".")
		if !ok || id != created.Token.ID || len(secret) != 43 {
			t.Fatalf("printable token %q does not look like <id>.<secret> for id %q", created.Secret, created.Token.ID)
		}
		if created.Token.MaxUses != 2 || created.Token.Note != "rack 4" || created.Token.ExpiresAt == nil {
			t.Errorf("created token %+v", created.Token)
		}
		stored, err := h.be.ListEnrollTokens(context.Background())
		must(t, err)
		found := false
		for _, tk := range stored {
			if tk.ID == id {
				found = true
				if !bytes.Equal(tk.SecretHash, authz.Hash(secret)) {
					t.Error("stored hash is not SHA-256 of the secret")
				}
			}
		}
		if !found {
			t.Fatal("token not stored")
		}

		var list enrollTokenList
		h.get("/api/v1/enrollment-tokens", "admin", &list)
		st, raw, _ := h.do("GET", "/api/v1/enrollment-tokens", "admin", nil)
		if st != 200 || bytes.Contains(raw, []byte(secret)) {
			t.Error("list shows the secret")
		}
		if !hasEnroll(list, id, false) {
			t.Fatalf("new token %s not listed: %+v", id, list)
		}

		if st, b, _ := h.do("DELETE", "/api/v1/enrollment-tokens/"+id, "admin", nil); st != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", st, b)
		}
		h.get("/api/v1/enrollment-tokens", "admin", &list)
		if !hasEnroll(list, id, true) {
			t.Errorf("revoked token not listed as revoked: %+v", list)
		}
		if st, _, _ := h.do("DELETE", "/api/v1/enrollment-tokens/nosuchtoken", "admin", nil); st != http.StatusNotFound {
			t.Errorf("revoke unknown: %d", st)
		}
		for _, bad := range []any{
			map[string]any{"max_uses": -1},
			map[string]any{"expires_at": h.now.Add(-time.Hour)},
			map[string]any{"expires_at": h.now.Add(400 * 24 * time.Hour)},
			map[string]any{"note": "a\x00b"},
			map[string]any{"secret": "mine"},
		} {
			if st, b, _ := h.do("POST", "/api/v1/enrollment-tokens", "admin", bad); st != http.StatusBadRequest {
				t.Errorf("create %v: %d %s", bad, st, b)
			}
		}
	})
}

func hasEnroll(l enrollTokenList, id string, revoked bool) bool {
	for _, t := range l.Items {
		if t.ID == id && t.Revoked == revoked {
			return true
		}
	}
	return false
}

func alertIDs(p alertPage) []int64 {
	var ids []int64
	for _, a := range p.Items {
		ids = append(ids, a.ID)
	}
	return ids
}

func TestAlertFiltersAndState(t *testing.T) {
	forEachBackend(t, func(t *testing.T, nb func(*testing.T) backend) {
		h := newHarness(t, nb(t))
		both := fmt.Sprint([]int64{h.alertHigh, h.alertLow})
		for q, want := range map[string]string{
			"":                              both,
			"?state=new":                    both,
			"?state=new&state=acknowledged": both,
			"?state=resolved":               "[]",
			"?host=h1":                      fmt.Sprint([]int64{h.alertHigh}),
			"?rule_id=rule-low":             fmt.Sprint([]int64{h.alertLow}),
			"?min_level=high":               fmt.Sprint([]int64{h.alertHigh}),
			"?min_level=informational":      both,
			"?since=" + h.now.Add(-time.Hour).Format(time.RFC3339): fmt.Sprint([]int64{h.alertHigh}),
			"?limit=1":                             fmt.Sprint([]int64{h.alertHigh}),
			fmt.Sprintf("?before=%d", h.alertHigh): fmt.Sprint([]int64{h.alertLow}),
		} {
			var p alertPage
			h.get("/api/v1/alerts"+q, "viewer", &p)
			if got := fmt.Sprint(alertIDs(p)); got != want && !(want == "[]" && len(p.Items) == 0) {
				t.Errorf("alerts%s = %s, want %s", q, got, want)
			}
			if q == "?limit=1" && p.NextBefore != h.alertHigh {
				t.Errorf("limit=1: next_before %d, want %d", p.NextBefore, h.alertHigh)
			}
		}
		for _, q := range []string{"?state=open", "?state=NEW", "?min_level=severe", "?since=yesterday",
			"?since=2026-01-02", "?limit=0", "?limit=1001", "?limit=ten", "?before=-1", "?host=a&host=b",
			"?sort=id", "?host=%zz", "?host=a%00b"} {
			st, b, hdr := h.do("GET", "/api/v1/alerts"+q, "viewer", nil)
			var e Error
			if st != http.StatusBadRequest || json.Unmarshal(b, &e) != nil || e.Code != CodeBadRequest ||
				hdr.Get("Content-Type") != "application/json" {
				t.Errorf("alerts%s: %d %s", q, st, b)
			}
		}

		path := fmt.Sprintf("/api/v1/alerts/%d", h.alertHigh)
		var a alertJSON
		h.get(path, "viewer", &a)
		if a.State != alert.StateNew || a.Level != "high" || a.Host != "h1" || len(a.EventIDs) != 1 || len(a.Fields) != 1 {
			t.Errorf("alert %+v", a)
		}

		// Viewers read, analysts triage.
		if st, _, _ := h.do("POST", path+"/state", "viewer", map[string]any{"state": "acknowledged"}); st != 403 {
			t.Errorf("viewer changed state: %d", st)
		}
		st, b, _ := h.do("POST", path+"/state", "analyst", map[string]any{"state": "acknowledged"})
		must(t, json.Unmarshal(b, &a))
		if st != 200 || a.State != alert.StateAcknowledged || a.StateBy != "token:analyst" || a.StateAt == nil {
			t.Fatalf("acknowledge: %d %s", st, b)
		}
		// The state machine forbids going back to new: 409.
		if st, b, _ := h.do("POST", path+"/state", "analyst", map[string]any{"state": "new"}); st != http.StatusConflict {
			t.Errorf("ack → new: %d %s", st, b)
		}
		if st, b, _ := h.do("POST", path+"/state", "analyst", map[string]any{"state": "false_positive"}); st != http.StatusBadRequest {
			t.Errorf("false_positive without reason: %d %s", st, b)
		}
		for _, bad := range []string{`{"state":"closed"}`, `{"state":"resolved","by":"mallory"}`, `{"state":1}`, `[]`, `{"state":"resolved"} {}`, `{`} {
			if st, b, _ := h.do("POST", path+"/state", "analyst", bad); st != http.StatusBadRequest {
				t.Errorf("state body %s: %d %s", bad, st, b)
			}
		}
		st, b, _ = h.do("POST", path+"/state", "analyst", map[string]any{"state": "false_positive", "reason": "admin's script"})
		if st != 200 {
			t.Fatalf("false_positive: %d %s", st, b)
		}
		var fp []alertJSON
		var p alertPage
		h.get("/api/v1/alerts?state=false_positive", "viewer", &p)
		fp = p.Items
		if len(fp) != 1 || fp[0].ID != h.alertHigh || fp[0].Reason != "admin's script" {
			t.Errorf("false positives: %+v", fp)
		}
		if st, _, _ := h.do("POST", "/api/v1/alerts/999999/state", "analyst", map[string]any{"state": "resolved"}); st != 404 {
			t.Errorf("unknown alert: %d", st)
		}
		if st, _, _ := h.do("POST", "/api/v1/alerts/abc/state", "analyst", map[string]any{"state": "resolved"}); st != 400 {
			t.Errorf("non-numeric alert id: %d", st)
		}

		// A concurrent change between read and compare-and-set: 409.
		racy := newHarness(t, nb(t), func(o *Options) {
			be := o.Tokens.(backend)
			rs := &racingStore{Store: be}
			o.Alerts = alerts{rs, alert.NewProcessor(alert.Options{Store: rs})}
		})
		st, b, _ = racy.do("POST", fmt.Sprintf("/api/v1/alerts/%d/state", racy.alertLow), "analyst", map[string]any{"state": "resolved"})
		if st != http.StatusConflict {
			t.Errorf("lost race: %d %s", st, b)
		}

		// Assignment and comments.
		st, b, _ = h.do("POST", path+"/assign", "analyst", map[string]any{"assignee": "alice"})
		must(t, json.Unmarshal(b, &a))
		if st != 200 || a.Assignee != "alice" {
			t.Errorf("assign: %d %s", st, b)
		}
		st, b, _ = h.do("POST", path+"/comments", "analyst", map[string]any{"text": "<script>alert(1)</script>\nsecond line"})
		if st != http.StatusCreated || bytes.Contains(b, []byte("<script>")) {
			t.Errorf("comment: %d %s", st, b)
		}
		var cl commentList
		h.get(path+"/comments", "viewer", &cl)
		if len(cl.Items) != 1 || cl.Items[0].Author != "token:analyst" || !strings.HasPrefix(cl.Items[0].Text, "<script>") {
			t.Errorf("comments %+v", cl)
		}
		if st, _, _ := h.do("POST", path+"/comments", "analyst", map[string]any{"text": "  "}); st != 400 {
			t.Errorf("empty comment: %d", st)
		}
	})
}

// racingStore changes an alert's state behind the Processor's back just
// before its compare-and-set, as a concurrent analyst would.
type racingStore struct{ alert.Store }

func (r *racingStore) SetState(ctx context.Context, id int64, from, to alert.State, by string, at time.Time, reason string) error {
	if err := r.Store.SetState(ctx, id, from, alert.StateAcknowledged, "someone else", at, ""); err != nil {
		return err
	}
	return r.Store.SetState(ctx, id, from, to, by, at, reason)
}

func TestEventSearch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, nb func(*testing.T) backend) {
		h := newHarness(t, nb(t))
		n := func(q string) int {
			t.Helper()
			var p eventPage
			h.get("/api/v1/events"+q, "viewer", &p)
			return len(p.Items)
		}
		for q, want := range map[string]int{
			"":                                     2,
			"?host=h1":                             1,
			"?agent_id=" + h.agentID:               2,
			"?agent_id=other":                      0,
			"?category=process_creation":           1,
			"?field=Image%3D%2Fusr%2Fbin%2Fwhoami": 1,
			"?field=image%3D%2FUSR%2Fbin%2Fwhoami": 1,
			"?field=Image%3D%2Fusr%2Fbin%2Fwhoami&field=User%3Droot": 1,
			"?field=User%3Dnobody": 0,
			"?q=whoami":            1,
			"?from=" + h.now.Add(-time.Hour).Format(time.RFC3339):                                                        1,
			"?to=" + h.now.Add(-time.Hour).Format(time.RFC3339):                                                          1,
			"?from=" + h.now.Add(-3*time.Hour).Format(time.RFC3339) + "&to=" + h.now.Add(time.Hour).Format(time.RFC3339): 2,
			"?limit=1":                           1,
			fmt.Sprintf("?before=%d", h.eventID): 1,
		} {
			if got := n(q); got != want {
				t.Errorf("events%s: %d results, want %d", q, got, want)
			}
		}
		var p eventPage
		h.get("/api/v1/events?limit=1", "viewer", &p)
		if p.NextBefore != h.eventID || p.Items[0].ID != h.eventID || p.Items[0].Host != "h1" ||
			len(p.Items[0].Categories) != 1 || p.Items[0].Time == nil {
			t.Errorf("page %+v", p)
		}
		var e eventJSON
		h.get(fmt.Sprintf("/api/v1/events/%d", h.eventID), "viewer", &e)
		if e.ID != h.eventID || e.AgentID != h.agentID || e.Seq != 2 || len(e.Fields) != 2 {
			t.Errorf("event %+v", e)
		}
		if st, _, _ := h.do("GET", "/api/v1/events/987654", "viewer", nil); st != 404 {
			t.Errorf("unknown event: %d", st)
		}
		many := strings.Repeat("&field=a%3Db", 17)
		for _, q := range []string{"?from=now", "?to=2026-13-01T00:00:00Z",
			"?from=" + h.now.Format(time.RFC3339) + "&to=" + h.now.Add(-time.Hour).Format(time.RFC3339),
			"?field=nameonly", "?field=%3Dvalue", "?" + many[1:], "?limit=5000", "?text=x", "?q=a&q=b",
			"?host=" + strings.Repeat("h", 300)} {
			if st, b, _ := h.do("GET", "/api/v1/events"+q, "viewer", nil); st != 400 {
				t.Errorf("events%s: %d %s", q, st, b)
			}
		}
	})
}

func TestHostsSuppressionsRules(t *testing.T) {
	forEachBackend(t, func(t *testing.T, nb func(*testing.T) backend) {
		h := newHarness(t, nb(t))
		var hl hostList
		h.get("/api/v1/hosts", "viewer", &hl)
		if len(hl.Items) != 1 || hl.Items[0].ID != h.agentID || hl.Items[0].Revoked || !hl.Items[0].Online ||
			!strings.Contains(string(hl.Items[0].Health), `"cpu_percent":1.5`) || hl.Items[0].HealthAt == nil {
			t.Errorf("hosts %+v", hl)
		}
		st, b, _ := h.do("POST", "/api/v1/hosts/"+h.agentID+"/revoke", "admin", nil)
		var hj hostJSON
		must(t, json.Unmarshal(b, &hj))
		if st != 200 || !hj.Revoked || hj.RevokedAt == nil || hj.Online {
			t.Errorf("revoke: %d %s", st, b)
		}
		if st, _, _ := h.do("GET", "/api/v1/hosts/nobody", "viewer", nil); st != 404 {
			t.Errorf("unknown host: %d", st)
		}
		if st, _, _ := h.do("POST", "/api/v1/hosts/"+h.agentID+"/revoke", "admin", `{"force":true}`); st != 400 {
			t.Errorf("revoke with a body: %d", st)
		}

		var sl suppressionList
		h.get("/api/v1/suppressions", "viewer", &sl)
		if len(sl.Items) != 1 || sl.Items[0].ID != h.supID {
			t.Fatalf("suppressions %+v", sl)
		}
		exp := h.now.Add(2 * time.Hour)
		st, b, _ = h.do("POST", "/api/v1/suppressions", "analyst", map[string]any{
			"rule_id": "rule-high", "field": "User", "value": "backup", "reason": "nightly job", "expires_at": exp})
		var sj suppressionJSON
		must(t, json.Unmarshal(b, &sj))
		if st != 201 || sj.ID == 0 || sj.CreatedBy != "token:analyst" || !sj.ExpiresAt.Equal(exp) {
			t.Fatalf("create suppression: %d %s", st, b)
		}
		for _, bad := range []map[string]any{
			{"host": "h1", "reason": "r", "expires_at": exp},
			{"rule_id": "r", "reason": "r", "expires_at": exp},
			{"rule_id": "r", "field": "User", "reason": "r", "expires_at": exp},
			{"rule_id": "r", "host": "h1", "expires_at": exp},
			{"rule_id": "r", "host": "h1", "reason": "r"},
			{"rule_id": "r", "host": "h1", "reason": "r", "expires_at": h.now.Add(-time.Minute)},
			{"rule_id": "r", "host": "h1", "reason": "r", "expires_at": "tomorrow"},
		} {
			if st, b, _ := h.do("POST", "/api/v1/suppressions", "analyst", bad); st != 400 {
				t.Errorf("suppression %v: %d %s", bad, st, b)
			}
		}
		if st, _, _ := h.do("DELETE", fmt.Sprintf("/api/v1/suppressions/%d", sj.ID), "analyst", nil); st != 204 {
			t.Errorf("delete suppression: %d", st)
		}
		if st, _, _ := h.do("DELETE", fmt.Sprintf("/api/v1/suppressions/%d", sj.ID), "analyst", nil); st != 404 {
			t.Errorf("delete suppression twice: %d", st)
		}

		var rl ruleList
		h.get("/api/v1/rules", "viewer", &rl)
		if len(rl.Items) != 1 || rl.Items[0].ID != h.ruleID || !rl.Items[0].Enabled || rl.Items[0].Level != "high" {
			t.Fatalf("rules %+v", rl)
		}
		st, b, _ = h.do("POST", "/api/v1/rules/"+h.ruleID+"/disable", "admin", nil)
		var rj ruleJSON
		must(t, json.Unmarshal(b, &rj))
		if st != 200 || rj.Enabled {
			t.Errorf("disable: %d %s", st, b)
		}
		st, b, _ = h.do("POST", "/api/v1/rules/"+h.ruleID+"/enable", "admin", "{}")
		must(t, json.Unmarshal(b, &rj))
		if st != 200 || !rj.Enabled {
			t.Errorf("enable: %d %s", st, b)
		}
		if st, _, _ := h.do("POST", "/api/v1/rules/no-such-rule/enable", "admin", nil); st != 404 {
			t.Errorf("enable unknown rule: %d", st)
		}
		if st, b, _ := h.do("POST", "/api/v1/rules/reload", "admin", nil); st != 200 {
			t.Errorf("reload: %d %s", st, b)
		}
	})
}

func TestAPITokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, nb func(*testing.T) backend) {
		h := newHarness(t, nb(t))
		st, b, _ := h.do("POST", "/api/v1/tokens", "admin", map[string]any{"name": "grafana", "role": "viewer"})
		if st != 201 {
			t.Fatalf("create: %d %s", st, b)
		}
		var tc tokenCreated
		must(t, json.Unmarshal(b, &tc))
		if len(tc.Secret) != 43 || tc.Token.Role != authz.RoleViewer {
			t.Fatalf("created %s", b)
		}
		if st, _, _ := h.do("GET", "/api/v1/alerts", tc.Secret, nil); st != 200 {
			t.Errorf("new viewer token cannot read alerts: %d", st)
		}
		if st, _, _ := h.do("POST", "/api/v1/tokens", tc.Secret, map[string]any{"name": "x", "role": "admin"}); st != 403 {
			t.Errorf("viewer minted a token: %d", st)
		}
		st, raw, _ := h.do("GET", "/api/v1/tokens", "admin", nil)
		if st != 200 || bytes.Contains(raw, []byte(tc.Secret)) || bytes.Contains(raw, []byte(`"hash"`)) {
			t.Errorf("list: %d %s", st, raw)
		}
		var tl tokenList
		must(t, json.Unmarshal(raw, &tl))
		var used bool
		for _, tk := range tl.Items {
			if tk.ID == tc.Token.ID {
				used = tk.LastUsed != nil
			}
		}
		if !used {
			t.Errorf("token use not recorded: %s", raw)
		}
		if st, _, _ := h.do("DELETE", "/api/v1/tokens/"+tc.Token.ID, "admin", nil); st != 204 {
			t.Errorf("revoke: %d", st)
		}
		if st, _, _ := h.do("GET", "/api/v1/alerts", tc.Secret, nil); st != 401 {
			t.Errorf("revoked token still works: %d", st)
		}
		for _, bad := range []map[string]any{{"name": "x", "role": "root"}, {"role": "viewer"},
			{"name": "x", "role": "viewer", "expires_at": h.now.Add(-time.Hour)}} {
			if st, b, _ := h.do("POST", "/api/v1/tokens", "admin", bad); st != 400 {
				t.Errorf("create %v: %d %s", bad, st, b)
			}
		}
	})
}

func TestHostileRequests(t *testing.T) {
	h := newHarness(t, newMemStore())
	path := fmt.Sprintf("/api/v1/alerts/%d/comments", h.alertHigh)
	big := `{"text":"` + strings.Repeat("a", maxBodyBytes) + `"}`
	deep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	for _, c := range []struct {
		body string
		ct   string
		want int
	}{
		{big, "application/json", 413},
		{`{"text":` + deep + `}`, "application/json", 400},
		{`{"text":"x","extra":1}`, "application/json", 400},
		{`{"text":"x"}`, "text/plain", 415},
		{`{"text":"x"}`, "application/x-www-form-urlencoded", 415},
		{`{"text":"x"}`, "", 415},
		{`{"text":"x"}garbage`, "application/json", 400},
		{``, "application/json", 400},
		{`{"text":"` + strings.Repeat("b", maxTextLen+1) + `"}`, "application/json", 400},
		{`{"text":"ok"}`, "application/json; charset=utf-8", 201},
	} {
		req, _ := http.NewRequest("POST", h.http.URL+path, strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+h.secrets["analyst"])
		if c.ct != "" {
			req.Header.Set("Content-Type", c.ct)
		}
		resp, err := h.http.Client().Do(req)
		must(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("body %.40q (%s): %d %s, want %d", c.body, c.ct, resp.StatusCode, b, c.want)
		}
		if c.want != 201 {
			var e Error
			if json.Unmarshal(b, &e) != nil || e.Code == "" || e.Message == "" || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("error body %s", b)
			}
		}
	}

	// Nothing the caller sends comes back as HTML, and unknown routes and
	// methods answer in JSON without redirects.
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/api/v1/<script>alert(1)</script>", 404},
		{"GET", "/api/v1/alerts/../tokens", 404},
		{"GET", "/api/v1//alerts", 404},
		{"GET", "/api/v1/alerts/", 404},
		{"DELETE", "/api/v1/alerts", 405},
		{"PUT", "/healthz", 405},
		{"GET", "/nope", 404},
		{"GET", "/agent", 404},
	} {
		req, _ := http.NewRequest(c.method, h.http.URL+c.path, nil)
		req.Header.Set("Authorization", "Bearer "+h.secrets["admin"])
		client := *h.http.Client()
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := client.Do(req)
		must(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want || resp.Header.Get("Content-Type") != "application/json" ||
			bytes.Contains(b, []byte("<")) || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: %d %q %s", c.method, c.path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		if c.want == 405 && resp.Header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", c.method, c.path)
		}
	}

	// The agent mount is passed through unauthenticated.
	if st, _, _ := h.do("POST", "/agent/v1/batch", "", "x"); st != http.StatusTeapot {
		t.Errorf("agent mount: %d", st)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	var notReady error
	h := newHarness(t, newMemStore(), func(o *Options) { o.Ready = func() error { return notReady } })
	if st, b, _ := h.do("GET", "/healthz", "", nil); st != 200 || !strings.Contains(string(b), `"ok"`) {
		t.Errorf("healthz: %d %s", st, b)
	}
	if st, _, _ := h.do("GET", "/readyz", "", nil); st != 200 {
		t.Errorf("readyz: %d", st)
	}
	notReady = errors.New("database at /secret/path is locked")
	st, b, _ := h.do("GET", "/readyz", "", nil)
	if st != 503 || strings.Contains(string(b), "secret") {
		t.Errorf("readyz not ready: %d %s", st, b)
	}
	h.do("GET", "/api/v1/alerts", "", nil)
	st, b, hdr := h.do("GET", "/metrics", "viewer", nil)
	if st != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") ||
		!strings.Contains(string(b), `vigil_http_requests_total{code="401",route="GET /api/v1/alerts"}`) ||
		!strings.Contains(string(b), `vigil_http_auth_failures_total{reason="missing"}`) {
		t.Errorf("metrics: %d %s", st, b)
	}
}

func TestNotConfigured(t *testing.T) {
	be := newMemStore()
	h := newHarness(t, be, func(o *Options) {
		o.Alerts, o.Events, o.Hosts, o.Enrollment, o.Rules, o.AgentHandler, o.Notify = nil, nil, nil, nil, nil, nil, nil
		o.Cases, o.Audit, o.SCA, o.Vulns, o.Actions, o.Hygiene, o.Playbooks = nil, nil, nil, nil, nil, nil, nil
		o.Users, o.Sessions, o.Login = nil, nil, nil
	})
	for _, rt := range h.srv.routes {
		if rt.perm == authz.PermPublic || strings.Contains(rt.pattern, "tokens") && !strings.Contains(rt.pattern, "enrollment") ||
			rt.pattern == "/metrics" {
			continue
		}
		st, b, _ := h.do(rt.method, h.pathFor(rt), "admin", h.sampleBody(rt))
		if st != http.StatusServiceUnavailable {
			t.Errorf("%s %s without a backend: %d %s", rt.method, rt.pattern, st, b)
		}
	}
	if st, _, _ := h.do("GET", "/agent/v1/x", "", nil); st != 404 {
		t.Errorf("agent path without a handler: %d", st)
	}
}

func TestOpenAPIDocument(t *testing.T) {
	h := newHarness(t, newMemStore())
	st, b, hdr := h.do("GET", "/api/v1/openapi.json", "", nil)
	if st != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("openapi: %d %v", st, hdr)
	}
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas   map[string]json.RawMessage `json:"schemas"`
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	ops := 0
	for _, rt := range h.srv.routes {
		raw, ok := doc.Paths[rt.pattern][strings.ToLower(rt.method)]
		if !ok {
			t.Errorf("%s %s missing from the document", rt.method, rt.pattern)
			continue
		}
		ops++
		var op struct {
			Perm       string                      `json:"x-vigil-permission"`
			Security   *[]any                      `json:"security"`
			Summary    string                      `json:"summary"`
			Parameters []struct{ Name, In string } `json:"parameters"`
			Responses  map[string]any              `json:"responses"`
		}
		must(t, json.Unmarshal(raw, &op))
		if op.Perm != string(rt.perm) || op.Summary != rt.summary {
			t.Errorf("%s %s: permission %q summary %q", rt.method, rt.pattern, op.Perm, op.Summary)
		}
		if (rt.perm == authz.PermPublic) != (op.Security != nil && len(*op.Security) == 0) {
			t.Errorf("%s %s: security %v for permission %s", rt.method, rt.pattern, op.Security, rt.perm)
		}
		if rt.perm != authz.PermPublic && (op.Responses["401"] == nil || op.Responses["403"] == nil) {
			t.Errorf("%s %s: 401/403 not documented", rt.method, rt.pattern)
		}
		params := map[string]bool{}
		for _, p := range op.Parameters {
			params[p.In+":"+p.Name] = true
		}
		for _, p := range rt.query {
			if !params["query:"+p.name] {
				t.Errorf("%s %s: query parameter %s undocumented", rt.method, rt.pattern, p.name)
			}
		}
		for _, p := range pathParams(rt.pattern) {
			if !params["path:"+p] {
				t.Errorf("%s %s: path parameter %s undocumented", rt.method, rt.pattern, p)
			}
		}
	}
	total := 0
	for _, m := range doc.Paths {
		total += len(m)
	}
	if total != ops {
		t.Errorf("document has %d operations, table %d", total, ops)
	}
	// Every $ref resolves.
	for _, m := range findRefs(b) {
		name := m[strings.LastIndex(m, "/")+1:]
		switch {
		case strings.HasPrefix(m, "#/components/schemas/"):
			if doc.Components.Schemas[name] == nil {
				t.Errorf("dangling %s", m)
			}
		case strings.HasPrefix(m, "#/components/responses/"):
			if doc.Components.Responses[name] == nil {
				t.Errorf("dangling %s", m)
			}
		default:
			t.Errorf("odd ref %s", m)
		}
	}
}

func findRefs(b []byte) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && k == "$ref" {
					out = append(out, s)
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	var v any
	json.Unmarshal(b, &v)
	walk(v)
	return out
}
