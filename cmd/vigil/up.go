package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-edr/vigil/internal/agent"
	"github.com/vigil-edr/vigil/internal/transport"
	"github.com/vigil-edr/vigil/internal/transport/client"
)

func newUpCmd() *cobra.Command {
	cfg := serverConfig{}
	var noAgent bool
	cmd := &cobra.Command{
		Use:   "up [--data DIR] [--listen ADDR]",
		Short: "Run everything on this machine: the server with embedded defaults and an agent for this host",
		Long: `Up starts the Vigil server with its embedded defaults (NATS JetStream and
SQLite under DIR) and an in-process agent that watches this host (process
execution, logins, file integrity, network connections, inventory), enrolled automatically on first start.
Detection uses Vigil's own rule pack (./rules) unless --rules is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Data == "" {
				cfg.Data = defaultDataDir()
			}
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			cfg.AdminToken = cmd.OutOrStdout()
			ctx := cmd.Context()
			s, err := startServer(ctx, cfg)
			if err != nil {
				return err
			}
			defer s.Close()
			url := "https://" + s.Addr().String()
			out := cmd.OutOrStdout()
			if !noAgent {
				acfg, err := enrolLocalAgent(ctx, s, url)
				if err != nil {
					return fmt.Errorf("local agent: %w", err)
				}
				go func() {
					if err := agent.RunHost(ctx, acfg, cfg.Logger.With("component", "agent"), agent.HostOptions{Shared: true, Version: "vigil up"}); err != nil && ctx.Err() == nil {
						cfg.Logger.Error("local agent stopped", "err", err)
					}
				}()
			}
			fmt.Fprintf(out, "\nVigil is running.\n  API:            %s/api/v1/ (OpenAPI at /api/v1/openapi.json)\n  CA fingerprint: %s\n  data:           %s\n", url, s.auth.CAFingerprint(), cfg.Data)
			fmt.Fprintf(out, "  enrol agents:   vigil token create --data %s, then on each host:\n                  vigil-agent enroll --server %s --token TOKEN --ca-fingerprint %s\n", cfg.Data, url, s.auth.CAFingerprint())
			fmt.Fprintf(out, "  console:        %s/ (user admin, with the password printed on first start; vigil user passwd admin --data %s sets a new one)\n", url, cfg.Data)
			<-ctx.Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Data, "data", "", "data directory (default /var/lib/vigil as root, else ~/.local/share/vigil)")
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:8443", "HTTPS address for agents and the API")
	f.StringArrayVar(&cfg.Rules, "rules", nil, "Sigma rule file or directory (repeatable; default ./rules)")
	f.IntVar(&cfg.Workers, "workers", 2, "detection workers")
	f.DurationVar(&cfg.Retention, "retention", 30*24*time.Hour, "keep events this long")
	f.Int64Var(&cfg.MaxBytes, "max-event-bytes", 20<<30, "keep at most this many bytes of events")
	f.BoolVar(&noAgent, "no-agent", false, "do not run the local agent")
	f.StringSliceVar(&cfg.ActionApproval, "action-approval", nil, "response action types that need a second approver (comma-separated: kill, quarantine, restore, block, unblock, isolate, release, collect, query)")
	return cmd
}

func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/vigil"
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "vigil")
}

// enrolLocalAgent enrols the in-process agent on first start (with a
// one-use token it creates itself) and returns its configuration.
func enrolLocalAgent(ctx context.Context, s *Server, url string) (agent.Config, error) {
	cfg := agent.DefaultConfig()
	cfg.DataDir = filepath.Join(s.cfg.Data, "agent")
	cfg.Server = url
	if _, err := agent.LoadIdentity(cfg.DataDir); err == nil {
		return cfg, nil
	} else if !errors.Is(err, agent.ErrNotEnrolled) {
		return cfg, err
	}
	plain, tok := transport.NewToken(time.Now().UTC(), 10*time.Minute, 1, "vigil up: local agent")
	if err := s.db.CreateEnrollToken(ctx, tok); err != nil {
		return cfg, err
	}
	host, _ := os.Hostname()
	id, err := client.Enroll(ctx, url, plain, client.Trust{CAPool: s.auth.CAPool()}, client.HostInfo{Hostname: host, OS: runtime.GOOS, Arch: runtime.GOARCH, Version: version})
	if err != nil {
		return cfg, err
	}
	return cfg, id.Save(cfg.DataDir)
}
