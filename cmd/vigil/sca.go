package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-edr/vigil/internal/agent/posture"
)

func newSCACmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sca",
		Short: "Security configuration assessment: run SCA policies (Wazuh format) on this host",
	}
	cmd.AddCommand(newSCARunCmd())
	return cmd
}

func newSCARunCmd() *cobra.Command {
	var (
		policies []string
		root     string
		commands bool
		format   string
		timeout  time.Duration
		verbose  bool
	)
	cmd := &cobra.Command{
		Use:   "run --policy FILE|builtin:NAME... [--root DIR]",
		Short: "Evaluate SCA policies here and print each check's status and reason",
		Long: `Run evaluates SCA policies (the Wazuh YAML format; docs/sca.md) on this host
and prints every check: passed, failed or not applicable, with the reason.

--policy takes a file or an embedded baseline (builtin:` + strings.Join(posture.BuiltinNames(), ", builtin:") + `);
repeat it for several. --root DIR evaluates file, directory and process rules
against a copy of a filesystem under DIR (commands still run on this host).

Command rules (c:) run the policy's commands, without a shell, each with a
timeout: only run policies you trust. --commands=false makes them not
applicable instead.

The exit status is 0 when every policy loaded, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(policies) == 0 {
				return fmt.Errorf("no --policy given")
			}
			ev := posture.NewEvaluator(posture.Options{Root: root, Commands: commands, CommandTimeout: timeout})
			var reports []*posture.Report
			for _, src := range policies {
				p, err := posture.Load(src, os.ReadFile)
				if err != nil {
					return err
				}
				reports = append(reports, ev.Evaluate(cmd.Context(), p))
			}
			out := cmd.OutOrStdout()
			if format == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(reports)
			}
			if format != "text" {
				return fmt.Errorf("--format %q: want text or json", format)
			}
			for _, r := range reports {
				printReport(out, r, verbose)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&policies, "policy", nil, "policy file, or builtin:NAME (repeatable)")
	cmd.Flags().StringVar(&root, "root", "", "evaluate paths under this directory instead of /")
	cmd.Flags().BoolVar(&commands, "commands", true, "run the policies' command (c:) rules")
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	cmd.Flags().DurationVar(&timeout, "command-timeout", 30*time.Second, "timeout of each command")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "also print each evaluated rule")
	return cmd
}

func printReport(w io.Writer, r *posture.Report, verbose bool) {
	fmt.Fprintf(w, "policy %s (%s) from %s\n", r.PolicyID, r.Name, r.Source)
	if !r.Applicable {
		fmt.Fprintf(w, "  %s\n", r.RequirementsReason)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, res := range r.Results {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", res.CheckID, res.Status, oneLine(res.Title, 70), oneLine(res.Reason, 400))
		if verbose {
			for _, rr := range res.Rules {
				fmt.Fprintf(tw, "\t\t  %s\t%s: %s\n", oneLine(rr.Rule, 70), rr.Outcome, oneLine(rr.Reason, 300))
			}
		}
	}
	tw.Flush()
	s := r.Summary
	score := "n/a"
	if s.Score >= 0 {
		score = fmt.Sprintf("%d%%", s.Score)
	}
	fmt.Fprintf(w, "summary: %d checks, %d passed, %d failed, %d not applicable, score %s (%s)\n\n",
		s.Total, s.Passed, s.Failed, s.NotApplicable, score, r.Finished.Sub(r.Started).Round(time.Millisecond))
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
