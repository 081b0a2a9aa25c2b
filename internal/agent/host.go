package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/agent/posture"
	"github.com/vigil-edr/vigil/internal/agent/sensor/authlog"
	"github.com/vigil-edr/vigil/internal/agent/sensor/fim"
	"github.com/vigil-edr/vigil/internal/agent/sensor/inventory"
	"github.com/vigil-edr/vigil/internal/agent/sensor/network"
	"github.com/vigil-edr/vigil/internal/agent/sensor/process"
	"github.com/vigil-edr/vigil/internal/agent/spool"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/transport/client"
)

// sensorFunc adapts a sensor package to the Sensor interface.
type sensorFunc struct {
	name   string
	run    func(ctx context.Context, out func(*event.Event)) error
	status func() string
}

func (s sensorFunc) Name() string { return s.name }
func (s sensorFunc) Run(ctx context.Context, out func(*event.Event)) error {
	return s.run(ctx, out)
}
func (s sensorFunc) Status() string { return s.status() }

// HostSensors builds the sensors the configuration enables for the agent
// with this id (the process sensor's audit rules carry a key of its own).
func HostSensors(cfg Config, agentID string, log *slog.Logger) []Sensor {
	var out []Sensor
	if cfg.Sensors.Process {
		p := process.New(process.Options{Logger: log, RuleKey: process.RuleKeyFor(agentID)})
		out = append(out, sensorFunc{"process", p.Run, func() string { return fmt.Sprintf("%+v", p.Status()) }})
	}
	if cfg.Sensors.AuthLog {
		a := authlog.New(authlog.Options{Path: cfg.Sensors.AuthPath, Logger: log})
		out = append(out, sensorFunc{"authlog", a.Run, func() string { return fmt.Sprintf("%+v", a.Status()) }})
	}
	if cfg.Sensors.FIM {
		f := fim.New(fim.Options{Paths: cfg.Sensors.FIMPaths, StateDir: filepath.Join(cfg.DataDir, "fim"), Logger: log})
		out = append(out, sensorFunc{"fim", f.Run, func() string { return fmt.Sprintf("%+v", f.Status()) }})
	}
	if cfg.Sensors.Inventory {
		inv := inventory.New(inventory.Options{StateDir: filepath.Join(cfg.DataDir, "inventory"), Logger: log,
			SnapshotEvery: cfg.Sensors.InventorySnapshotEvery, DiffEvery: cfg.Sensors.InventoryDiffEvery})
		out = append(out, sensorFunc{"inventory", inv.Run, func() string { return inv.Status().String() }})
	}
	if cfg.Sensors.SCA {
		var policies []*posture.Policy
		if cfg.Sensors.SCABuiltin {
			ps, err := posture.Builtins()
			if err != nil {
				log.Error("sca: built-in policies", "err", err) // a build bug; tests parse them
			}
			policies = append(policies, ps...)
		}
		for _, path := range cfg.Sensors.SCAPolicies {
			p, err := posture.Load(path, os.ReadFile)
			if err != nil { // validated at load; the file changed since
				log.Error("sca: policy left out", "err", err)
				continue
			}
			policies = append(policies, p)
		}
		sca := posture.NewSensor(posture.SensorOptions{Policies: policies, Every: cfg.Sensors.SCAEvery, Logger: log,
			Eval: posture.Options{Commands: cfg.Sensors.SCACommands}})
		out = append(out, sensorFunc{"sca", sca.Run, func() string { return sca.Status().String() }})
	}
	if cfg.Sensors.Network {
		n := network.New(network.Options{Logger: log})
		out = append(out, sensorFunc{"network", n.Run, func() string { return n.Status().String() }})
	}
	return out
}

// RunHost runs the enrolled agent described by cfg until ctx ends: the
// identity and server from the data directory, the spool under it, and the
// sensors the configuration enables.
func RunHost(ctx context.Context, cfg Config, log *slog.Logger) error {
	id, err := LoadIdentity(cfg.DataDir)
	if err != nil {
		return err
	}
	server := cfg.Server
	if server == "" {
		b, err := os.ReadFile(filepath.Join(cfg.DataDir, "server"))
		if err != nil {
			return fmt.Errorf("no server in the configuration and none recorded at enrolment: %w", err)
		}
		server = strings.TrimSpace(string(b))
	}
	c, err := client.New(server, id)
	if err != nil {
		return err
	}
	defer c.Close()
	sp, err := spool.Open(spool.Options{Dir: filepath.Join(cfg.DataDir, "spool"), MaxBytes: cfg.SpoolMaxBytes})
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer sp.Close()
	host, _ := os.Hostname()
	a := New(Options{Spool: sp, Sender: c, Sensors: HostSensors(cfg, id.AgentID, log), Hostname: host, HealthEvery: cfg.HealthEvery, Logger: log})
	log.Info("vigil-agent running", "agent", id.AgentID, "server", server, "data", cfg.DataDir)
	go keepCertificate(ctx, c, cfg.DataDir, log)
	return a.Run(ctx)
}

// keepCertificate heartbeats every ten minutes and renews the certificate
// when the server says it is time, saving the new identity before using it
// for anything else.
func keepCertificate(ctx context.Context, c *client.Client, dir string, log *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		if hb, err := c.Heartbeat(ctx); err != nil {
			log.Debug("heartbeat", "err", err)
		} else if hb.Renew {
			if id, err := c.Renew(ctx); err != nil {
				log.Warn("certificate renewal failed; will retry", "err", err)
			} else if err := id.Save(dir); err != nil {
				log.Error("saving the renewed identity", "err", err)
			} else {
				log.Info("certificate renewed", "not_after", id.Cert.NotAfter)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
