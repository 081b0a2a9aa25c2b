package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfig(t *testing.T) {
	c, err := LoadConfig("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Sensors.SCA || !c.Sensors.SCABuiltin || c.Sensors.SCACommands || c.Sensors.SCAEvery != 12*time.Hour {
		t.Errorf("sca defaults %+v", c.Sensors)
	}
	if c.SpoolMaxBytes != 512<<20 || c.Sensors.AuthLog || !c.Sensors.Process || len(c.Sensors.FIMPaths) != 2 || c.LogLevel != "info" ||
		!c.Sensors.Inventory || c.Sensors.InventoryDiffEvery != 5*time.Minute || c.Sensors.InventorySnapshotEvery != 12*time.Hour ||
		c.HeartbeatEvery != 45*time.Second || c.Limits.CPUPercent != 5 || c.Limits.RSSHardBytes != 0 ||
		c.Limits.MemorySoftBytes != DefaultLimits().MemorySoftBytes || c.Limits.SampleEvery != 5*time.Second {
		t.Errorf("config %+v", c)
	}
	want := map[string]string{
		"plain_http":               "want an https:// URL",
		"relative_dir":             "want an absolute path",
		"tiny_spool":               "at least 16 MiB",
		"unknown_key":              "procss",
		"log_level":                "want debug, info, warn or error",
		"inventory_diff_every":     "sensors.inventory_diff_every 1s: want at least 10s",
		"inventory_snapshot_every": "sensors.inventory_snapshot_every 10m0s: want at least 1h",
		"sca_every":                "sensors.sca_every 1m0s: want at least 10m",
		"sca_relative":             `sensors.sca_policies: "policies/cis.yml" is not an absolute path`,
		"cpu_percent":              "limits.cpu_percent 0: want more than 0",
		"cpu_window":               "limits.cpu_window 6s: want at least two samples (10s)",
		"memory_soft":              "limits.memory_soft_bytes 300000000: want less than rss_hard_bytes 200000000",
		"rss_hard":                 "limits.rss_hard_bytes 1000000: want 0 (off) or at least 64 MiB",
		"heartbeat_every":          "heartbeat_every 1h0m0s: want 1s to 10m",
		"actions_allow":            `actions.allow: "shell" is not an action`,
		"actions_isolate_allow":    `actions.isolate_allow: "10.0.0.0/33" is not an IP address or CIDR`,
		"actions_max_collect":      "actions.max_collect_bytes 10: want 1 KiB to 1 GiB",
	}
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) != len(want) {
		t.Fatalf("%d bad fixtures, %d expectations", len(files), len(want))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".bad.yaml")
		_, err := LoadConfig(f)
		if err == nil || !strings.Contains(err.Error(), want[name]) || !strings.Contains(err.Error(), f) {
			t.Errorf("%s: error %v, want one naming the file and containing %q", f, err, want[name])
		}
	}
}

// A policy file listed in sensors.sca_policies is parsed at load, so a
// malformed one stops the agent with its file and place.
func TestConfigBadPolicy(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "bad.yml")
	cfg := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(pol, []byte("checks: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte("sensors:\n  sca_policies: ["+pol+"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(cfg)
	if err == nil || !strings.Contains(err.Error(), "sensors.sca_policies: invalid policy: "+pol+":1:1: no policy section") {
		t.Fatalf("error %v", err)
	}
}
