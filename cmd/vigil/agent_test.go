package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/agent"
	"github.com/vigil-edr/vigil/internal/agent/spool"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/simagent"
	"github.com/vigil-edr/vigil/internal/transport/client"
)

// Outage: the server is down while the agent records 1,000,000 events; when
// it comes back every event arrives, none twice.
func TestAgentOutageDeliversEverything(t *testing.T) {
	if testing.Short() {
		t.Skip("heavy: runs in the integration step of scripts/test.sh")
	}
	data := t.TempDir()
	addr := freeAddr(t)
	cfg := serverConfig{Data: data, Listen: addr, Rules: []string{"../../rules"}, Workers: 2, Retention: time.Hour, MaxBytes: 1 << 40}
	s1, err := startServer(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + addr
	id := enrolDirect(t, s1, url, "outage-01")
	pool := s1.auth.CAPool()
	s1.Close() // the outage starts

	c, err := client.New(url, id)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := spool.Open(spool.Options{Dir: filepath.Join(t.TempDir(), "spool")})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	a := agent.New(agent.Options{Spool: sp, Sender: c, Hostname: "outage-01", HealthEvery: time.Hour, MaxBackoff: 500 * time.Millisecond})
	const n = 1_000_000
	g := simagent.New(3, 1)
	ev := &event.Event{}
	now := time.Now()
	for i := 0; i < n; i++ {
		g.Next(ev, now)
		a.Record(ev)
	}
	if err := sp.Sync(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	time.Sleep(time.Second) // the agent tries and fails while the server is down

	s2, err := startServer(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	_ = pool
	deadline := time.Now().Add(10 * time.Minute)
	for sp.Stats().Depth > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("spool still holds %d events", sp.Stats().Depth)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	<-done
	waitScanned(t, s2, a.Stats().Sent)
	audit, err := s2.db.SequenceAudit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := audit[id.AgentID]
	// Health events recorded by the agent itself come on top of the n.
	want := a.Stats().Appended
	if uint64(got.Rows) != want || uint64(got.Distinct) != want || uint64(got.DistinctUpTo(want)) != want {
		t.Fatalf("stored rows %d distinct %d of %d recorded (1..n present: %d)", got.Rows, got.Distinct, want, got.DistinctUpTo(want))
	}
	if want < n {
		t.Fatalf("recorded %d < %d", want, n)
	}
	t.Logf("outage: %d events recorded offline, all stored exactly once after the restart", want)
}

func enrolDirect(t *testing.T, s *Server, url, host string) *client.Identity {
	t.Helper()
	acfg, err := enrolLocalAgent(context.Background(), s, url)
	if err != nil {
		t.Fatal(err)
	}
	id, err := agent.LoadIdentity(acfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// The whole chain on this host: the real process sensor (kernel audit), the
// agent, the server: a command reading /etc/shadow becomes an alert from the
// starter pack, attributed to this host.
func TestLocalAgentProcessToAlert(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for the kernel audit subsystem")
	}
	s, admin := testServer(t)
	url := "https://" + s.Addr().String()
	acfg, err := enrolLocalAgent(context.Background(), s, url)
	if err != nil {
		t.Fatal(err)
	}
	acfg.Sensors.AuthLog, acfg.Sensors.FIM = false, false
	acfg.HealthEvery, acfg.HeartbeatEvery = time.Hour, time.Second
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	agentDone := make(chan error, 1)
	go func() { agentDone <- agent.RunHost(ctx, acfg, s.cfg.Logger, agent.HostOptions{Shared: true}) }()
	defer func() { cancel(); <-agentDone }()

	var alerts struct {
		Items []struct {
			RuleTitle string `json:"rule_title"`
			Host      string `json:"host"`
			Fields    []struct{ Name, Value string }
		} `json:"items"`
	}
	marker := "vigil-e2e-" + strings.ReplaceAll(time.Now().Format("150405.000"), ".", "")
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Repeat the trigger until the sensor is up and the alert arrives.
		exec.Command("/bin/sh", "-c", "cat /etc/shadow /"+marker+" >/dev/null 2>&1").Run()
		time.Sleep(300 * time.Millisecond)
		api(t, s, admin, "GET", "/api/v1/alerts", nil, &alerts)
		found := false
		for _, a := range alerts.Items {
			if a.RuleTitle == "Password hashes read by a command line tool" {
				for _, f := range a.Fields {
					found = found || strings.Contains(f.Value, marker)
				}
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no alert for the shadow read within 20 s; alerts: %+v", alerts.Items)
		}
	}

	// The heartbeat (sent at start) put the agent's health on its host:
	// online, the process sensor running on kernel audit.
	var hosts struct {
		Items []struct {
			Online bool `json:"online"`
			Health *struct {
				Sensors []struct{ Name, Mechanism, State string }
				Spool   struct{ Records uint64 }
			} `json:"health"`
		} `json:"items"`
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		api(t, s, admin, "GET", "/api/v1/hosts", nil, &hosts)
		if len(hosts.Items) == 1 && hosts.Items[0].Online && hosts.Items[0].Health != nil {
			for _, sh := range hosts.Items[0].Health.Sensors {
				if sh.Name == "process" && sh.State == "running" && strings.HasPrefix(sh.Mechanism, "audit-netlink") {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no host online with a running process sensor in its health: %+v", hosts.Items)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A revoked agent's events are refused (403) and kept in its spool, never
// acknowledged and dropped.
func TestRevokedAgentKeepsEvents(t *testing.T) {
	s, admin := testServer(t)
	url := "https://" + s.Addr().String()
	id := enrolDirect(t, s, url, "revoked-01")
	if code := api(t, s, admin, "POST", "/api/v1/hosts/"+id.AgentID+"/revoke", nil, nil); code != 200 && code != 204 {
		t.Fatalf("revoke: %d", code)
	}
	c, err := client.New(url, id)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := spool.Open(spool.Options{Dir: filepath.Join(t.TempDir(), "spool")})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	a := agent.New(agent.Options{Spool: sp, Sender: c, Hostname: "revoked-01", HealthEvery: time.Hour, MaxBackoff: 50 * time.Millisecond})
	g := simagent.New(9, 0)
	ev := &event.Event{}
	for i := 0; i < 10; i++ {
		g.Next(ev, time.Now())
		a.Record(ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	a.Run(ctx)
	st := a.Stats()
	if st.Sent != 0 || st.Spool.Acked != 0 || st.Spool.Depth < 10 || st.SendErrors == 0 {
		t.Fatalf("revoked agent: sent %d, acked %d, depth %d, send errors %d: events must stay in the spool", st.Sent, st.Spool.Acked, st.Spool.Depth, st.SendErrors)
	}
}
