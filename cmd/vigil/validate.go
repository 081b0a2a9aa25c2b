package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-edr/vigil/internal/atomics"
	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/hunt"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
)

func newValidateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Measure detection coverage by running attack simulations on this host",
	}
	cmd.AddCommand(newValidateAtomicsCmd())
	return cmd
}

// validateConfig is what `vigil validate atomics` takes from flags.
type validateConfig struct {
	Dir         string
	Techniques  []string
	Yes         bool
	DryRun      bool
	Server      string
	Data        string
	Token       string
	CA          string
	Host        string
	Timeout     time.Duration
	Settle      time.Duration
	HostNetwork bool
	Format      string
}

func newValidateAtomicsCmd() *cobra.Command {
	cfg := validateConfig{}
	cmd := &cobra.Command{
		Use:   "atomics --dir DIR [--technique ID]... --yes-run-attack-commands",
		Short: "Run Atomic Red Team Linux tests here and report which ones Vigil detected",
		Long: `Atomics runs the Linux tests of an Atomic Red Team atomics folder on this
host, where a Vigil agent reports to a running server (vigil up), and reports
for each test: skipped (and why), ran and detected (by which rules), or ran
and not detected.

The tests are real attack commands. Nothing runs without
--yes-run-attack-commands; --dry-run shows the plan instead. Tests that would
harm the host are never run (reboot, disk or filesystem wiping, kernel
modules, deleting accounts, wiping history or logs, blinding Vigil's sensor,
system changes without a cleanup; see README), get_prereq_command is never
run (it downloads), each test has a timeout, its cleanup always runs, and by
default it runs in a private network namespace with only a loopback
interface, so it cannot reach the network.

An alert counts for a test when one of its triggering events falls in the
test's time window and its process descends from the test's shell (the
shell's audit session, or parent pids walked through the stored events).

The server is reached through its REST API: --server (default
https://127.0.0.1:8443), trusting --data DIR/pki/ca.crt. The API token is
--token or $VIGIL_TOKEN; without one, a viewer token valid for this run is
created in --data DIR/vigil.db and revoked at the end.`,
		Example: `  sudo vigil validate atomics --dir ./atomic-red-team/atomics --dry-run
  sudo vigil validate atomics --dir ./atomic-red-team/atomics --technique T1053.003 --yes-run-attack-commands
  sudo vigil validate atomics --dir ./atomics --yes-run-attack-commands --format json > coverage.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runValidateAtomics(cmd.Context(), cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Dir, "dir", "", "atomics folder (T*/T*.yaml)")
	f.StringArrayVar(&cfg.Techniques, "technique", nil, "only this technique (T1053 includes its sub-techniques), test (T1053.003#2) or test GUID; repeatable")
	f.BoolVar(&cfg.Yes, "yes-run-attack-commands", false, "really run the tests' commands on this host")
	f.BoolVar(&cfg.DryRun, "dry-run", false, "print which tests would run and why the others are skipped; run nothing")
	f.StringVar(&cfg.Server, "server", "https://127.0.0.1:8443", "the Vigil server's URL")
	f.StringVar(&cfg.Data, "data", "", "the server's data directory, for its CA and a token (default as vigil up)")
	f.StringVar(&cfg.Token, "token", "", "API token (any role; default $VIGIL_TOKEN, else one is created in --data)")
	f.StringVar(&cfg.CA, "ca", "", "CA certificate (PEM) to trust (default DATA/pki/ca.crt)")
	f.StringVar(&cfg.Host, "host", "", "the agent's host name (default this machine's)")
	f.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "time limit for each test command and for its cleanup")
	f.DurationVar(&cfg.Settle, "settle", 30*time.Second, "how long to wait for a test's events to reach the server")
	f.BoolVar(&cfg.HostNetwork, "host-network", false, "run tests in the host's network namespace (they may reach the network; firewall changes are then refused)")
	f.StringVar(&cfg.Format, "format", "table", "output: table or json")
	cmd.MarkFlagRequired("dir")
	return cmd
}

func runValidateAtomics(ctx context.Context, cfg validateConfig, stdout, stderr io.Writer) error {
	if cfg.Format != "table" && cfg.Format != "json" {
		return fmt.Errorf("--format must be table or json")
	}
	if !cfg.Yes && !cfg.DryRun {
		return errors.New("refusing to run attack commands on this host without --yes-run-attack-commands (use --dry-run to see the plan)")
	}
	if cfg.Data == "" {
		cfg.Data = defaultDataDir()
	}
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return err
	}
	techs, errs := atomics.LoadDir(dir)
	for _, err := range errs {
		fmt.Fprintln(stderr, "vigil: skipping", err)
	}
	if len(techs) == 0 {
		return fmt.Errorf("no technique files (T*/T*.yaml) under %s", dir)
	}
	opts := atomics.Options{
		Host: cfg.Host, Techniques: cfg.Techniques, Settle: cfg.Settle,
		Plan: atomics.Host{
			OS: runtime.GOOS, Root: os.Geteuid() == 0, AtomicsDir: dir, IsolatedNetwork: !cfg.HostNetwork,
			HasProgram: func(n string) bool { _, err := exec.LookPath(n); return err == nil },
			FileExists: func(p string) bool { _, err := os.Stat(p); return err == nil },
		},
	}
	if !cfg.DryRun {
		client, done, err := validateClient(ctx, cfg)
		if err != nil {
			return err
		}
		defer done()
		opts.Client = client
		runner, err := atomics.NewRunner(atomics.RunOptions{AtomicsDir: dir, Timeout: cfg.Timeout, HostNetwork: cfg.HostNetwork})
		if err != nil {
			return err
		}
		defer runner.Close()
		opts.Runner = runner
		if !runner.Sessions() {
			fmt.Fprintln(stderr, "vigil: cannot give tests their own audit session (needs CAP_AUDIT_CONTROL); attributing by parent pids only")
		}
		if cfg.Format == "table" {
			opts.Progress = func(r atomics.Result) {
				fmt.Fprintf(stderr, "%-16s %-13s %s\n", r.ID(), r.Status, hunt.SafeText(clipText(r.Detail, 100)))
			}
		}
	}
	results, err := atomics.Validate(ctx, techs, opts)
	if len(results) > 0 || err == nil {
		if werr := writeValidation(stdout, cfg.Format, results); werr != nil {
			return werr
		}
	}
	return err
}

// validateClient connects to the server's API; done revokes a token it
// created.
func validateClient(ctx context.Context, cfg validateConfig) (*atomics.Client, func(), error) {
	caFile := cfg.CA
	if caFile == "" {
		caFile = filepath.Join(cfg.Data, "pki", "ca.crt")
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the server's CA certificate (pass --data or --ca): %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	token, done := cfg.Token, func() {}
	if token == "" {
		token = os.Getenv("VIGIL_TOKEN")
	}
	if token == "" {
		db, err := sqlite.Open(ctx, filepath.Join(cfg.Data, "vigil.db"), sqlite.Options{})
		if err != nil {
			return nil, nil, fmt.Errorf("no --token or $VIGIL_TOKEN, and the data directory's database: %w", err)
		}
		secret := authz.NewSecret()
		id := "validate-" + hex.EncodeToString(authz.Hash(secret)[:6])
		now := time.Now().UTC()
		t := authz.Token{ID: id, Name: "vigil validate atomics", Role: authz.RoleViewer, Hash: authz.Hash(secret),
			CreatedAt: now, ExpiresAt: now.Add(12 * time.Hour)}
		if err := db.CreateToken(ctx, t); err != nil {
			db.Close()
			return nil, nil, err
		}
		token = secret
		done = func() {
			if err := db.RevokeToken(context.Background(), id); err != nil {
				fmt.Fprintln(os.Stderr, "vigil: revoking the validation token:", err)
			}
			db.Close()
		}
	}
	return atomics.NewClient(cfg.Server, hc, token), done, nil
}

func writeValidation(w io.Writer, format string, results []atomics.Result) error {
	sum := atomics.Summarize(results)
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Summary atomics.Summary  `json:"summary"`
			Results []atomics.Result `json:"results"`
		}{sum, results})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TEST\tNAME\tRESULT\tDETAIL")
	for _, r := range results {
		detail := r.Detail
		if r.Status == atomics.StatusSkipped {
			detail = string(r.Reason) + ": " + r.Detail
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.ID(), hunt.SafeText(clipText(r.Name, 50)), r.Status, hunt.SafeText(clipText(detail, 120)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d tests: %d ran (%d detected, %d not detected), %d skipped, %d errors\n",
		sum.Tests, sum.Ran, sum.Detected, sum.NotDetected, sum.Skipped, sum.Errors)
	if len(sum.SkipReasons) > 0 {
		var parts []string
		for _, reason := range []atomics.Reason{atomics.ReasonPlatform, atomics.ReasonExecutor, atomics.ReasonElevation, atomics.ReasonArgument,
			atomics.ReasonDenied, atomics.ReasonFile, atomics.ReasonTool, atomics.ReasonPrereq} {
			if n := sum.SkipReasons[reason]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", reason, n))
			}
		}
		fmt.Fprintf(w, "skipped: %s\n", strings.Join(parts, ", "))
	}
	return nil
}

func clipText(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
