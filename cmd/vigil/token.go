package main

import (
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-edr/vigil/internal/hunt"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
	"github.com/vigil-edr/vigil/internal/transport"
)

func newTokenCmd() *cobra.Command {
	var data string
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage agent enrolment tokens (works while the server runs)",
	}
	cmd.PersistentFlags().StringVar(&data, "data", "", "the server's data directory")
	cmd.MarkPersistentFlagRequired("data")
	open := func(cmd *cobra.Command) (*sqlite.DB, error) {
		return sqlite.Open(cmd.Context(), filepath.Join(data, "vigil.db"), sqlite.Options{})
	}

	var uses int
	var ttl time.Duration
	var note string
	create := &cobra.Command{
		Use:   "create [--uses N] [--ttl DURATION] [--note TEXT]",
		Short: "Create an enrolment token; it is printed once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ttl <= 0 {
				return fmt.Errorf("--ttl must be positive")
			}
			db, err := open(cmd)
			if err != nil {
				return err
			}
			defer db.Close()
			plain, t := transport.NewToken(time.Now().UTC(), ttl, uses, note)
			if err := db.CreateEnrollToken(cmd.Context(), t); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", plain)
			fmt.Fprintf(cmd.ErrOrStderr(), "token %s: expires %s, %s\n", t.ID, t.ExpiresAt.Format(time.RFC3339), usesText(t.MaxUses))
			return nil
		},
	}
	create.Flags().IntVar(&uses, "uses", 1, "how many agents may enrol with it (0: unlimited until expiry)")
	create.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long it is valid")
	create.Flags().StringVar(&note, "note", "", "what it is for")

	list := &cobra.Command{
		Use:   "list",
		Short: "List enrolment tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := open(cmd)
			if err != nil {
				return err
			}
			defer db.Close()
			toks, err := db.ListEnrollTokens(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tEXPIRES\tUSES\tREVOKED\tNOTE")
			for _, t := range toks {
				fmt.Fprintf(tw, "%s\t%s\t%d/%s\t%v\t%s\n", t.ID, t.ExpiresAt.Format(time.RFC3339), t.Uses, maxText(t.MaxUses), t.Revoked, hunt.SafeText(t.Note))
			}
			return tw.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an enrolment token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := open(cmd)
			if err != nil {
				return err
			}
			defer db.Close()
			return db.RevokeEnrollToken(cmd.Context(), args[0])
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func usesText(n int) string {
	if n == 0 {
		return "unlimited uses"
	}
	return fmt.Sprintf("%d uses", n)
}

func maxText(n int) string {
	if n == 0 {
		return "∞"
	}
	return fmt.Sprint(n)
}
