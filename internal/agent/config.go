package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/agent/action"
	"github.com/vigil-edr/vigil/internal/command"

	"go.yaml.in/yaml/v3"

	"github.com/vigil-edr/vigil/internal/agent/posture"
)

// Config is the agent's configuration file. Every field has a default; a
// file only names what it changes. Unknown keys are errors.
type Config struct {
	// Server is the Vigil server's URL, e.g. https://vigil.example:8443.
	// Enrolment records it; the file may override it.
	Server string `yaml:"server"`
	// DataDir holds the identity (key and certificate) and the spool.
	DataDir string `yaml:"data_dir"`
	// SpoolMaxBytes bounds the spool; the oldest events are dropped (and
	// counted) beyond it.
	SpoolMaxBytes int64 `yaml:"spool_max_bytes"`
	// HealthEvery is how often the agent records an agent_health event.
	HealthEvery time.Duration `yaml:"health_every"`
	// HeartbeatEvery is how often the agent sends the server a heartbeat
	// with its health; the server shows an agent online for three of them.
	HeartbeatEvery time.Duration `yaml:"heartbeat_every"`
	// Limits are the agent's self-protection (docs/agent.md).
	Limits  Limits `yaml:"limits"`
	Sensors struct {
		Process  bool     `yaml:"process"`
		AuthLog  bool     `yaml:"authlog"`
		FIM      bool     `yaml:"fim"`
		Network  bool     `yaml:"network"`
		FIMPaths []string `yaml:"fim_paths"` // empty: the built-in list
		AuthPath string   `yaml:"authlog_path"`
		// Inventory reports the host's packages, accounts, ports, services
		// and kernel modules: a full snapshot every InventorySnapshotEvery,
		// a comparison every InventoryDiffEvery.
		Inventory              bool          `yaml:"inventory"`
		InventorySnapshotEvery time.Duration `yaml:"inventory_snapshot_every"`
		InventoryDiffEvery     time.Duration `yaml:"inventory_diff_every"`
		// SCA runs configuration assessment (docs/sca.md) every SCAEvery
		// and when a file a policy reads changes: the built-in baselines
		// (unless SCABuiltin is false) and the policy files in SCAPolicies.
		// Command rules run only with SCACommands: a policy's commands run
		// as root, so only the host's owner may allow them.
		SCA         bool          `yaml:"sca"`
		SCAEvery    time.Duration `yaml:"sca_every"`
		SCABuiltin  bool          `yaml:"sca_builtin"`
		SCAPolicies []string      `yaml:"sca_policies"`
		SCACommands bool          `yaml:"sca_commands"`
	} `yaml:"sensors"`
	// Actions is the local policy for response actions (docs/actions.md).
	Actions struct {
		// Enabled: poll the server for actions at all.
		Enabled bool `yaml:"enabled"`
		// Allow names the actions this host carries out: kill,
		// quarantine, collect, query, isolate, block.
		Allow []string `yaml:"allow"`
		// IsolateAllow are CIDRs that stay reachable while isolated.
		IsolateAllow []string `yaml:"isolate_allow"`
		// MaxCollectBytes bounds a collected file.
		MaxCollectBytes int64 `yaml:"max_collect_bytes"`
	} `yaml:"actions"`
	LogLevel string `yaml:"log_level"` // debug, info, warn, error
}

// Limits bound the agent's own use of the host. A watchdog samples the
// agent's CPU time and resident memory every SampleEvery.
type Limits struct {
	// CPUPercent is the CPU budget in percent of one core, averaged over
	// CPUWindow. Above it the sensors back off (hashing deferred, inventory
	// comparisons postponed, audit records read in slower rounds) until
	// the average falls below half the budget; agent_health events say when.
	CPUPercent float64       `yaml:"cpu_percent"`
	CPUWindow  time.Duration `yaml:"cpu_window"`
	// MemorySoftBytes is the Go runtime's soft memory limit
	// (runtime/debug.SetMemoryLimit, like GOMEMLIMIT): the collector works
	// harder as the heap nears it. 0 leaves the runtime's default.
	MemorySoftBytes int64 `yaml:"memory_soft_bytes"`
	// RSSHardBytes: when the resident memory stays above it for two
	// samples, the agent stops cleanly (everything spooled is on disk) and
	// starts again, waiting 1 s, 2 s, 4 s … (at most RestartMaxWait) when
	// it restarted within the last hour. 0 disables it.
	RSSHardBytes   int64         `yaml:"rss_hard_bytes"`
	RestartMaxWait time.Duration `yaml:"restart_max_wait"`
	SampleEvery    time.Duration `yaml:"sample_every"`
}

// DefaultLimits are the limits without configuration.
func DefaultLimits() Limits {
	return Limits{CPUPercent: 10, CPUWindow: 30 * time.Second, MemorySoftBytes: 96 << 20,
		RSSHardBytes: 256 << 20, RestartMaxWait: 10 * time.Minute, SampleEvery: 5 * time.Second}
}

func (l *Limits) validate() error {
	switch {
	case l.CPUPercent <= 0 || l.CPUPercent > 400:
		return fmt.Errorf("limits.cpu_percent %v: want more than 0 and at most 400", l.CPUPercent)
	case l.SampleEvery < time.Second || l.SampleEvery > time.Minute:
		return fmt.Errorf("limits.sample_every %s: want 1s to 1m", l.SampleEvery)
	case l.CPUWindow < 2*l.SampleEvery || l.CPUWindow > time.Hour:
		return fmt.Errorf("limits.cpu_window %s: want at least two samples (%s) and at most 1h", l.CPUWindow, 2*l.SampleEvery)
	case l.MemorySoftBytes != 0 && l.MemorySoftBytes < 32<<20:
		return fmt.Errorf("limits.memory_soft_bytes %d: want 0 (off) or at least 32 MiB", l.MemorySoftBytes)
	case l.RSSHardBytes != 0 && l.RSSHardBytes < 64<<20:
		return fmt.Errorf("limits.rss_hard_bytes %d: want 0 (off) or at least 64 MiB", l.RSSHardBytes)
	case l.RSSHardBytes != 0 && l.MemorySoftBytes >= l.RSSHardBytes:
		return fmt.Errorf("limits.memory_soft_bytes %d: want less than rss_hard_bytes %d", l.MemorySoftBytes, l.RSSHardBytes)
	case l.RestartMaxWait < time.Second || l.RestartMaxWait > 24*time.Hour:
		return fmt.Errorf("limits.restart_max_wait %s: want 1s to 24h", l.RestartMaxWait)
	}
	return nil
}

// DefaultConfig is the configuration without a file.
func DefaultConfig() Config {
	var c Config
	c.DataDir = "/var/lib/vigil-agent"
	c.SpoolMaxBytes = 1 << 30
	c.HealthEvery = time.Minute
	c.HeartbeatEvery = 30 * time.Second
	c.Limits = DefaultLimits()
	c.Sensors.Process, c.Sensors.AuthLog, c.Sensors.FIM, c.Sensors.Network = true, true, true, true
	c.Sensors.Inventory = true
	c.Sensors.InventorySnapshotEvery = 12 * time.Hour
	c.Sensors.InventoryDiffEvery = time.Minute
	c.Sensors.SCA, c.Sensors.SCABuiltin = true, true
	c.Sensors.SCAEvery = 12 * time.Hour
	c.Actions.Enabled = true
	c.Actions.Allow = slices.Clone(action.DefaultAllow)
	c.Actions.MaxCollectBytes = 32 << 20
	c.LogLevel = "info"
	return c
}

// LoadConfig reads path over the defaults and validates the result; an empty
// path means the defaults alone.
func LoadConfig(path string) (Config, error) {
	c := DefaultConfig()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return c, err
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // an empty file is the defaults
			return c, fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := c.Validate(); err != nil {
		if path != "" {
			return c, fmt.Errorf("%s: %w", path, err)
		}
		return c, err
	}
	return c, nil
}

// Validate checks every setting once, at load.
func (c *Config) Validate() error {
	if c.Server != "" {
		u, err := url.Parse(c.Server)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("server %q: want an https:// URL", c.Server)
		}
	}
	if c.DataDir == "" || !filepath.IsAbs(c.DataDir) {
		return fmt.Errorf("data_dir %q: want an absolute path", c.DataDir)
	}
	if c.SpoolMaxBytes < 16<<20 {
		return fmt.Errorf("spool_max_bytes %d: want at least 16 MiB", c.SpoolMaxBytes)
	}
	if c.HealthEvery < time.Second {
		return fmt.Errorf("health_every %s: want at least 1s", c.HealthEvery)
	}
	if c.HeartbeatEvery < time.Second || c.HeartbeatEvery > 10*time.Minute {
		return fmt.Errorf("heartbeat_every %s: want 1s to 10m", c.HeartbeatEvery)
	}
	if err := c.Limits.validate(); err != nil {
		return err
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	for _, p := range c.Sensors.FIMPaths {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("sensors.fim_paths: %q is not an absolute path", p)
		}
	}
	for _, a := range c.Actions.Allow {
		if !slices.Contains(policyActions, a) {
			return fmt.Errorf("actions.allow: %q is not an action (want %s)", a, strings.Join(policyActions, ", "))
		}
	}
	for _, p := range c.Actions.IsolateAllow {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				return fmt.Errorf("actions.isolate_allow: %q is not an IP address or CIDR", p)
			}
		}
	}
	if c.Actions.MaxCollectBytes < 1<<10 || c.Actions.MaxCollectBytes > 1<<30 {
		return fmt.Errorf("actions.max_collect_bytes %d: want 1 KiB to 1 GiB", c.Actions.MaxCollectBytes)
	}
	if c.Sensors.InventoryDiffEvery < 10*time.Second {
		return fmt.Errorf("sensors.inventory_diff_every %s: want at least 10s", c.Sensors.InventoryDiffEvery)
	}
	if c.Sensors.SCAEvery < 10*time.Minute {
		return fmt.Errorf("sensors.sca_every %s: want at least 10m", c.Sensors.SCAEvery)
	}
	for _, p := range c.Sensors.SCAPolicies {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("sensors.sca_policies: %q is not an absolute path", p)
		}
		if _, err := posture.Load(p, os.ReadFile); err != nil {
			return fmt.Errorf("sensors.sca_policies: %w", err)
		}
	}
	if c.Sensors.InventorySnapshotEvery < time.Hour || c.Sensors.InventorySnapshotEvery < c.Sensors.InventoryDiffEvery {
		return fmt.Errorf("sensors.inventory_snapshot_every %s: want at least 1h", c.Sensors.InventorySnapshotEvery)
	}
	return nil
}

// policyActions are the names actions.allow accepts; restore, release and
// unblock follow quarantine, isolate and block.
var policyActions = []string{command.Kill, command.Quarantine, command.Collect, command.Query, command.Isolate, command.Block}
