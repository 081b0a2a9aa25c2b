// Package main is the vigil-agent command, Vigil's endpoint agent. It watches
// process execution, logins, file changes and the inventory of this host,
// keeps every event in an on-disk spool, and delivers them to the Vigil
// server over mutually authenticated TLS.
//
// It links no server code (a test checks this) and builds with
// CGO_ENABLED=0 for Linux, Windows and macOS; sensors other than Linux's
// report "not supported yet".
package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-edr/vigil/internal/agent"
	"github.com/vigil-edr/vigil/internal/transport/client"
)

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "vigil-agent:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	var configPath string
	root := &cobra.Command{
		Use:           "vigil-agent",
		Short:         "Vigil's endpoint agent",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&configPath, "config", "", "configuration file (YAML; defaults apply to what it does not set)")

	var server, token, caFingerprint, caFile, dataDir, cpuProfile string
	var cpuProfileAfter time.Duration
	var memProfile string
	var testInput bool
	enroll := &cobra.Command{
		Use:   "enroll --server URL --token TOKEN (--ca-fingerprint HEX | --ca-cert FILE)",
		Short: "Enrol this host with a Vigil server",
		Long: `Enroll generates this agent's key, sends a certificate request with the
enrolment token and saves the certificate the server signs. The server's CA must
be pinned: give its SHA-256 fingerprint (printed by the server at start) or its
certificate file. There is no trust on first use.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := agent.LoadConfig(configPath)
			if err != nil {
				return err
			}
			if dataDir != "" {
				cfg.DataDir = dataDir
			}
			trust := client.Trust{CAFingerprint: strings.ToLower(strings.ReplaceAll(caFingerprint, ":", ""))}
			if caFile != "" {
				pool, err := loadCA(caFile)
				if err != nil {
					return err
				}
				trust = client.Trust{CAPool: pool}
			}
			if trust.CAPool == nil && trust.CAFingerprint == "" {
				return errors.New("give --ca-fingerprint or --ca-cert: the server's CA must be pinned")
			}
			host, _ := os.Hostname()
			id, err := client.Enroll(cmd.Context(), server, token, trust, client.HostInfo{Hostname: host, OS: runtime.GOOS, Arch: runtime.GOARCH, Version: version})
			if err != nil {
				return err
			}
			if err := id.Save(cfg.DataDir); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(cfg.DataDir, "server"), []byte(server+"\n"), 0o600); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "enrolled as agent %s; identity saved in %s\n", id.AgentID, cfg.DataDir)
			return nil
		},
	}
	f := enroll.Flags()
	f.StringVar(&server, "server", "", "server URL, e.g. https://vigil.example:8443")
	f.StringVar(&token, "token", "", "enrolment token")
	f.StringVar(&caFingerprint, "ca-fingerprint", "", "SHA-256 fingerprint of the server's CA certificate (hex)")
	f.StringVar(&caFile, "ca-cert", "", "the server's CA certificate (PEM)")
	f.StringVar(&dataDir, "data", "", "data directory (default from the configuration)")
	enroll.MarkFlagRequired("server")
	enroll.MarkFlagRequired("token")

	run := &cobra.Command{
		Use:   "run",
		Short: "Run the sensors and deliver events until stopped",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := agent.LoadConfig(configPath)
			if err != nil {
				return err
			}
			if dataDir != "" {
				cfg.DataDir = dataDir
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: logLevel(cfg.LogLevel)}))
			if cfg.Limits.MemorySoftBytes > 0 {
				debug.SetMemoryLimit(cfg.Limits.MemorySoftBytes)
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if cpuProfileAfter > 0 {
					// Start-up work (file baseline, first scans) is left out
					// of a profile of the steady state.
					go func() { time.Sleep(cpuProfileAfter); pprof.StartCPUProfile(f) }()
				} else {
					pprof.StartCPUProfile(f)
				}
				defer pprof.StopCPUProfile()
			}
			if memProfile != "" {
				defer func() {
					if f, err := os.Create(memProfile); err == nil {
						pprof.Lookup("heap").WriteTo(f, 0)
						f.Close()
					}
				}()
			}
			ho := agent.HostOptions{Version: version}
			if testInput {
				ho.Extra = append(ho.Extra, newLineSensor(cmd.InOrStdin()))
				out := cmd.OutOrStdout()
				ho.Durable = func(epoch, seq uint64) { fmt.Fprintf(out, "durable %d %d\n", epoch, seq) }
			}
			err = agent.RunHost(cmd.Context(), cfg, log, ho)
			if !errors.Is(err, agent.ErrRestart) {
				return err
			}
			return restart(cmd.Context(), cfg, log)
		},
	}
	run.Flags().StringVar(&dataDir, "data", "", "data directory (default from the configuration)")
	run.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the agent to this file (for performance work)")
	run.Flags().StringVar(&memProfile, "memprofile", "", "write a heap profile of the agent to this file when it stops (for performance work)")
	run.Flags().DurationVar(&cpuProfileAfter, "cpuprofile-after", 0, "start the CPU profile this long after start")
	run.Flags().BoolVar(&testInput, "test-input", false, "also record each line of standard input as an event and print \"durable EPOCH SEQ\" as the spool makes records durable (for tests)")
	run.Flags().MarkHidden("test-input")
	root.AddCommand(enroll, run)
	return root
}

// restart waits out the back-off for a restart over the memory limit and
// replaces this process with a fresh copy of itself (same arguments and
// environment). Where that is impossible (Windows) it returns an error so
// the service manager starts the agent again.
func restart(ctx context.Context, cfg agent.Config, log *slog.Logger) error {
	wait, recent, err := agent.RestartWait(cfg.DataDir, time.Now(), cfg.Limits.RestartMaxWait)
	if err != nil {
		log.Warn("recording the restart", "err", err)
	}
	log.Warn("restarting over the memory limit", "wait", wait, "restarts_last_hour", recent)
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(wait):
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	return fmt.Errorf("restart: %w", syscall.Exec(exe, os.Args, os.Environ()))
}

func loadCA(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if block, _ := pem.Decode(data); block == nil || !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return pool, nil
}

func logLevel(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
