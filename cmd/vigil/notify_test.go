package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/notify"
	"github.com/vigil-edr/vigil/internal/wire"
)

// An alert raised by the running server reaches a webhook configured
// through the API, signed. The receiver is on loopback, which the server
// reaches only because --notify-allow names it.
func TestServerNotifiesWebhook(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	var sigOK []bool
	const secret = "server-test-hmac-secret"
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		err := notify.VerifySignature([]byte(secret), r.Header.Get("X-Vigil-Timestamp"), r.Header.Get("X-Vigil-Signature"), b, time.Now(), time.Minute)
		mu.Lock()
		bodies, sigOK = append(bodies, b), append(sigOK, err == nil)
		mu.Unlock()
	}))
	defer rcv.Close()

	var out bytes.Buffer
	s, err := startServer(context.Background(), serverConfig{
		Data: t.TempDir(), Listen: "127.0.0.1:0", Rules: []string{"../../rules"}, Workers: 1, AdminToken: &out,
		Retention: time.Hour, MaxBytes: 1 << 30, NotifyAllow: []string{"127.0.0.1/32"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	admin := strings.TrimSpace(lines[len(lines)-1])

	var ch struct {
		ID int64 `json:"id"`
	}
	if code := api(t, s, admin, "POST", "/api/v1/notify/channels", map[string]any{
		"name": "soc", "kind": "webhook", "url": rcv.URL + "/hook", "secret": secret}, &ch); code != http.StatusCreated {
		t.Fatalf("create channel: %d", code)
	}
	if code := api(t, s, admin, "POST", "/api/v1/notify/routes", map[string]any{
		"name": "discovery", "tags": []string{"attack.t1033"}, "channels": []int64{ch.ID}}, nil); code != http.StatusCreated {
		t.Fatalf("create route: %d", code)
	}
	c := enrolAgent(t, s, admin, "web-07")
	ev := &event.Event{Product: "linux", Categories: []string{"process_creation"}, Time: time.Now().UTC()}
	ev.Add("Image", "/usr/bin/whoami")
	ev.Add("User", "www-data")
	start := time.Now()
	send(t, c, &wire.Batch{Version: wire.Version, BootEpoch: 1, Events: []wire.Event{wire.FromEvent(1, ev)}})

	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(bodies)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no notification within 10 s of the event")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("notified %v after the event", time.Since(start).Round(time.Millisecond))
	mu.Lock()
	defer mu.Unlock()
	var body notify.WebhookBody
	if err := json.Unmarshal(bodies[0], &body); err != nil {
		t.Fatal(err)
	}
	if !sigOK[0] || body.Event != notify.EventCreated || body.Alert.Host != "web-07" || !strings.Contains(body.Alert.RuleTitle, "web server") {
		t.Errorf("notification %+v (signature ok: %v)", body, sigOK[0])
	}
}
