package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-edr/vigil/internal/hygiene"
	"github.com/vigil-edr/vigil/internal/store"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
)

func newReportCmd() *cobra.Command {
	var data, format, host, out, tz string
	cmd := &cobra.Command{
		Use:   "report --format html [--host ID] --data DIR -o FILE",
		Short: "Write the hygiene report of the fleet or of one host as one self-contained HTML file",
		Long: `The report holds the hygiene score and its deductions, the score's trend,
failed configuration checks with their remediation, vulnerability findings by
severity with the reason of each, open alerts and cases, and the posture
mapped to the Paris Call's nine principles, GDPR Art. 32/33, NIS2 Art. 21/23
and CIS Controls v8 (what is evidenced and what is not). It loads nothing and
runs no script; print it from a browser for a PDF. The weighting of the score
is docs/hygiene.md. The server may keep running: the database is read only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "html" {
				return fmt.Errorf("--format %q: only html is supported", format)
			}
			loc, err := time.LoadLocation(tz)
			if err != nil {
				return fmt.Errorf("--tz: %w", err)
			}
			path := filepath.Join(data, "vigil.db")
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("--data %s: no Vigil database: %w", data, err)
			}
			db, err := sqlite.Open(cmd.Context(), path, sqlite.Options{})
			if err != nil {
				return err
			}
			defer db.Close()
			svc := hygiene.NewService(hygiene.Options{Hosts: db, SCA: db, Vulns: db, Alerts: db, Cases: db, Store: db})
			var buf bytes.Buffer
			if err := svc.WriteReport(cmd.Context(), &buf, host, loc); err != nil {
				if host != "" && errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("--host %q: no such agent", host)
				}
				return err
			}
			if out == "-" {
				_, err := cmd.OutOrStdout().Write(buf.Bytes())
				return err
			}
			if err := os.WriteFile(out, buf.Bytes(), 0o600); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d bytes)\n", out, buf.Len())
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "the server's data directory")
	cmd.Flags().StringVar(&format, "format", "html", "report format (html)")
	cmd.Flags().StringVar(&host, "host", "", "an agent id: report on this host only (default: the fleet)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "the file to write (- for standard output)")
	cmd.Flags().StringVar(&tz, "tz", "UTC", "IANA time zone to show times in")
	cmd.MarkFlagRequired("data")
	cmd.MarkFlagRequired("output")
	return cmd
}
