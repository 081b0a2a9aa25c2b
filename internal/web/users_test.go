package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/testkit"
)

// signIn goes through the console's real sign-in form and returns the
// status and the session cookie (nil if none was set).
func (h *harness) signIn(user, pw string) (int, *http.Cookie) {
	h.t.Helper()
	resp, _ := h.browser(browserReq{method: "GET", path: "/login"})
	lc := findCookie(resp, loginCookie)
	form := url.Values{"user": {user}, "password": {pw}, "csrf": {lc.Value}}
	resp, _ = h.browser(browserReq{method: "POST", path: "/login", form: form, cookies: []*http.Cookie{lc}})
	return resp.StatusCode, findCookie(resp, sessionCookie)
}

// TestUserAdmin drives the user administration API as the console does:
// a created user signs in with the returned one-time password, a reset
// replaces it, a role change and a TOTP reset take effect and end the
// user's sessions, the last admin cannot be demoted, and the audit log
// records every call without any password in it.
func TestUserAdmin(t *testing.T) {
	h := newHarness(t, newMemStore())
	var passwords []string
	call := func(method, path, who string, body any, want int) []byte {
		t.Helper()
		st, b, _ := h.do(method, path, who, body)
		if st != want {
			t.Fatalf("%s %s as %s: %d %s, want %d", method, path, who, st, b, want)
		}
		return b
	}
	created := func(b []byte) userPassword {
		t.Helper()
		var up userPassword
		must(t, json.Unmarshal(b, &up))
		if len(up.Password) < 24 {
			t.Fatalf("password %q", up.Password)
		}
		passwords = append(passwords, up.Password)
		return up
	}

	up := created(call("POST", "/api/v1/users", "admin", map[string]any{"name": "alice", "role": "analyst"}, 201))
	if up.User.Name != "alice" || up.User.Role != authz.RoleAnalyst || up.User.TOTP {
		t.Errorf("created %+v", up.User)
	}
	st, ck := h.signIn("alice", up.Password)
	if st != 303 || ck == nil {
		t.Fatalf("sign-in with the one-time password: %d", st)
	}
	aliceSess := testSession{cookie: ck.Value}
	if resp, _ := h.browser(browserReq{method: "GET", path: "/alerts", sess: &aliceSess}); resp.StatusCode != 200 {
		t.Fatalf("alice's session: %d", resp.StatusCode)
	}
	call("POST", "/api/v1/users", "admin", map[string]any{"name": "alice", "role": "viewer"}, 409)
	call("POST", "/api/v1/users", "admin", map[string]any{"name": "<script>alert(1)</script>", "role": "viewer"}, 400)
	call("POST", "/api/v1/users", "admin", map[string]any{"name": "bob", "role": "root"}, 400)
	call("POST", "/api/v1/users", "admin", map[string]any{"name": "bob", "role": "viewer", "password": "mine"}, 400)
	for _, who := range []string{"analyst", "viewer"} {
		call("POST", "/api/v1/users", who, map[string]any{"name": "mallory", "role": "admin"}, 403)
		call("POST", "/api/v1/users/analyst/role", who, map[string]any{"role": "admin"}, 403)
		call("POST", "/api/v1/users/admin/password", who, nil, 403)
	}

	// Role change: alice's session ends, the new role shows.
	var u userJSON
	must(t, json.Unmarshal(call("POST", "/api/v1/users/alice/role", "admin", map[string]any{"role": "viewer"}, 200), &u))
	if u.Role != authz.RoleViewer {
		t.Errorf("role change: %+v", u)
	}
	if resp, _ := h.browser(browserReq{method: "GET", path: "/alerts", sess: &aliceSess}); resp.StatusCode != 303 {
		t.Errorf("alice's session after the role change: %d, want a redirect to sign in", resp.StatusCode)
	}
	call("POST", "/api/v1/users/nobody/role", "admin", map[string]any{"role": "viewer"}, 404)

	// Password reset: the old password no longer works, the new one does.
	reset := created(call("POST", "/api/v1/users/alice/password", "admin", nil, 200))
	if reset.Password == up.Password {
		t.Fatal("reset returned the same password")
	}
	if st, _ := h.signIn("alice", up.Password); st != 401 {
		t.Errorf("old password after reset: %d", st)
	}
	if st, ck := h.signIn("alice", reset.Password); st != 303 || ck == nil {
		t.Errorf("new password after reset: %d", st)
	}

	// TOTP reset.
	must(t, json.Unmarshal(call("POST", "/api/v1/users/admin/totp-reset", "admin", nil, 200), &u))
	if u.TOTP {
		t.Errorf("TOTP still enrolled: %+v", u)
	}

	// The last admin keeps the role: the harness has admin and newadmin.
	call("POST", "/api/v1/users/newadmin/role", "admin", map[string]any{"role": "analyst"}, 200)
	b := call("POST", "/api/v1/users/admin/role", "admin", map[string]any{"role": "viewer"}, 409)
	if !strings.Contains(string(b), "last admin") {
		t.Errorf("last admin refusal: %s", b)
	}
	call("POST", "/api/v1/users/admin/role", "admin", map[string]any{"role": "admin"}, 200) // no change: allowed
	call("POST", "/api/v1/users/alice/role", "admin", map[string]any{"role": "admin"}, 200)
	call("POST", "/api/v1/users/admin/role", "admin", map[string]any{"role": "analyst"}, 200)

	var list userList
	h.get("/api/v1/users", "admin", &list)
	roles := map[string]authz.Role{}
	for _, x := range list.Items {
		roles[x.Name] = x.Role
	}
	if roles["alice"] != authz.RoleAdmin || roles["admin"] != authz.RoleAnalyst || roles["newadmin"] != authz.RoleAnalyst {
		t.Errorf("roles: %v", roles)
	}
	_, raw, _ := h.do("GET", "/api/v1/users", "admin", nil)
	if strings.Contains(string(raw), "argon2") || strings.Contains(string(raw), "password") {
		t.Errorf("user list shows a secret: %s", raw)
	}

	// The audit log: every call, no password.
	var page auditPage
	h.get("/api/v1/audit?limit=1000", "admin", &page)
	var got []string
	for _, e := range page.Items {
		line := fmt.Sprintf("%s %s %s %s", e.Actor, e.Action, e.Target, e.Detail)
		for _, pw := range passwords {
			if strings.Contains(line, pw) {
				t.Errorf("audit entry holds a password: %s", line)
			}
		}
		if strings.HasPrefix(e.Action, "api.users") {
			got = append(got, line)
		}
	}
	for _, want := range []string{
		"token:admin api.users.post user:alice status=201 role=analyst",
		"token:admin api.users.post user:alice status=409 role=viewer user alice already exists",
		"token:analyst api.users.post /api/v1/users status=403 role analyst lacks permission users:admin",
		"token:admin api.users.role.post user:alice status=200 role=viewer",
		"token:admin api.users.password.post user:alice status=200 password reset, lockout cleared",
		"token:admin api.users.totp-reset.post user:admin status=200 second factor removed",
		"token:admin api.users.role.post user:admin status=409 role=viewer admin is the last admin; make another user admin first",
	} {
		found := false
		for _, g := range got {
			found = found || g == want
		}
		if !found {
			t.Errorf("audit: no %q in\n%s", want, strings.Join(got, "\n"))
		}
	}
}

// TestSettingsUserFormsInert stores users named with XSS payloads (the API
// refuses such names; a store written another way might not) and checks
// the settings page, with its per-user forms, keeps them text.
func TestSettingsUserFormsInert(t *testing.T) {
	h := newHarness(t, newMemStore())
	payloads := testkit.XSSPayloads()[:40]
	for _, p := range payloads {
		must(t, h.casesDB.CreateUser(context.Background(), authz.User{Name: p, Role: authz.RoleViewer, PasswordHash: "x", CreatedAt: h.now}))
	}
	sess := h.newSession("admin", false)
	resp, body := h.browser(browserReq{method: "GET", path: "/settings", sess: &sess})
	if resp.StatusCode != 200 {
		t.Fatalf("settings: %d", resp.StatusCode)
	}
	for _, p := range testkit.CheckInertHTML(body, payloads...) {
		t.Errorf("settings: %s", p)
	}
	for _, want := range []string{`data-api="/api/v1/users"`, `data-api="/api/v1/users/analyst/role"`,
		`data-api="/api/v1/users/analyst/password"`, `data-then="secret:user-password"`, `id="user-password"`} {
		if !strings.Contains(body, want) {
			t.Errorf("settings page lacks %s", want)
		}
	}
}
