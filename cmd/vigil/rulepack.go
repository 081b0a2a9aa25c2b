package main

import (
	"fmt"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vigil-edr/vigil/internal/rulepack"
)

// newRulesUpdateCmd installs or updates a rule pack.
func newRulesUpdateCmd() *cobra.Command {
	var data, from, name string
	cmd := &cobra.Command{
		Use:   "update --data DIR [--from URL|DIR|ZIP] [--pack NAME]",
		Short: "Install or update a Sigma rule pack (SigmaHQ's latest release by default)",
		Long: `Update downloads SigmaHQ's latest release archive (or reads the URL, directory
or zip given with --from, for sites without Internet access), extracts its rule
and licence files under DIR/rules/packs/NAME, loads every rule to count the
rejected ones, and then replaces the previous version of the pack in one step.

The pack name defaults to "sigmahq" for SigmaHQ's URLs and to the source's base
name otherwise. A new pack starts enabled; an updated one keeps its setting.
The server loads enabled packs when it starts.`,
		Example: `  vigil rules update --data /var/lib/vigil
  vigil rules update --data /var/lib/vigil --from /media/usb/sigma_all_rules.zip --pack sigmahq
  vigil rules update --data /var/lib/vigil --from ./our-rules --pack corp`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := rulepack.Install(cmd.Context(), data, rulepack.Options{Source: from, Name: name})
			if err != nil {
				return err
			}
			state := "enabled"
			if !m.Enabled {
				state = "disabled"
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "installed pack %s version %s (from the %s), licence %s\n", m.Name, m.Version, m.VersionFrom, m.License)
			fmt.Fprintf(out, "%d rule files: %d rules loaded, %d rejected (see: vigil rules lint %s)\n",
				m.Rules, m.Loaded, m.Rejected, filepath.Join(rulepack.Dir(data), m.Name))
			fmt.Fprintf(out, "sha256 %s\n%s; a running server loads it when restarted\n", m.SHA256, state)
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "the server's data directory")
	cmd.Flags().StringVar(&from, "from", rulepack.DefaultSource, "https URL of a zip, or a local directory or zip")
	cmd.Flags().StringVar(&name, "pack", "", "pack name (default: sigmahq for SigmaHQ, else the source's base name)")
	cmd.MarkFlagRequired("data")
	return cmd
}

// newRulesPacksCmd lists the installed packs and switches them.
func newRulesPacksCmd() *cobra.Command {
	var data string
	cmd := &cobra.Command{
		Use:   "packs --data DIR",
		Short: "List installed rule packs; enable or disable one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			packs, err := rulepack.List(data)
			if err != nil {
				return err
			}
			if len(packs) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "no rule packs under %s (install one with: vigil rules update --data %s)\n", rulepack.Dir(data), data)
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tLICENCE\tRULES\tREJECTED\tENABLED\tINSTALLED")
			for _, m := range packs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%t\t%s\n", m.Name, m.Version, m.License, m.Rules, m.Rejected, m.Enabled, m.InstalledAt.Format("2006-01-02 15:04Z"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "the server's data directory")
	cmd.MarkFlagRequired("data")
	cmd.AddCommand(newPackSwitchCmd(true), newPackSwitchCmd(false))
	return cmd
}

func newPackSwitchCmd(enable bool) *cobra.Command {
	var data string
	verb, effect := "disable", "skip"
	if enable {
		verb, effect = "enable", "load"
	}
	cmd := &cobra.Command{
		Use:   verb + " --data DIR NAME",
		Short: "Make the server " + effect + " a rule pack (from its next start)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := rulepack.SetEnabled(data, args[0], enable); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%sd pack %s\n", verb, args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "the server's data directory")
	cmd.MarkFlagRequired("data")
	return cmd
}
