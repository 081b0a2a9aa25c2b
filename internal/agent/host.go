package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/agent/action"
	"github.com/vigil-edr/vigil/internal/agent/posture"
	"github.com/vigil-edr/vigil/internal/agent/sensor/authlog"
	"github.com/vigil-edr/vigil/internal/agent/sensor/fim"
	"github.com/vigil-edr/vigil/internal/agent/sensor/inventory"
	"github.com/vigil-edr/vigil/internal/agent/sensor/network"
	"github.com/vigil-edr/vigil/internal/agent/sensor/process"
	"github.com/vigil-edr/vigil/internal/agent/spool"
	"github.com/vigil-edr/vigil/internal/agent/throttle"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/transport/client"
	"github.com/vigil-edr/vigil/internal/wire"
)

// sensorFunc adapts a sensor package to the Sensor interface.
type sensorFunc struct {
	name   string
	run    func(ctx context.Context, out func(*event.Event)) error
	health func() wire.SensorHealth
}

func (s sensorFunc) Name() string { return s.name }
func (s sensorFunc) Run(ctx context.Context, out func(*event.Event)) error {
	return s.run(ctx, out)
}
func (s sensorFunc) Health() wire.SensorHealth { return s.health() }

// mechHealth is the health of a sensor that reports a mechanism, a detail
// line and an error: unavailable when it found no mechanism, degraded with
// an error, starting before it chose.
func mechHealth(mech, unavailable string, fallback bool, err, detail string) wire.SensorHealth {
	h := wire.SensorHealth{Mechanism: mech, Fallback: fallback, Detail: detail, State: wire.SensorRunning}
	switch {
	case mech == "":
		h.State = wire.SensorStarting
	case mech == unavailable:
		h.State = wire.SensorUnavailable
	case err != "":
		h.State = wire.SensorDegraded
	}
	return h
}

// HostSensors builds the sensors the configuration enables for the agent
// with this id (the process sensor's audit rules carry a key of its own);
// they back off while th is on.
func HostSensors(cfg Config, agentID string, th *throttle.Signal, log *slog.Logger) []Sensor {
	var out []Sensor
	if cfg.Sensors.Process {
		p := process.New(process.Options{Logger: log, RuleKey: process.RuleKeyFor(agentID), Throttle: th})
		out = append(out, sensorFunc{"process", p.Run, func() wire.SensorHealth {
			st := p.Status()
			return mechHealth(st.Mechanism, process.MechUnavailable, false, st.Err, st.String())
		}})
	}
	if cfg.Sensors.AuthLog {
		a := authlog.New(authlog.Options{Path: cfg.Sensors.AuthPath, Logger: log})
		out = append(out, sensorFunc{"authlog", a.Run, func() wire.SensorHealth {
			st := a.Status()
			mech := st.Source
			if mech != "" && mech != "journal" {
				mech = "file"
			}
			h := mechHealth(mech, "", mech == "file", "", st.String())
			if st.Err != nil {
				h.State = wire.SensorDegraded
				if mech == "" {
					h.State = wire.SensorUnavailable
				}
			}
			return h
		}})
	}
	if cfg.Sensors.FIM {
		f := fim.New(fim.Options{Paths: cfg.Sensors.FIMPaths, StateDir: filepath.Join(cfg.DataDir, "fim"), Logger: log, Throttle: th})
		out = append(out, sensorFunc{"fim", f.Run, func() wire.SensorHealth {
			st := f.Status()
			errs := ""
			if st.Err != nil {
				errs = st.Err.Error()
			}
			h := mechHealth(st.Source, "", st.Source == "poll", errs, st.String())
			if h.State == wire.SensorRunning && !st.Ready {
				h.State = wire.SensorStarting
			}
			return h
		}})
	}
	if cfg.Sensors.Inventory {
		inv := inventory.New(inventory.Options{StateDir: filepath.Join(cfg.DataDir, "inventory"), Logger: log,
			SnapshotEvery: cfg.Sensors.InventorySnapshotEvery, DiffEvery: cfg.Sensors.InventoryDiffEvery, Throttle: th})
		out = append(out, sensorFunc{"inventory", inv.Run, func() wire.SensorHealth {
			st := inv.Status()
			h := wire.SensorHealth{Mechanism: "periodic", Detail: st.String(), State: wire.SensorRunning}
			if st.Uevent == "on" {
				h.Mechanism = "periodic+uevent"
			}
			if st.Err != nil {
				h.State = wire.SensorDegraded
			}
			return h
		}})
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
		out = append(out, sensorFunc{"sca", sca.Run, func() wire.SensorHealth {
			return wire.SensorHealth{Mechanism: "periodic+stat-poll", State: wire.SensorRunning, Detail: sca.Status().String()}
		}})
	}
	if cfg.Sensors.Network {
		n := network.New(network.Options{Logger: log})
		out = append(out, sensorFunc{"network", n.Run, func() wire.SensorHealth {
			st := n.Status()
			return mechHealth(st.Mechanism, network.MechUnavailable, st.Mechanism == network.MechPoll, st.Err, st.String())
		}})
	}
	return out
}

// HostOptions are what RunHost's caller adds to the configuration.
type HostOptions struct {
	// Shared is true when the agent runs inside another program (`vigil
	// up`): the process's CPU and memory are not the agent's alone, so the
	// watchdog is off.
	Shared bool
	// Version is the agent's version, reported in health.
	Version string
	// Extra sensors run beside the configured ones.
	Extra []Sensor
	// Durable is passed to Options.Durable.
	Durable func(bootEpoch, seq uint64)
}

// RunHost runs the enrolled agent described by cfg until ctx ends: the
// identity and server from the data directory, the spool under it, and the
// sensors the configuration enables. It returns ErrRestart (after a clean
// stop) when the agent must be started again, see RestartWait.
func RunHost(ctx context.Context, cfg Config, log *slog.Logger, ho HostOptions) error {
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
	th := new(throttle.Signal)
	opts := Options{Spool: sp, Sender: c, Sensors: append(HostSensors(cfg, id.AgentID, th, log), ho.Extra...),
		Hostname: host, HealthEvery: cfg.HealthEvery, Logger: log, Throttle: th, Version: ho.Version,
		Restarts: RecentRestarts(cfg.DataDir, time.Now()), Durable: ho.Durable}
	if !ho.Shared {
		limits := cfg.Limits
		opts.Limits = &limits
	}
	a := New(opts)
	log.Info("vigil-agent running", "agent", id.AgentID, "server", server, "data", cfg.DataDir)
	hbCtx, stopHB := context.WithCancel(ctx)
	defer stopHB()
	go heartbeat(hbCtx, c, a, cfg.DataDir, cfg.HeartbeatEvery, log)
	if cfg.Actions.Enabled {
		v, e, err := actionParts(cfg, id, server, c, log)
		if err != nil {
			return fmt.Errorf("response actions: %w", err)
		}
		defer v.Nonces.Close()
		// Isolation and blocks survive an agent restart; after a reboot
		// they are applied again here.
		if err := e.ApplySaved(ctx); err != nil {
			log.Error("re-applying saved isolation and blocks", "err", err)
		}
		// Stopped and waited for before the nonce store closes (defers run
		// in reverse).
		actCtx, stopActions := context.WithCancel(ctx)
		actDone := make(chan struct{})
		go func() { defer close(actDone); RunActions(actCtx, c, v, e, log.With("component", "actions")) }()
		defer func() { <-actDone }()
		defer stopActions()
	}
	return a.Run(ctx)
}

// renewRetry is the shortest time between two renewal attempts.
const renewRetry = 10 * time.Minute

// heartbeat sends the agent's health every interval and renews the
// certificate when the server says it is time, saving the new identity
// before using it for anything else.
func heartbeat(ctx context.Context, c *client.Client, a *Agent, dir string, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	var lastRenew time.Time
	for {
		body, err := json.Marshal(a.Health())
		if err != nil {
			log.Error("heartbeat: encoding health", "err", err)
			body = nil
		}
		if hb, err := c.Heartbeat(ctx, body); err != nil {
			log.Debug("heartbeat", "err", err)
		} else if hb.Renew && time.Since(lastRenew) >= renewRetry {
			lastRenew = time.Now()
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

// actionParts builds the verifier and executor for the configuration.
func actionParts(cfg Config, id *client.Identity, server string, c *client.Client, log *slog.Logger) (*action.Verifier, *action.Executor, error) {
	var allow []netip.Prefix
	for _, s := range cfg.Actions.IsolateAllow {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, _ := netip.ParseAddr(s) // validated at load
			p = netip.PrefixFrom(a, a.BitLen())
		}
		allow = append(allow, p.Masked())
	}
	e, err := action.NewExecutor(action.Options{DataDir: cfg.DataDir, ServerAddrs: serverResolver(server), IsolateAllow: allow,
		MaxCollectBytes: cfg.Actions.MaxCollectBytes, Uploader: c, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	ns, err := action.OpenNonceStore(filepath.Join(cfg.DataDir, "actions", "nonces"))
	if err != nil {
		return nil, nil, err
	}
	if len(id.ActionKey) == 0 {
		log.Warn("no server action key yet (enrolled before response actions): commands are refused until the next certificate renewal")
	}
	v := &action.Verifier{Key: id.ActionKey, Self: id.AgentID, Policy: action.Policy{Allow: cfg.Actions.Allow}, Nonces: ns}
	return v, e, nil
}
