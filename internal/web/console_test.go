package web

import (
	"context"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/audit"
	"github.com/vigil-edr/vigil/internal/authz"
)

// fastArgon2 keeps password checks cheap in tests.
var fastArgon2 = authz.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

const testPassword = "correct horse battery staple"

type testSession struct {
	cookie, csrf string
}

// seedConsole creates one console user per role (password testPassword;
// the admin has TOTP enrolled with h.totpSecret) and the authenticator.
func (h *harness) seedConsole() {
	ctx := context.Background()
	h.sessions = map[string]testSession{}
	for _, role := range []authz.Role{authz.RoleAdmin, authz.RoleAnalyst, authz.RoleViewer} {
		u, err := authz.NewUser(string(role), role, testPassword, fastArgon2, h.now)
		must(h.t, err)
		if role == authz.RoleAdmin {
			u.TOTPSecret = testTOTPSecret
		}
		must(h.t, h.casesDB.CreateUser(ctx, u))
	}
	// An admin who has not enrolled TOTP yet.
	u, err := authz.NewUser("newadmin", authz.RoleAdmin, testPassword, fastArgon2, h.now)
	must(h.t, err)
	must(h.t, h.casesDB.CreateUser(ctx, u))
	h.login, err = authz.NewAuthenticator(authz.LoginOptions{Users: h.casesDB, Argon2: fastArgon2})
	must(h.t, err)
}

var testTOTPSecret = []byte("0123456789abcdefghij")

// newSession stores a fresh session for user, as a sign-in would.
func (h *harness) newSession(user string, pending bool) testSession {
	h.t.Helper()
	secret, hash := authz.NewSessionSecret()
	now := time.Now().UTC()
	csrf := authz.NewSecret()
	must(h.t, h.casesDB.CreateSession(context.Background(), authz.Session{Hash: hash, User: user, Pending: pending,
		CSRF: csrf, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)}))
	return testSession{cookie: secret, csrf: csrf}
}

// browserReq is a request as a same-origin browser page sends it.
type browserReq struct {
	method, path string
	sess         *testSession
	csrf         string // X-CSRF-Token header ("" for none)
	form         url.Values
	json         string
	origin       string // "" for this server; "-" for none
	fetchSite    string // Sec-Fetch-Site; "" for same-origin
	cookies      []*http.Cookie
}

func (h *harness) browser(c browserReq) (*http.Response, string) {
	h.t.Helper()
	var body io.Reader
	ct := ""
	switch {
	case c.form != nil:
		body, ct = strings.NewReader(c.form.Encode()), "application/x-www-form-urlencoded"
	case c.json != "":
		body, ct = strings.NewReader(c.json), "application/json"
	}
	req, err := http.NewRequest(c.method, h.http.URL+c.path, body)
	must(h.t, err)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	switch c.origin {
	case "":
		if stateChanging(c.method) {
			req.Header.Set("Origin", h.http.URL)
		}
	case "-":
	default:
		req.Header.Set("Origin", c.origin)
	}
	site := c.fetchSite
	if site == "" {
		site = "same-origin"
	}
	req.Header.Set("Sec-Fetch-Site", site)
	if c.sess != nil {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: c.sess.cookie})
	}
	for _, ck := range c.cookies {
		req.AddCookie(ck)
	}
	if c.csrf != "" {
		req.Header.Set(csrfHeader, c.csrf)
	}
	client := *h.http.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	must(h.t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// pagePath fills a page pattern's path parameters with seeded objects.
// A page with a new parameter must be added here.
func (h *harness) pagePath(pg page) string {
	p := strings.TrimSuffix(pg.pattern, "{$}")
	switch {
	case strings.Contains(p, "{file}"):
		return strings.Replace(p, "{file}", "console.js", 1)
	case strings.HasPrefix(p, "/alerts/{id}"):
		return strings.Replace(p, "{id}", fmt.Sprint(h.alertHigh), 1)
	case strings.HasPrefix(p, "/cases/{id}"):
		return strings.Replace(p, "{id}", fmt.Sprint(h.caseID), 1)
	case strings.HasPrefix(p, "/hosts/{id}"):
		return strings.Replace(p, "{id}", h.agentID, 1)
	case strings.HasPrefix(p, "/rules/{id}"):
		return strings.Replace(p, "{id}", h.ruleID, 1)
	case strings.HasPrefix(p, "/events/{id}"):
		return strings.Replace(p, "{id}", fmt.Sprint(h.eventID), 1)
	case strings.Contains(p, "{"):
		h.t.Fatalf("pagePath: no sample for %s", pg.pattern)
	}
	return p
}

// checkSecurityHeaders asserts the headers every response carries.
func checkSecurityHeaders(t *testing.T, what string, hdr http.Header) {
	t.Helper()
	if got := hdr.Get("Content-Security-Policy"); got != ContentSecurityPolicy && !strings.HasPrefix(got, "default-src 'none'") {
		t.Errorf("%s: CSP %q", what, got)
	}
	for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"} {
		if hdr.Get(k) != v {
			t.Errorf("%s: %s = %q", what, k, hdr.Get(k))
		}
	}
}

// TestPageRoleMatrix checks every console page for every kind of caller:
// no session, a pending (TOTP enrolment) session, and each role; state
// changes also without the CSRF token and from another origin.
func TestPageRoleMatrix(t *testing.T) {
	h := newHarness(t, newMemStore())
	if len(h.srv.pages) < 10 {
		t.Fatalf("page table has %d pages", len(h.srv.pages))
	}
	for _, pg := range h.srv.pages {
		method := pg.method
		if method == "" {
			method = "GET"
		}
		path := h.pagePath(pg)
		what := method + " " + path
		if pg.perm == authz.PermPublic {
			resp, _ := h.browser(browserReq{method: method, path: path, form: url.Values{}})
			checkSecurityHeaders(t, what, resp.Header)
			if method == "GET" && resp.StatusCode != 200 {
				t.Errorf("%s (public): %d", what, resp.StatusCode)
			}
			continue
		}
		// No session.
		resp, _ := h.browser(browserReq{method: method, path: path, form: url.Values{}})
		checkSecurityHeaders(t, what, resp.Header)
		if method == "GET" {
			if resp.StatusCode != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
				t.Errorf("%s without a session: %d %q, want a redirect to /login", what, resp.StatusCode, resp.Header.Get("Location"))
			}
		} else if resp.StatusCode != 401 {
			t.Errorf("%s without a session: %d, want 401", what, resp.StatusCode)
		}
		// A pending session may open only the enrolment pages.
		ps := h.newSession("newadmin", true)
		resp, _ = h.browser(browserReq{method: method, path: path, sess: &ps, form: url.Values{"csrf": {ps.csrf}}})
		switch {
		case pg.pending && (resp.StatusCode == 401 || resp.StatusCode == 403 || resp.StatusCode == 303):
			t.Errorf("%s with a pending session: %d", what, resp.StatusCode)
		case !pg.pending && method == "GET" && resp.StatusCode != 303:
			t.Errorf("%s with a pending session: %d, want a redirect", what, resp.StatusCode)
		case !pg.pending && method != "GET" && resp.StatusCode != 401:
			t.Errorf("%s with a pending session: %d, want 401", what, resp.StatusCode)
		}
		for _, role := range []authz.Role{authz.RoleAdmin, authz.RoleAnalyst, authz.RoleViewer} {
			who := fmt.Sprintf("%s as %s", what, role)
			sess := h.newSession(string(role), false)
			allowed := role.Allows(pg.perm)
			if method == "GET" {
				resp, body := h.browser(browserReq{method: method, path: path, sess: &sess})
				checkSecurityHeaders(t, who, resp.Header)
				switch {
				case pg.pending:
					if resp.StatusCode != 303 {
						t.Errorf("%s: %d, want a redirect (no enrolment pending)", who, resp.StatusCode)
					}
				case allowed && resp.StatusCode != 200:
					t.Errorf("%s: %d, want 200\n%.300s", who, resp.StatusCode, body)
				case !allowed && resp.StatusCode != 403:
					t.Errorf("%s: %d, want 403", who, resp.StatusCode)
				}
				if resp.StatusCode == 200 && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
					checkPageHTML(t, who, body, role)
				}
				continue
			}
			// State changes: refused without the token, with another
			// session's token, from another origin or site; allowed (by
			// role) with the token.
			other := h.newSession(string(role), false)
			for _, bad := range []browserReq{
				{form: url.Values{}},
				{form: url.Values{"csrf": {other.csrf}}},
				{form: url.Values{"csrf": {sess.csrf}}, origin: "https://evil.example"},
				{form: url.Values{"csrf": {sess.csrf}}, origin: "null"},
				{form: url.Values{"csrf": {sess.csrf}}, fetchSite: "cross-site"},
				{form: url.Values{"csrf": {sess.csrf}}, fetchSite: "same-site"},
			} {
				bad.method, bad.path, bad.sess = method, path, &sess
				resp, _ := h.browser(bad)
				if resp.StatusCode != 403 {
					t.Errorf("%s, csrf=%v origin=%q site=%q: %d, want 403", who, bad.form.Get("csrf") == sess.csrf, bad.origin, bad.fetchSite, resp.StatusCode)
				}
			}
			if pg.pending {
				continue // a full session is sent on to the console
			}
			resp, _ := h.browser(browserReq{method: method, path: path, sess: &sess, form: url.Values{"csrf": {sess.csrf}}})
			if got := resp.StatusCode == 403 || resp.StatusCode == 401; got == allowed {
				t.Errorf("%s with the token: %d (allowed %v)", who, resp.StatusCode, allowed)
			}
		}
	}
}

// checkPageHTML: the layout's nav shows exactly the pages the role may
// open, and the page has no inline script or style.
func checkPageHTML(t *testing.T, who, body string, role authz.Role) {
	t.Helper()
	for _, bad := range []string{"<script>", " style=", "<style", "javascript:", " onclick=", " onload="} {
		if strings.Contains(body, bad) {
			t.Errorf("%s: page contains %q", who, bad)
		}
	}
	if role != authz.RoleAdmin && strings.Contains(body, `href="/settings"`) {
		t.Errorf("%s: nav shows Settings", who)
	}
	if role == authz.RoleAdmin && !strings.Contains(body, `href="/settings"`) {
		t.Errorf("%s: nav lacks Settings", who)
	}
}

// TestAPISessionAuth: the API accepts a console session instead of a bearer
// token; state changes then need the CSRF token and the same origin.
func TestAPISessionAuth(t *testing.T) {
	h := newHarness(t, newMemStore())
	for _, rt := range h.srv.routes {
		if rt.perm == authz.PermPublic {
			continue
		}
		for _, role := range []authz.Role{authz.RoleAdmin, authz.RoleAnalyst, authz.RoleViewer} {
			sess := h.newSession(string(role), false)
			path := h.pathFor(rt)
			who := fmt.Sprintf("%s %s as %s session", rt.method, path, role)
			body := ""
			if b := h.sampleBody(rt); b != nil {
				if _, raw := b.(rawBody); raw {
					continue // an upload; covered with tokens
				}
				body = mustJSON(t, b)
			}
			allowed := role.Allows(rt.perm)
			if stateChanging(rt.method) {
				for _, bad := range []browserReq{
					{},
					{csrf: "nope"},
					{csrf: sess.csrf, origin: "https://evil.example"},
					{csrf: sess.csrf, fetchSite: "cross-site"},
				} {
					bad.method, bad.path, bad.sess, bad.json = rt.method, path, &sess, body
					if resp, b := h.browser(bad); resp.StatusCode != 403 {
						t.Errorf("%s, bad csrf/origin %+v: %d %s", who, bad.origin, resp.StatusCode, b)
					}
				}
			}
			resp, b := h.browser(browserReq{method: rt.method, path: path, sess: &sess, json: body, csrf: sess.csrf})
			checkSecurityHeaders(t, who, resp.Header)
			switch {
			case allowed && (resp.StatusCode == 401 || resp.StatusCode == 403):
				t.Errorf("%s: %d %s, want allowed", who, resp.StatusCode, b)
			case !allowed && resp.StatusCode != 403:
				t.Errorf("%s: %d, want 403", who, resp.StatusCode)
			}
		}
	}
	// An expired or ended session is no session.
	sess := h.newSession("admin", false)
	h.browser(browserReq{method: "POST", path: "/logout", sess: &sess, form: url.Values{"csrf": {sess.csrf}}})
	if resp, _ := h.browser(browserReq{method: "GET", path: "/api/v1/alerts", sess: &sess}); resp.StatusCode != 401 {
		t.Errorf("after sign-out: %d", resp.StatusCode)
	}
}

// TestLoginFlow signs in through the forms: a user with TOTP, an admin
// enrolling TOTP at first sign-in, sign-out; cookies are __Host-, Secure,
// HttpOnly and SameSite=Strict; each step is in the audit log.
func TestLoginFlow(t *testing.T) {
	h := newHarness(t, newMemStore())
	// The form sets the double-submit cookie.
	resp, body := h.browser(browserReq{method: "GET", path: "/login"})
	lc := findCookie(resp, loginCookie)
	if resp.StatusCode != 200 || lc == nil || !strings.Contains(body, lc.Value) {
		t.Fatalf("login page: %d %v", resp.StatusCode, lc)
	}
	login := func(user, pw, code string, ck *http.Cookie, token string, more ...*http.Cookie) (*http.Response, string) {
		form := url.Values{"user": {user}, "password": {pw}, "code": {code}, "csrf": {token}}
		var cks []*http.Cookie
		if ck != nil {
			cks = append(cks, ck)
		}
		cks = append(cks, more...)
		return h.browser(browserReq{method: "POST", path: "/login", form: form, cookies: cks})
	}
	// Without the double-submit pair, or from elsewhere: refused before any check.
	if resp, _ := login("viewer", testPassword, "", nil, lc.Value); resp.StatusCode != 403 {
		t.Errorf("login without the form cookie: %d", resp.StatusCode)
	}
	form := url.Values{"user": {"viewer"}, "password": {testPassword}, "csrf": {lc.Value}}
	if resp, _ := h.browser(browserReq{method: "POST", path: "/login", form: form, cookies: []*http.Cookie{lc}, origin: "https://evil.example"}); resp.StatusCode != 403 {
		t.Errorf("cross-origin login: %d", resp.StatusCode)
	}
	// Wrong password: 401 with the generic message.
	if resp, body := login("viewer", "wrong password!", "", lc, lc.Value); resp.StatusCode != 401 || !strings.Contains(body, "invalid user name") {
		t.Errorf("wrong password: %d", resp.StatusCode)
	}
	// The admin needs the code.
	if resp, _ := login("admin", testPassword, "", lc, lc.Value); resp.StatusCode != 401 {
		t.Errorf("admin without a code: %d", resp.StatusCode)
	}
	code := authz.NewTOTP(testTOTPSecret).CodeAt(authz.NewTOTP(testTOTPSecret).Step(time.Now()))
	resp, _ = login("admin", testPassword, code, lc, lc.Value)
	sc := findCookie(resp, sessionCookie)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/" || sc == nil {
		t.Fatalf("admin login: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if !sc.Secure || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Path != "/" || sc.Domain != "" {
		t.Errorf("session cookie attributes: %+v", sc)
	}
	sess := testSession{cookie: sc.Value}
	resp, body = h.browser(browserReq{method: "GET", path: "/", sess: &sess})
	if resp.StatusCode != 200 || !strings.Contains(body, `href="/settings"`) {
		t.Fatalf("overview after login: %d", resp.StatusCode)
	}
	sess.csrf = metaCSRF(body)
	// The same code cannot be used twice.
	if resp, _ := login("admin", testPassword, code, lc, lc.Value); resp.StatusCode != 401 {
		t.Errorf("replayed code: %d", resp.StatusCode)
	}

	// First sign-in of an admin without TOTP: a pending session that can
	// only enrol. The browser's earlier session (another user) ends.
	other := h.newSession("viewer", false)
	resp, _ = login("newadmin", testPassword, "", lc, lc.Value, &http.Cookie{Name: sessionCookie, Value: other.cookie})
	if resp, _ := h.browser(browserReq{method: "GET", path: "/", sess: &other}); resp.StatusCode != 303 {
		t.Errorf("the earlier session survived a new sign-in: %d", resp.StatusCode)
	}
	pc := findCookie(resp, sessionCookie)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/login/totp" || pc == nil {
		t.Fatalf("newadmin login: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	pending := testSession{cookie: pc.Value}
	if resp, _ := h.browser(browserReq{method: "GET", path: "/alerts", sess: &pending}); resp.StatusCode != 303 {
		t.Errorf("pending session opened /alerts: %d", resp.StatusCode)
	}
	if resp, _ := h.browser(browserReq{method: "GET", path: "/api/v1/alerts", sess: &pending}); resp.StatusCode != 401 {
		t.Errorf("pending session used the API: %d", resp.StatusCode)
	}
	resp, body = h.browser(browserReq{method: "GET", path: "/login/totp", sess: &pending})
	secret := between(body, `<code id="totp-secret" class="secret">`, "</code>")
	if resp.StatusCode != 200 || len(secret) != 32 {
		t.Fatalf("totp page: %d %q", resp.StatusCode, secret)
	}
	pending.csrf = metaCSRF(body)
	key := decodeBase32(t, secret)
	if resp, _ := h.browser(browserReq{method: "POST", path: "/login/totp", sess: &pending, form: url.Values{"csrf": {pending.csrf}, "code": {"000000"}}}); resp.StatusCode != 400 {
		t.Errorf("wrong enrolment code: %d", resp.StatusCode)
	}
	code = authz.NewTOTP(key).CodeAt(authz.NewTOTP(key).Step(time.Now()))
	resp, _ = h.browser(browserReq{method: "POST", path: "/login/totp", sess: &pending, form: url.Values{"csrf": {pending.csrf}, "code": {code}}})
	fc := findCookie(resp, sessionCookie)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/" || fc == nil || fc.Value == pending.cookie {
		t.Fatalf("enrolment: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := h.browser(browserReq{method: "GET", path: "/login/totp", sess: &pending}); resp.StatusCode != 303 {
		t.Errorf("the pending session survived enrolment: %d", resp.StatusCode)
	}
	full := testSession{cookie: fc.Value}
	if resp, _ := h.browser(browserReq{method: "GET", path: "/alerts", sess: &full}); resp.StatusCode != 200 {
		t.Errorf("after enrolment: %d", resp.StatusCode)
	}
	u, err := h.casesDB.GetUser(t.Context(), "newadmin")
	if err != nil || len(u.TOTPSecret) != 20 {
		t.Errorf("TOTP not stored: %v", err)
	}

	// Sign out ends the session.
	resp, _ = h.browser(browserReq{method: "POST", path: "/logout", sess: &sess, form: url.Values{"csrf": {sess.csrf}}})
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/login" {
		t.Errorf("logout: %d", resp.StatusCode)
	}
	if resp, _ := h.browser(browserReq{method: "GET", path: "/", sess: &sess}); resp.StatusCode != 303 {
		t.Errorf("session alive after logout: %d", resp.StatusCode)
	}

	// The audit log has each step, in order, and verifies.
	es, err := h.casesDB.AuditEntries(t.Context(), 0, 1000)
	must(t, err)
	var got []string
	for _, e := range es {
		if strings.HasPrefix(e.Action, "login.") || strings.HasPrefix(e.Action, "console.") {
			got = append(got, e.Action+" "+e.Actor+" "+e.Target)
		}
	}
	want := []string{
		"login.fail anonymous user:viewer",
		"login.fail anonymous user:admin",
		"login.ok user:admin user:admin",
		"login.fail anonymous user:admin",
		"login.ok user:newadmin user:newadmin",
		"console.login.totp.post user:newadmin user:newadmin", // wrong code
		"console.login.totp.post user:newadmin user:newadmin",
		"console.logout.post user:admin user:admin",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := audit.Verify(t.Context(), h.casesDB, nil); err != nil {
		t.Error(err)
	}
}

// TestSessionExpiry: idle and absolute limits end a session.
func TestSessionExpiry(t *testing.T) {
	h := newHarness(t, newMemStore(), func(o *Options) { o.SessionIdle = time.Hour })
	ctx := context.Background()
	for name, s := range map[string]authz.Session{
		"idle":     {LastSeen: time.Now().Add(-2 * time.Hour), ExpiresAt: time.Now().Add(time.Hour)},
		"absolute": {LastSeen: time.Now(), ExpiresAt: time.Now().Add(-time.Second)},
	} {
		secret, hash := authz.NewSessionSecret()
		s.Hash, s.User, s.CSRF, s.CreatedAt = hash, "viewer", "x", time.Now().Add(-3*time.Hour)
		must(t, h.casesDB.CreateSession(ctx, s))
		ts := testSession{cookie: secret}
		if resp, _ := h.browser(browserReq{method: "GET", path: "/alerts", sess: &ts}); resp.StatusCode != 303 {
			t.Errorf("%s-expired session: %d", name, resp.StatusCode)
		}
		if _, err := h.casesDB.SessionByHash(ctx, hash); err == nil {
			t.Errorf("%s-expired session not deleted", name)
		}
	}
}

// TestLoginFlood: 300 wrong passwords at once from one address are refused
// by the rate limit after the burst; the account locks after 5 failures, so
// even the right password is refused afterwards; rate-limited attempts are
// not written to the audit log one by one.
func TestLoginFlood(t *testing.T) {
	h := newHarness(t, newMemStore())
	resp, _ := h.browser(browserReq{method: "GET", path: "/login"})
	lc := findCookie(resp, loginCookie)
	statuses := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 300; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			form := url.Values{"user": {"analyst"}, "password": {fmt.Sprintf("guess number %d", i)}, "csrf": {lc.Value}}
			resp, _ := h.browser(browserReq{method: "POST", path: "/login", form: form, cookies: []*http.Cookie{lc}})
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	if statuses[401] > 10 || statuses[429] < 290 || statuses[401]+statuses[429] != 300 {
		t.Errorf("statuses under the flood: %v", statuses)
	}
	u, err := h.casesDB.GetUser(t.Context(), "analyst")
	must(t, err)
	if !u.LockedUntil.After(time.Now()) {
		t.Errorf("account not locked: %+v", u.LockedUntil)
	}
	es, err := h.casesDB.AuditEntries(t.Context(), 0, 1000)
	must(t, err)
	fails := 0
	for _, e := range es {
		if e.Action == "login.fail" {
			fails++
		}
	}
	if fails != statuses[401] {
		t.Errorf("%d login.fail entries for %d refused passwords", fails, statuses[401])
	}
}

// TestStateChangesAudited: a token's and a session's state changes are
// audited with actor, target and result, refusals too; /api/v1/audit
// serves the log to admins.
func TestStateChangesAudited(t *testing.T) {
	h := newHarness(t, newMemStore())
	path := fmt.Sprintf("/api/v1/alerts/%d/state", h.alertHigh)
	if st, b, _ := h.do("POST", path, "analyst", map[string]any{"state": "acknowledged"}); st != 200 {
		t.Fatalf("ack: %d %s", st, b)
	}
	if st, _, _ := h.do("POST", path, "viewer", map[string]any{"state": "resolved"}); st != 403 {
		t.Fatalf("viewer: %d", st)
	}
	sess := h.newSession("analyst", false)
	if resp, b := h.browser(browserReq{method: "POST", path: fmt.Sprintf("/api/v1/alerts/%d/assign", h.alertHigh),
		sess: &sess, csrf: sess.csrf, json: `{"assignee":"analyst"}`}); resp.StatusCode != 200 {
		t.Fatalf("assign: %d %s", resp.StatusCode, b)
	}
	var page auditPage
	h.get("/api/v1/audit?limit=1000", "admin", &page)
	var got []string
	for _, e := range page.Items {
		if strings.HasPrefix(e.Action, "api.alerts") {
			got = append(got, fmt.Sprintf("%s %s %s %s", e.Actor, e.Action, e.Target, e.Detail))
		}
		if e.Actor != "seed" && e.Source == "" || e.Hash == "" {
			t.Errorf("entry without source or hash: %+v", e)
		}
	}
	want := []string{
		fmt.Sprintf("token:analyst api.alerts.state.post alert:%d status=200 to=acknowledged", h.alertHigh),
		fmt.Sprintf("token:viewer api.alerts.state.post %s status=403 role viewer lacks permission alerts:triage", path),
		fmt.Sprintf("user:analyst api.alerts.assign.post alert:%d status=200 assignee=analyst", h.alertHigh),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if st, _, _ := h.do("GET", "/api/v1/audit", "analyst", nil); st != 403 {
		t.Errorf("analyst read the audit log: %d", st)
	}
}

func findCookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name && c.MaxAge >= 0 {
			return c
		}
	}
	return nil
}

func metaCSRF(body string) string {
	return between(body, `<meta name="csrf-token" content="`, `"`)
}

func between(s, a, b string) string {
	_, rest, ok := strings.Cut(s, a)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, b)
	return v
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	must(t, err)
	return string(b)
}

func decodeBase32(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	must(t, err)
	return b
}
