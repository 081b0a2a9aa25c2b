package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vigil-edr/vigil/internal/notify"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
)

// seedNotify starts a webhook receiver and a Notifier over its own SQLite
// database (whatever the backend under test: the in-memory test backend
// does not implement notify.Store), and seeds a channel and a route plus a
// victim of each for the DELETE routes.
func (h *harness) seedNotify() *notify.Notifier {
	t := h.t
	t.Helper()
	var hits atomic.Int32
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if strings.Contains(r.URL.Path, "broken") {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	t.Cleanup(rcv.Close)
	h.hookURL = rcv.URL + "/hook"
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "notify.db"), sqlite.Options{})
	must(t, err)
	t.Cleanup(func() { db.Close() })
	n, err := notify.New(notify.Options{Store: db, Allow: []string{"127.0.0.1/32"}})
	must(t, err)
	ctx := context.Background()
	for _, id := range []*int64{&h.channelID, &h.victimChannel} {
		c := notify.Channel{Name: "seed", Kind: notify.KindWebhook, Enabled: true, URL: h.hookURL, Secret: "seed-secret-0123456789"}
		must(t, n.CreateChannel(ctx, &c))
		*id = c.ID
	}
	for _, id := range []*int64{&h.routeID, &h.victimRoute} {
		r := notify.Route{Name: "seed", Enabled: true, Channels: []int64{h.channelID}}
		must(t, n.CreateRoute(ctx, &r))
		*id = r.ID
	}
	return n
}

func TestNotifyAPI(t *testing.T) {
	h := newHarness(t, newMemStore())
	const secret = "very-secret-hmac-key-0001"
	st, b, _ := h.do("POST", "/api/v1/notify/channels", "admin", map[string]any{
		"name": "soc", "kind": "webhook", "url": h.hookURL + "?token=t0k", "secret": secret})
	if st != http.StatusCreated {
		t.Fatalf("create: %d %s", st, b)
	}
	var c channelJSON
	must(t, json.Unmarshal(b, &c))
	if !c.HasSecret || c.URL != strings.TrimSuffix(h.hookURL, "")+"?…" || strings.Contains(string(b), secret) {
		t.Errorf("created channel %s", b)
	}
	path := fmt.Sprintf("/api/v1/notify/channels/%d", c.ID)

	// Secrets never come back, from any route; chat URLs are redacted.
	st, b, _ = h.do("POST", "/api/v1/notify/channels", "admin", map[string]any{
		"name": "chat", "kind": "mattermost", "url": h.hookURL + "/hooks/xyzTOKEN"})
	if st != http.StatusCreated || strings.Contains(string(b), "xyzTOKEN") {
		t.Errorf("chat channel: %d %s", st, b)
	}
	st, b, _ = h.do("POST", "/api/v1/notify/channels", "admin", map[string]any{
		"name": "mail", "kind": "email", "smtp_addr": "127.0.0.1:25", "username": "u", "password": "mail-password",
		"from": "vigil@example.org", "to": []string{"soc@example.org"}})
	if st != http.StatusCreated {
		t.Fatalf("email channel: %d %s", st, b)
	}
	for _, p := range []string{"/api/v1/notify/channels", path} {
		_, b, _ := h.do("GET", p, "admin", nil)
		if strings.Contains(string(b), secret) || strings.Contains(string(b), "mail-password") || strings.Contains(string(b), "xyzTOKEN") {
			t.Errorf("GET %s leaks a secret: %s", p, b)
		}
	}
	// A replacement without the secret keeps it: the test still signs.
	st, b, _ = h.do("PUT", path, "admin", map[string]any{"name": "soc renamed", "kind": "webhook", "url": h.hookURL})
	if st != http.StatusOK || !strings.Contains(string(b), `"has_secret":true`) || !strings.Contains(string(b), "soc renamed") {
		t.Errorf("update: %d %s", st, b)
	}
	st, b, _ = h.do("POST", path+"/test", "admin", nil)
	if st != http.StatusOK || string(b) != "{\"sent\":true}\n" {
		t.Errorf("test: %d %s", st, b)
	}
	st, b, _ = h.do("POST", "/api/v1/notify/channels", "admin", map[string]any{
		"name": "broken", "kind": "webhook", "url": h.hookURL + "/broken", "secret": secret})
	if st != http.StatusCreated {
		t.Fatalf("create: %d %s", st, b)
	}
	var broken channelJSON
	must(t, json.Unmarshal(b, &broken))
	st, b, _ = h.do("POST", fmt.Sprintf("/api/v1/notify/channels/%d/test", broken.ID), "admin", nil)
	if st != http.StatusOK || !strings.Contains(string(b), `"sent":false`) || !strings.Contains(string(b), "502") {
		t.Errorf("failing test: %d %s", st, b)
	}

	// Validation errors are 400 with the reason.
	for _, bad := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"name": "x", "kind": "webhook", "url": "https://169.254.169.254/", "secret": secret}, "link-local"},
		{map[string]any{"name": "x", "kind": "webhook", "url": "http://hooks.example.org/", "secret": secret}, "https"},
		{map[string]any{"name": "x", "kind": "webhook", "url": "https://hooks.example.org/", "secret": "short"}, "secret"},
		{map[string]any{"name": "x", "kind": "pager", "url": "https://hooks.example.org/"}, "kind"},
		{map[string]any{"name": "x", "kind": "email", "smtp_addr": "mail.example.org:25", "smtp_tls": "none", "username": "u",
			"password": "p", "from": "a@example.org", "to": []string{"b@example.org"}}, "TLS"},
		{map[string]any{"name": "x", "kind": "email", "smtp_addr": "mail.example.org:25", "from": "a@example.org",
			"to": []string{"b@example.org\r\nBcc: c@example.org"}}, "control"},
		{map[string]any{"name": "", "kind": "slack", "url": "https://hooks.slack.com/services/x"}, "name"},
	} {
		st, b, _ := h.do("POST", "/api/v1/notify/channels", "admin", bad.body)
		if st != http.StatusBadRequest || !strings.Contains(string(b), bad.want) {
			t.Errorf("bad channel %v: %d %s (want 400 mentioning %q)", bad.body, st, b, bad.want)
		}
	}

	// Routes.
	st, b, _ = h.do("POST", "/api/v1/notify/routes", "admin", map[string]any{"name": "crit", "min_level": "critical",
		"tags": []string{"attack.t1059*"}, "hosts": []string{"web-*"}, "channels": []int64{c.ID},
		"escalate_after_seconds": 900, "escalate_to": []int64{broken.ID}})
	if st != http.StatusCreated || !strings.Contains(string(b), `"escalate_after_seconds":900`) {
		t.Fatalf("create route: %d %s", st, b)
	}
	for _, bad := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"name": "r", "channels": []int64{99999}}, "does not exist"},
		{map[string]any{"name": "r", "channels": []int64{}}, "channels"},
		{map[string]any{"name": "r", "channels": []int64{c.ID}, "min_level": "severe"}, "min_level"},
		{map[string]any{"name": "r", "channels": []int64{c.ID}, "escalate_after_seconds": 60}, "escalate"},
		{map[string]any{"name": "r", "channels": []int64{c.ID}, "hosts": []string{"[bad"}}, "malformed"},
	} {
		st, b, _ := h.do("POST", "/api/v1/notify/routes", "admin", bad.body)
		if st != http.StatusBadRequest || !strings.Contains(string(b), bad.want) {
			t.Errorf("bad route %v: %d %s (want 400 mentioning %q)", bad.body, st, b, bad.want)
		}
	}
	// A channel a route uses cannot be deleted; an unused one can.
	if st, b, _ := h.do("DELETE", path, "admin", nil); st != http.StatusConflict {
		t.Errorf("delete a used channel: %d %s", st, b)
	}
	if st, b, _ := h.do("DELETE", fmt.Sprintf("/api/v1/notify/channels/%d", 424242), "admin", nil); st != http.StatusNotFound {
		t.Errorf("delete an unknown channel: %d %s", st, b)
	}
}
