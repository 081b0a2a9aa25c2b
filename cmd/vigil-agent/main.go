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
	"runtime/pprof"
	"strings"
	"syscall"

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
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				pprof.StartCPUProfile(f)
				defer pprof.StopCPUProfile()
			}
			return agent.RunHost(cmd.Context(), cfg, log)
		},
	}
	run.Flags().StringVar(&dataDir, "data", "", "data directory (default from the configuration)")
	run.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the agent to this file (for performance work)")
	root.AddCommand(enroll, run)
	return root
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
