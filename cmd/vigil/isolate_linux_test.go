package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/agent"
	"github.com/vigil-edr/vigil/internal/testkit"
	"github.com/vigil-edr/vigil/internal/transport"
)

const (
	labServerIP   = testkit.LabServerIP
	labInternetIP = testkit.LabInternetIP
)

func nsMust(t *testing.T, args ...string) string {
	t.Helper()
	return testkit.Run(t, args...)
}

func newNSLab(t *testing.T) *testkit.NetLab { return testkit.NewNetLab(t, "vge2") }

// lockedBuffer collects a child's output for the failure message.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestIsolateEndToEnd: the real server in a "server" namespace, the real
// vigil-agent binary enrolled to it from a "host" namespace whose local
// policy allows isolate and block, an "internet" namespace beside them. An
// admin isolates the host through the API: the host then reaches only the
// server (and the agent still answers a query), the internet neither
// reaches it nor is reached. Release leaves `nft list ruleset` as it was
// and the internet reachable; a block of the internet address with a 3 s
// expiry holds both ways and then lapses by itself.
func TestIsolateEndToEnd(t *testing.T) {
	l := newNSLab(t)
	began := time.Now()
	bin := filepath.Join(t.TempDir(), "vigil-agent")
	if out, err := exec.Command("go", "build", "-o", bin, "../vigil-agent").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	built := time.Since(began)

	// The server, listening in the server namespace (the bus is in-process,
	// so its only socket is the HTTPS listener).
	var (
		s      *Server
		tokOut bytes.Buffer
		err    error
	)
	data := t.TempDir()
	l.In(l.Server, func() {
		s, err = startServer(context.Background(), serverConfig{Data: data, Listen: labServerIP + ":8443", Rules: []string{"../../rules"},
			Workers: 2, AdminToken: &tokOut, Retention: time.Hour, MaxBytes: 1 << 30})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	lines := strings.Split(strings.TrimSpace(tokOut.String()), "\n")
	admin := strings.TrimSpace(lines[len(lines)-1])
	url := "https://" + s.Addr().String()
	// The admin's API client dials from inside the server namespace.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: s.auth.CAPool(), ServerName: labServerIP},
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			l.In(l.Server, func() {
				var d net.Dialer
				c, err = d.DialContext(ctx, network, addr)
			})
			return c, err
		},
	}}
	call := func(method, path string, body, into any) int {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, url+path, rd)
		req.Header.Set("Authorization", "Bearer "+admin)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if into != nil && resp.StatusCode < 300 {
			if err := json.Unmarshal(b, into); err != nil {
				t.Fatalf("%s %s: %v: %s", method, path, err, b)
			}
		}
		return resp.StatusCode
	}

	// The agent: enrolled from the host namespace with the CA fingerprint,
	// then run there with its sensors off and isolate and block allowed.
	plain, tok := transport.NewToken(time.Now().UTC(), time.Hour, 1, "isolate test")
	if err := s.db.CreateEnrollToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "agent.yaml")
	os.WriteFile(conf, []byte("data_dir: "+filepath.Join(dir, "agent")+"\nhealth_every: 1h\nheartbeat_every: 1s\nsensors:\n"+
		"  process: false\n  authlog: false\n  fim: false\n  network: false\n  inventory: false\n  sca: false\n"+
		"actions:\n  enabled: true\n  allow: [query, isolate, block]\n"), 0o600)
	if out, err := exec.Command("ip", "netns", "exec", l.Host, bin, "enroll", "--config", conf, "--server", url, "--token", plain,
		"--ca-fingerprint", s.auth.CAFingerprint()).CombinedOutput(); err != nil {
		t.Fatalf("enrol: %v: %s", err, out)
	}
	id, err := agent.LoadIdentity(filepath.Join(dir, "agent"))
	if err != nil {
		t.Fatal(err)
	}
	agentID := id.AgentID
	var agentLog lockedBuffer
	var exited chan error
	var cmd *exec.Cmd
	startAgent := func() {
		cmd = exec.Command("ip", "netns", "exec", l.Host, bin, "run", "--config", conf)
		cmd.Stdout, cmd.Stderr = &agentLog, &agentLog
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited = make(chan error, 1)
		go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(cmd, exited)
	}
	stopAgent := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	startAgent()
	t.Cleanup(func() {
		stopAgent()
		if t.Failed() {
			t.Logf("agent output:\n%s", agentLog.String())
		}
	})

	runAction := func(typ string, args map[string]string) actionResp {
		t.Helper()
		var out struct {
			Items []actionResp `json:"items"`
		}
		if code := call("POST", "/api/v1/actions", map[string]any{"type": typ, "agent_id": agentID, "args": args}, &out); code != 201 {
			t.Fatalf("request %s: %d", typ, code)
		}
		var r actionResp
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if code := call("GET", "/api/v1/actions/"+out.Items[0].ID, nil, &r); code != 200 {
				t.Fatalf("get action: %d", code)
			}
			switch r.State {
			case "succeeded", "failed", "refused", "expired", "cancelled":
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still %s after 20 s", typ, r.State)
			}
		}
	}
	query := func(stage string) {
		t.Helper()
		if r := runAction("query", map[string]string{"name": "users"}); r.State != "succeeded" || !strings.Contains(string(r.Output), `"root"`) {
			t.Fatalf("%s: query: %+v", stage, r)
		}
	}

	l.Listen(l.Inet, labInternetIP+":80")
	l.Listen(l.Host, "0.0.0.0:22")
	check := func(stage string, internet bool) {
		t.Helper()
		if !l.Reach(l.Host, s.Addr().String()) {
			t.Errorf("%s: host → server unreachable", stage)
		}
		if !l.Reach(l.Server, "10.77.1.1:22") {
			t.Errorf("%s: server → host unreachable", stage)
		}
		if got := l.Reach(l.Host, labInternetIP+":80"); got != internet {
			t.Errorf("%s: host → internet reachable %v, want %v", stage, got, internet)
		}
		if got := l.Reach(l.Inet, "10.77.2.1:22"); got != internet {
			t.Errorf("%s: internet → host reachable %v, want %v", stage, got, internet)
		}
	}

	query("before") // the agent runs and polls
	before := l.Ruleset()
	check("before", true)

	if r := runAction("isolate", nil); r.State != "succeeded" {
		t.Fatalf("isolate: %+v", r)
	}
	check("isolated", false)
	query("isolated")

	// A reboot while isolated: the agent stops, the kernel's rules are gone;
	// the agent starts again and isolates the host before anything else.
	stopAgent()
	nsMust(t, "ip", "netns", "exec", l.Host, "nft", "delete", "table", "inet", "vigil")
	check("rules lost", true)
	startAgent()
	for deadline := time.Now().Add(10 * time.Second); l.Reach(l.Host, labInternetIP+":80"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the restarted agent did not isolate the host again within 10 s")
		}
	}
	check("isolated after restart", false)
	query("isolated after restart")

	if r := runAction("release", nil); r.State != "succeeded" {
		t.Fatalf("release: %+v", r)
	}
	if after := l.Ruleset(); after != before {
		t.Errorf("ruleset after release differs:\n%s\nbefore:\n%s", after, before)
	}
	check("released", true)

	blocked := time.Now()
	if r := runAction("block", map[string]string{"cidr": labInternetIP, "duration": "3s"}); r.State != "succeeded" {
		t.Fatalf("block: %+v", r)
	}
	if l.Reach(l.Host, labInternetIP+":80") || l.Reach(l.Inet, "10.77.2.1:22") {
		t.Error("blocked address reachable")
	}
	if !l.Reach(l.Host, s.Addr().String()) {
		t.Error("server unreachable during a block")
	}
	query("blocked")
	for deadline := time.Now().Add(10 * time.Second); !l.Reach(l.Host, labInternetIP+":80"); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the block did not expire within 10 s")
		}
	}
	lapsed := time.Since(blocked)
	if !l.Reach(l.Inet, "10.77.2.1:22") {
		t.Error("inbound still blocked after expiry")
	}
	select {
	case err := <-exited:
		t.Fatalf("the agent exited: %v", err)
	default:
	}
	t.Logf("isolate, release and block through the API: build %v, block lapsed after %v, whole test %v",
		built.Round(time.Millisecond), lapsed.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}
