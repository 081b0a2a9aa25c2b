// Package main is the vigil command: Vigil's server (`vigil server`, `vigil
// up` with an in-process agent), the REST API, offline hunting (`vigil hunt`),
// rule tools (`vigil rules`), enrolment tokens and benchmarks (`vigil bench`).
//
// The wiring of every stage lives here and only here, in data-flow order, in
// startServer (see DESIGN.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// exitError carries a process exit status without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case errors.As(err, &ee):
		os.Exit(ee.code)
	case err != nil:
		fmt.Fprintln(os.Stderr, "vigil:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "vigil",
		Short: "Vigil: open-source EDR and SOC platform",
		Long: `Vigil detects attacks on endpoints with Sigma rules and helps a security team
respond. This binary holds the server, the API and the command-line tools.

Run everything on this machine (server and an agent for this host):
  sudo vigil up

Hunt through logs you already have:
  vigil hunt --rules ./rules /var/log/auth.log ./evtx/

Check rules before deploying them:
  vigil rules lint ./rules`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.AddCommand(newUpCmd(), newServerCmd(), newTokenCmd(), newUserCmd(), newAuditCmd(), newHuntCmd(), newRulesCmd(), newBenchCmd())
	root.AddCommand(newValidateCmd()) // validate.go
	root.AddCommand(newSCACmd())      // sca.go
	root.AddCommand(newVulnDBCmd())   // vulndb.go
	root.AddCommand(newReportCmd())   // report.go
	return root
}
