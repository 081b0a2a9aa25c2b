package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/agent"
	"github.com/vigil-edr/vigil/internal/transport"
	"golang.org/x/sys/unix"
)

// nsLab is three network namespaces: "host" (the agent's) joined by veth
// pairs to "server" (10.77.1.2) and "internet" (10.77.2.2); the host is
// 10.77.1.1 and 10.77.2.1. The same shape as internal/agent/action's
// netLab, which is test code of another package.
type nsLab struct {
	t                  *testing.T
	host, server, inet string
}

const (
	labServerIP   = "10.77.1.2"
	labInternetIP = "10.77.2.2"
)

func nsMust(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newNSLab(t *testing.T) *nsLab {
	if testing.Short() {
		t.Skip("network namespace test: not with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	for _, bin := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (apt-get install iproute2 nftables)", bin)
		}
	}
	id := os.Getpid() % 100000
	l := &nsLab{t: t, host: fmt.Sprintf("vge2h%d", id), server: fmt.Sprintf("vge2s%d", id), inet: fmt.Sprintf("vge2i%d", id)}
	for _, ns := range []string{l.host, l.server, l.inet} {
		exec.Command("ip", "netns", "del", ns).Run() // left over by a killed run
		nsMust(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		nsMust(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	pair := func(peer, hostIf, peerIf, hostIP, peerIP string) {
		nsMust(t, "ip", "link", "add", hostIf, "netns", l.host, "type", "veth", "peer", "name", peerIf, "netns", peer)
		nsMust(t, "ip", "-n", l.host, "addr", "add", hostIP+"/24", "dev", hostIf)
		nsMust(t, "ip", "-n", peer, "addr", "add", peerIP+"/24", "dev", peerIf)
		nsMust(t, "ip", "-n", l.host, "link", "set", hostIf, "up")
		nsMust(t, "ip", "-n", peer, "link", "set", peerIf, "up")
	}
	pair(l.server, "to-srv", "to-host", "10.77.1.1", labServerIP)
	pair(l.inet, "to-net", "to-host", "10.77.2.1", labInternetIP)
	return l
}

// in runs fn on an OS thread moved into namespace ns. The goroutine exits
// locked, so the runtime throws the thread away and nothing else runs in
// ns; sockets fn creates stay in ns whichever thread uses them later.
func (l *nsLab) in(ns string, fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			l.t.Error(err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			l.t.Error(err)
			return
		}
		fn()
	}()
	<-done
}

// listen accepts (and closes) TCP connections on addr in ns.
func (l *nsLab) listen(ns, addr string) {
	var ln net.Listener
	l.in(ns, func() {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			l.t.Error(err)
		}
	})
	if ln == nil {
		l.t.FailNow()
	}
	l.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// reach reports whether a TCP connection from ns to addr succeeds.
func (l *nsLab) reach(ns, addr string) bool {
	ok := false
	l.in(ns, func() {
		c, err := net.DialTimeout("tcp", addr, 400*time.Millisecond)
		if err == nil {
			c.Close()
			ok = true
		}
	})
	return ok
}

func (l *nsLab) ruleset() string {
	return nsMust(l.t, "ip", "netns", "exec", l.host, "nft", "list", "ruleset")
}

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
	l.in(l.server, func() {
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
			l.in(l.server, func() {
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
	if out, err := exec.Command("ip", "netns", "exec", l.host, bin, "enroll", "--config", conf, "--server", url, "--token", plain,
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
		cmd = exec.Command("ip", "netns", "exec", l.host, bin, "run", "--config", conf)
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

	l.listen(l.inet, labInternetIP+":80")
	l.listen(l.host, "0.0.0.0:22")
	check := func(stage string, internet bool) {
		t.Helper()
		if !l.reach(l.host, s.Addr().String()) {
			t.Errorf("%s: host → server unreachable", stage)
		}
		if !l.reach(l.server, "10.77.1.1:22") {
			t.Errorf("%s: server → host unreachable", stage)
		}
		if got := l.reach(l.host, labInternetIP+":80"); got != internet {
			t.Errorf("%s: host → internet reachable %v, want %v", stage, got, internet)
		}
		if got := l.reach(l.inet, "10.77.2.1:22"); got != internet {
			t.Errorf("%s: internet → host reachable %v, want %v", stage, got, internet)
		}
	}

	query("before") // the agent runs and polls
	before := l.ruleset()
	check("before", true)

	if r := runAction("isolate", nil); r.State != "succeeded" {
		t.Fatalf("isolate: %+v", r)
	}
	check("isolated", false)
	query("isolated")

	// A reboot while isolated: the agent stops, the kernel's rules are gone;
	// the agent starts again and isolates the host before anything else.
	stopAgent()
	nsMust(t, "ip", "netns", "exec", l.host, "nft", "delete", "table", "inet", "vigil")
	check("rules lost", true)
	startAgent()
	for deadline := time.Now().Add(10 * time.Second); l.reach(l.host, labInternetIP+":80"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the restarted agent did not isolate the host again within 10 s")
		}
	}
	check("isolated after restart", false)
	query("isolated after restart")

	if r := runAction("release", nil); r.State != "succeeded" {
		t.Fatalf("release: %+v", r)
	}
	if after := l.ruleset(); after != before {
		t.Errorf("ruleset after release differs:\n%s\nbefore:\n%s", after, before)
	}
	check("released", true)

	blocked := time.Now()
	if r := runAction("block", map[string]string{"cidr": labInternetIP, "duration": "3s"}); r.State != "succeeded" {
		t.Fatalf("block: %+v", r)
	}
	if l.reach(l.host, labInternetIP+":80") || l.reach(l.inet, "10.77.2.1:22") {
		t.Error("blocked address reachable")
	}
	if !l.reach(l.host, s.Addr().String()) {
		t.Error("server unreachable during a block")
	}
	query("blocked")
	for deadline := time.Now().Add(10 * time.Second); !l.reach(l.host, labInternetIP+":80"); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the block did not expire within 10 s")
		}
	}
	lapsed := time.Since(blocked)
	if !l.reach(l.inet, "10.77.2.1:22") {
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
