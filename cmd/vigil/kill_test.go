package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/simagent"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
	"github.com/vigil-edr/vigil/internal/transport/client"
	"github.com/vigil-edr/vigil/internal/wire"
)

// The reliability check: agents keep sending while the server process is
// killed with SIGKILL ten times and restarted; afterwards every event the
// server acknowledged is stored, and none twice.
func TestKillNineKeepsAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("heavy: runs in the integration step of scripts/test.sh")
	}
	bin := filepath.Join(t.TempDir(), "vigil")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := t.TempDir()
	addr := freeAddr(t)
	rules, _ := filepath.Abs("../../rules")

	// An enrolment token for three agents, made before the first start.
	out, err := exec.Command(bin, "token", "create", "--data", data, "--uses", "3").Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	token := strings.TrimSpace(string(out))

	// The first start prints the console admin's password and then, after
	// its heading, the admin API token: take the line after the heading.
	tokenc := make(chan string, 1)
	start := func(first bool) *exec.Cmd {
		cmd := exec.Command(bin, "server", "--data", data, "--listen", addr, "--rules", rules)
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			sc := bufio.NewScanner(stdout)
			next := false
			for sc.Scan() {
				l := strings.TrimSpace(sc.Text())
				if first && next && l != "" {
					tokenc <- l
					first = false
				}
				next = strings.Contains(l, "admin API token")
			}
		}()
		waitHealthy(t, data, addr)
		return cmd
	}
	srv := start(true)
	var adminToken string
	select {
	case adminToken = <-tokenc:
	case <-time.After(10 * time.Second):
		t.Fatal("the first start printed no admin API token")
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()

	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(data, "pki", "ca.crt"))
	if err != nil || !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("reading the CA: %v", err)
	}
	url := "https://" + addr
	const agents = 3
	clients := make([]*client.Client, agents)
	for i := range clients {
		id, err := client.Enroll(context.Background(), url, token, client.Trust{CAPool: pool}, client.HostInfo{Hostname: fmt.Sprintf("kill-%d", i), OS: "linux", Arch: "amd64", Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		clients[i], _ = client.New(url, id)
	}

	// Agents send until told to stop, retrying every batch until it is
	// acknowledged, as the spool does.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	acked := make([]atomic.Uint64, agents)
	var attempts, failures atomic.Uint64
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := simagent.New(uint64(100+i), 1)
			ev := &event.Event{}
			for {
				select {
				case <-stop:
					return
				default:
				}
				b := &wire.Batch{Version: wire.Version, BootEpoch: 1}
				for j := 0; j < 200; j++ {
					seq, _ := g.Next(ev, time.Now())
					b.Events = append(b.Events, wire.FromEvent(seq, ev))
				}
				body, _ := wire.Encode(b, "zstd")
				for {
					attempts.Add(1)
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					status, _, _, err := c.SendBatch(ctx, body, "zstd")
					cancel()
					if err == nil && status == http.StatusOK {
						acked[i].Store(b.LastSeq())
						break
					}
					failures.Add(1)
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}

	for k := 0; k < 10; k++ {
		time.Sleep(time.Duration(300+k*50) * time.Millisecond)
		if err := srv.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		srv.Wait()
		srv = start(false)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	// Let detection drain the bus, then stop the server cleanly and audit.
	waitDrained(t, addr, adminToken, pool)
	srv.Process.Signal(syscall.SIGTERM)
	srv.Wait()
	db, err := sqlite.Open(context.Background(), filepath.Join(data, "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	audit, err := db.SequenceAudit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for i, c := range clients {
		a := audit[c.Identity().AgentID]
		want := acked[i].Load()
		total += want
		if got := a.DistinctUpTo(want); uint64(got) != want {
			t.Errorf("agent %d: %d of its %d acknowledged events are stored", i, got, want)
		}
		if a.Rows != a.Distinct {
			t.Errorf("agent %d: %d rows for %d distinct events", i, a.Rows, a.Distinct)
		}
	}
	t.Logf("10 SIGKILLs: %d events acknowledged, %d send attempts, %d failed or refused during restarts", total, attempts.Load(), failures.Load())
	if total == 0 {
		t.Fatal("nothing was acknowledged")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitHealthy(t *testing.T, data, addr string) {
	t.Helper()
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := hc.Get("https://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server on %s (data %s) did not become ready", addr, data)
}

// waitDrained polls /metrics until the bus holds no unacknowledged batch.
func waitDrained(t *testing.T, addr, token string, pool *x509.CertPool) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", "https://"+addr+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, l := range strings.Split(string(body), "\n") {
				if v, ok := strings.CutPrefix(l, "vigil_bus_pending_batches "); ok {
					if n, _ := strconv.ParseFloat(v, 64); n == 0 {
						return
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the bus did not drain (or /metrics refused the admin token)")
}
