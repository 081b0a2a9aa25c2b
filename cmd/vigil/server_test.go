package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/simagent"
	"github.com/vigil-edr/vigil/internal/transport/client"
	"github.com/vigil-edr/vigil/internal/wire"
)

// testServer starts a real server (embedded NATS JetStream, SQLite) in a
// temporary directory and returns it with its admin token.
func testServer(t *testing.T, rules ...string) (*Server, string) {
	t.Helper()
	var out bytes.Buffer
	if len(rules) == 0 {
		rules = []string{"../../rules"}
	}
	s, err := startServer(context.Background(), serverConfig{
		Data: t.TempDir(), Listen: "127.0.0.1:0", Rules: rules, Workers: 2, AdminToken: &out,
		Retention: time.Hour, MaxBytes: 1 << 30,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return s, strings.TrimSpace(lines[len(lines)-1])
}

// api calls the REST API with the admin token.
func api(t *testing.T, s *Server, token, method, path string, body any, into any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "https://"+s.Addr().String()+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.auth.CAPool(), ServerName: "127.0.0.1"}}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if into != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, into); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

func enrolAgent(t *testing.T, s *Server, admin, host string) *client.Client {
	t.Helper()
	var tok struct {
		Secret string `json:"secret"`
	}
	if code := api(t, s, admin, "POST", "/api/v1/enrollment-tokens", map[string]any{"max_uses": 1, "note": host}, &tok); code != 201 && code != 200 {
		t.Fatalf("create enrolment token: status %d", code)
	}
	url := "https://" + s.Addr().String()
	id, err := client.Enroll(context.Background(), url, tok.Secret, client.Trust{CAFingerprint: s.auth.CAFingerprint()}, client.HostInfo{Hostname: host, OS: "linux", Arch: "amd64", Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(url, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func send(t *testing.T, c *client.Client, b *wire.Batch) {
	t.Helper()
	body, err := wire.Encode(b, "zstd")
	if err != nil {
		t.Fatal(err)
	}
	for {
		status, resp, retry, err := c.SendBatch(context.Background(), body, "zstd")
		if err != nil {
			t.Fatal(err)
		}
		if status == http.StatusOK {
			return
		}
		if status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable {
			t.Fatalf("send: %d %s", status, resp)
		}
		time.Sleep(max(retry, 20*time.Millisecond))
	}
}

func corpusLinuxRules(t *testing.T) string {
	c, _ := filepath.Abs("../../../shared/corpus/sigma/rules/linux")
	if _, err := os.Stat(c); err != nil {
		t.Skipf("CORPUS MISSING: %s not found", c)
	}
	return c
}

// The first check: a fresh server, an enrolment token, an agent that
// enrols and sends an event matching a SigmaHQ Linux rule, and the alert in
// GET /api/v1/alerts within 2 s.
func TestServerEnrolSendAlert(t *testing.T) {
	s, admin := testServer(t, corpusLinuxRules(t))
	c := enrolAgent(t, s, admin, "web-01")

	ev := &event.Event{Product: "linux", Categories: []string{"process_creation"}, Time: time.Now().UTC()}
	ev.Add("Image", "/usr/bin/base64")
	ev.Add("CommandLine", "base64 -d /tmp/.x | bash")
	ev.Add("ParentImage", "/usr/bin/bash")
	ev.Add("User", "www-data")
	start := time.Now()
	send(t, c, &wire.Batch{Version: wire.Version, BootEpoch: 1, Events: []wire.Event{wire.FromEvent(1, ev)}})

	var alerts struct {
		Items []struct {
			RuleTitle string `json:"rule_title"`
			Host      string `json:"host"`
			Level     string `json:"level"`
		} `json:"items"`
	}
	// Several rules match this event and their alerts are stored
	// independently, so poll until the one this test is about is there.
	found := func() bool {
		for _, a := range alerts.Items {
			if a.Host == "web-01" && strings.Contains(a.RuleTitle, "Base64") {
				return true
			}
		}
		return false
	}
	for {
		if code := api(t, s, admin, "GET", "/api/v1/alerts", nil, &alerts); code != 200 {
			t.Fatalf("list alerts: %d", code)
		}
		if found() {
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("no Base64 alert for web-01 within 2 s of sending the event; alerts: %+v", alerts.Items)
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Logf("alert after %s: %+v", time.Since(start).Round(time.Millisecond), alerts.Items)
	// The event is searchable too.
	var evs struct {
		Items []map[string]any `json:"items"`
	}
	if code := api(t, s, admin, "GET", "/api/v1/events?q=base64&host=web-01", nil, &evs); code != 200 || len(evs.Items) != 1 {
		t.Errorf("event search: status %d, %d results", code, len(evs.Items))
	}
}

// Replaying the same 100k events three times, in other batch sizes and
// orders, stores exactly 100k.
func TestReplayStoresExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("heavy: runs in the integration step of scripts/test.sh")
	}
	s, admin := testServer(t)
	c := enrolAgent(t, s, admin, "replay-01")
	const n = 100_000
	g := simagent.New(7, 1)
	evs := make([]wire.Event, n)
	ev := &event.Event{}
	now := time.Now()
	for i := range evs {
		seq, _ := g.Next(ev, now)
		evs[i] = wire.FromEvent(seq, ev)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for pass, size := range []int{1000, 700, 1300} {
		var batches [][]wire.Event
		for i := 0; i < n; i += size {
			batches = append(batches, evs[i:min(i+size, n)])
		}
		switch pass {
		case 1: // reversed
			for i, j := 0, len(batches)-1; i < j; i, j = i+1, j-1 {
				batches[i], batches[j] = batches[j], batches[i]
			}
		case 2: // shuffled
			rnd.Shuffle(len(batches), func(i, j int) { batches[i], batches[j] = batches[j], batches[i] })
		}
		for _, b := range batches {
			send(t, c, &wire.Batch{Version: wire.Version, BootEpoch: 1, Events: b})
		}
	}
	waitScanned(t, s, 3*n)
	audit, err := s.db.SequenceAudit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	a := audit[c.Identity().AgentID]
	if a.Rows != n || a.Distinct != n || a.DistinctUpTo(n) != n {
		t.Fatalf("stored rows %d, distinct %d, 1..%d present %d: want exactly %d", a.Rows, a.Distinct, n, a.DistinctUpTo(n), n)
	}
	var dups uint64
	for _, w := range s.workers {
		dups += w.Stats().Duplicates
	}
	if dups != 2*n {
		t.Errorf("duplicates dropped = %d, want %d", dups, 2*n)
	}
}

// waitScanned waits until the detection workers have handled n events.
func waitScanned(t *testing.T, s *Server, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var got uint64
		for _, w := range s.workers {
			got += w.Stats().Events
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers handled %d of %d events", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Hostile batches get their error code from the wire table and leave the
// server healthy: a good batch right after is stored.
func TestServerRefusesBadBatches(t *testing.T) {
	s, admin := testServer(t)
	c := enrolAgent(t, s, admin, "hostile-01")
	deep := `{"v":1,"boot_epoch":1,"events":[{"seq":1,"time":"2026-01-01T00:00:00Z","product":"linux","fields":[["a",` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `]]}]}`
	huge := `{"v":1,"boot_epoch":1,"events":[{"seq":1,"time":"2026-01-01T00:00:00Z","product":"linux","fields":[["a","` + strings.Repeat("x", 300<<10) + `"]]}]}`
	cases := []struct {
		name, body, enc, code string
		status                int
	}{
		{"not json", "{nope", "", "bad_json", 400},
		{"invalid utf-8", "{\"v\":1,\"boot_epoch\":1,\"events\":[{\"seq\":1,\"time\":\"2026-01-01T00:00:00Z\",\"product\":\"linux\",\"fields\":[[\"a\",\"\xff\xfe\"]]}]}", "", "invalid_utf8", 400},
		{"too deep", deep, "", "too_deep", 400},
		{"event too large", huge, "", "event_too_large", 413},
		{"unknown encoding", "{}", "br", "bad_encoding", 415},
		{"wrong version", `{"v":9,"boot_epoch":1,"events":[]}`, "", "bad_version", 400},
	}
	for _, tc := range cases {
		status, resp, _, err := c.SendBatch(context.Background(), []byte(tc.body), tc.enc)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !strings.Contains(string(resp), `"`+tc.code+`"`) {
			t.Errorf("%s: status %d body %s, want code %s", tc.name, status, resp, tc.code)
		}
		if status != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, status, tc.status)
		}
	}
	ev := &event.Event{Product: "linux", Categories: []string{"process_creation"}, Time: time.Now().UTC()}
	ev.Add("Image", "/usr/bin/id")
	send(t, c, &wire.Batch{Version: wire.Version, BootEpoch: 1, Events: []wire.Event{wire.FromEvent(1, ev)}})
	waitScanned(t, s, 1)
	if code := api(t, s, admin, "GET", "/readyz", nil, nil); code != 200 {
		t.Errorf("readyz after hostile batches: %d", code)
	}
}

// Agentless syslog: a sudo line over TCP becomes an event and an alert from
// Vigil's own rule, attributed to the sending address.
func TestServerSyslogToAlert(t *testing.T) {
	var out bytes.Buffer
	s, err := startServer(context.Background(), serverConfig{
		Data: t.TempDir(), Listen: "127.0.0.1:0", Rules: []string{"../../rules"}, Workers: 1, AdminToken: &out,
		Retention: time.Hour, MaxBytes: 1 << 30, SyslogTCP: "127.0.0.1:0", SyslogUDP: "127.0.0.1:0",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	admin := strings.TrimSpace(lines[len(lines)-1]) // the token is printed last
	_, tcp := s.syslog.Addrs()
	c, err := net.Dial("tcp", tcp.String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "<85>%s web7 sudo: alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/bash\n", time.Now().Format(time.Stamp))
	c.Close()
	var alerts struct {
		Items []struct {
			RuleTitle string `json:"rule_title"`
			Host      string `json:"host"`
		} `json:"items"`
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(alerts.Items) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no alert from the syslog line")
		}
		time.Sleep(50 * time.Millisecond)
		api(t, s, admin, "GET", "/api/v1/alerts", nil, &alerts)
	}
	if a := alerts.Items[0]; a.RuleTitle != "Interactive root shell through sudo" || a.Host != "127.0.0.1" {
		t.Errorf("alert %+v", a)
	}
}
