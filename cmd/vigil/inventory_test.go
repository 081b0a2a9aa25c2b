package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/agent"
	"github.com/vigil-edr/vigil/internal/inventory"
	"golang.org/x/sys/unix"
)

// The whole inventory path on this host: the real sensor, the agent's
// spool and sender, ingest, the bus, the pipeline's inventory recorder,
// SQLite and the API: the host's inventory is served with this machine's
// kernel, its root account and (on Debian) its bash package at the version
// dpkg-query reports.
func TestLocalAgentInventory(t *testing.T) {
	s, admin := testServer(t)
	url := "https://" + s.Addr().String()
	acfg, err := enrolLocalAgent(context.Background(), s, url)
	if err != nil {
		t.Fatal(err)
	}
	acfg.Sensors.Process, acfg.Sensors.AuthLog, acfg.Sensors.FIM, acfg.Sensors.Network = false, false, false, false
	acfg.HealthEvery = time.Hour
	id, err := agent.LoadIdentity(acfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	agentDone := make(chan error, 1)
	go func() { agentDone <- agent.RunHost(ctx, acfg, s.cfg.Logger, agent.HostOptions{Shared: true}) }()
	defer func() { cancel(); <-agentDone }()

	var inv inventory.Host
	deadline := time.Now().Add(20 * time.Second)
	for {
		if st := api(t, s, admin, "GET", "/api/v1/hosts/"+id.AgentID+"/inventory", nil, &inv); st != 200 {
			t.Fatalf("inventory: %d", st)
		}
		if inv.SnapshotID != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no complete inventory within 20 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	var u unix.Utsname
	unix.Uname(&u)
	if inv.OS == nil || inv.OS.KernelRelease != unix.ByteSliceToString(u.Release[:]) {
		t.Errorf("os %+v", inv.OS)
	}
	root := false
	for _, us := range inv.Users {
		root = root || (us.Name == "root" && us.UID == 0)
	}
	if !root {
		t.Errorf("no root user among %d users", len(inv.Users))
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "bash").Output(); err == nil {
		want, found := strings.TrimSpace(string(out)), false
		for _, p := range inv.Packages {
			if p.Name == "bash" && p.Manager == "dpkg" {
				found = true
				if p.Version != want {
					t.Errorf("bash %s, dpkg-query says %s", p.Version, want)
				}
			}
		}
		if !found {
			t.Errorf("bash missing from %d packages", len(inv.Packages))
		}
	} else {
		t.Logf("no dpkg-query (%v): package versions not cross-checked", err)
	}
}
