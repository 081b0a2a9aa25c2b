package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vigil-edr/vigil/internal/detect/correlate"
	"github.com/vigil-edr/vigil/internal/detect/sigma"
	"github.com/vigil-edr/vigil/internal/hunt"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
)

func newRulesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Check and test Sigma rules",
	}
	cmd.AddCommand(newLintCmd(), newRulesTestCmd(), newRuleSwitchCmd(true), newRuleSwitchCmd(false))
	cmd.AddCommand(newRulesUpdateCmd(), newRulesPacksCmd()) // rulepack.go
	return cmd
}

// newRuleSwitchCmd enables or disables a rule on a server's database; a
// running server picks the change up within seconds.
func newRuleSwitchCmd(enable bool) *cobra.Command {
	var data string
	verb := "disable"
	if enable {
		verb = "enable"
	}
	cmd := &cobra.Command{
		Use:   verb + " --data DIR RULE-ID...",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " rules on a server (takes effect within seconds while it runs)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := sqlite.Open(cmd.Context(), filepath.Join(data, "vigil.db"), sqlite.Options{})
			if err != nil {
				return err
			}
			defer db.Close()
			for _, id := range args {
				if err := db.SetRuleEnabled(cmd.Context(), id, enable); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%sd %s\n", verb, id)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "the server's data directory")
	cmd.MarkFlagRequired("data")
	return cmd
}

type rejected struct {
	Path   string `json:"path"`
	Line   int    `json:"line,omitempty"`
	Rule   string `json:"rule,omitempty"`
	Reason string `json:"reason"`
}

func newLintCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "lint [--format json] PATH...",
		Short: "Load rules and report every one that is rejected, with its file and reason",
		Long: `Lint parses and compiles every rule under the given files and directories,
exactly as hunt and the server would, and lists each rejected rule with its
file, line and reason. The exit status is 1 when any rule was rejected.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rules, errs := sigma.LoadPaths(args...)
			eng, cerrs := sigma.NewEngine(rules, sigma.Options{})
			errs = append(errs, cerrs...)
			_, rerrs := correlate.New(rules, func(ref string) bool { _, ok := eng.Lookup(ref); return ok }, correlate.Options{})
			errs = append(errs, rerrs...)
			var rej []rejected
			for _, err := range errs {
				if se, ok := err.(*sigma.Error); ok {
					rej = append(rej, rejected{Path: se.Path, Line: se.Line, Rule: se.Rule, Reason: se.Reason})
				} else {
					rej = append(rej, rejected{Reason: err.Error()})
				}
			}
			loaded := len(eng.Rules()) + len(eng.Correlations()) - len(rerrs)
			out := cmd.OutOrStdout()
			switch format {
			case "json":
				if rej == nil {
					rej = []rejected{}
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(struct {
					Loaded   int        `json:"loaded"`
					Rejected []rejected `json:"rejected"`
				}{loaded, rej}); err != nil {
					return err
				}
			case "text", "":
				for _, r := range rej {
					loc := r.Path
					if r.Line > 0 {
						loc = fmt.Sprintf("%s:%d", r.Path, r.Line)
					}
					fmt.Fprintf(out, "%s: %s\n", loc, r.Reason)
				}
				fmt.Fprintf(out, "%d rules loaded, %d rejected\n", loaded, len(rej))
			default:
				return fmt.Errorf("unknown format %q (want text or json)", format)
			}
			if len(rej) > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

func newRulesTestCmd() *cobra.Command {
	var rulePaths []string
	cmd := &cobra.Command{
		Use:   "test PATH",
		Short: "Run SigmaHQ regression cases (regression_data/**/info.yml)",
		Long: `Test runs SigmaHQ's regression cases: for every regression_data/**/info.yml
under PATH (a SigmaHQ checkout), the case's rule must fire on its log file
exactly match_count times (at least once when no count is given). Where the
events also exist as a .json rendering, that file is tested too. Rules are
read from PATH's rules* directories unless --rules is given.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := args[0]
			cases, err := hunt.FindCases(root)
			if err != nil {
				return err
			}
			if len(cases) == 0 {
				return fmt.Errorf("no regression_data/**/info.yml under %s", root)
			}
			if len(rulePaths) == 0 {
				base := root
				if i := strings.Index(filepath.ToSlash(cases[0].Info), "regression_data/"); i >= 0 {
					base = filepath.FromSlash(filepath.ToSlash(cases[0].Info)[:i])
				}
				rulePaths, _ = filepath.Glob(filepath.Join(base, "rules*"))
			}
			rules, _ := sigma.LoadPaths(rulePaths...)
			results := hunt.RunCases(cmd.Context(), cases, rules)
			out := cmd.OutOrStdout()
			pass, fail := 0, 0
			for _, r := range results {
				status := "PASS"
				if !r.Pass {
					status = "FAIL"
					fail++
				} else {
					pass++
				}
				want := "≥1"
				if r.Want >= 0 {
					want = fmt.Sprint(r.Want)
				}
				line := fmt.Sprintf("%s  %s  %s  want %s got %d  %s", status, r.RuleID, r.RuleTitle, want, r.Got, r.File)
				if r.Err != nil {
					line += "  (" + r.Err.Error() + ")"
				}
				fmt.Fprintln(out, line)
			}
			fmt.Fprintf(out, "%d passed, %d failed\n", pass, fail)
			if fail > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&rulePaths, "rules", "r", nil, "rule file or directory (default: PATH's rules* directories)")
	return cmd
}
