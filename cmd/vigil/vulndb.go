package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-edr/vigil/internal/store/sqlite"
	"github.com/vigil-edr/vigil/internal/vuln"
	"github.com/vigil-edr/vigil/internal/vuln/debian"
	"github.com/vigil-edr/vigil/internal/vuln/osv"
)

func newVulnDBCmd() *cobra.Command {
	var data string
	cmd := &cobra.Command{
		Use:   "vulndb",
		Short: "Import and inspect the offline vulnerability database",
		Long: `The vulnerability database is imported from files, never fetched: OSV JSON
(one record, or a zip of records such as an ecosystem's all.zip) and the
Debian Security Tracker's JSON export. Hosts' package inventories are matched
against it whenever an inventory or the database changes; the findings are at
GET /api/v1/hosts/{id}/vulnerabilities and GET /api/v1/vulnerabilities.`,
	}
	cmd.PersistentFlags().StringVar(&data, "data", "", "the server's data directory")
	cmd.MarkPersistentFlagRequired("data")

	var format string
	imp := &cobra.Command{
		Use:   "import --data DIR [--format osv|debian] FILE...",
		Short: "Import OSV JSON or zip files and Debian Security Tracker JSON, then re-evaluate every host",
		Long: `Import reads each file completely and checks it before storing anything from
it: a malformed file is rejected with the file and the place (zip member, byte
offset, JSON path) and nothing of it is stored. The format is recognised from
the content (a zip, an OSV record, or the tracker's object of packages) unless
--format says it.

A Debian tracker file replaces the previously imported tracker data; OSV
records replace stored records with the same id. Advisories of ecosystems
that are not matched (language packages, Alpine, SUSE, Ubuntu Pro) are
skipped and counted. After the import every host is re-evaluated; a running
server also notices within a minute.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "" && format != "osv" && format != "debian" {
				return fmt.Errorf("--format %q: want osv or debian", format)
			}
			if err := os.MkdirAll(data, 0o700); err != nil {
				return err
			}
			db, err := sqlite.Open(cmd.Context(), filepath.Join(data, "vigil.db"), sqlite.Options{})
			if err != nil {
				return err
			}
			defer db.Close()
			out := cmd.OutOrStdout()
			for _, path := range args {
				if err := importVulnFile(cmd.Context(), db, path, format, out); err != nil {
					return err
				}
			}
			ev := &vuln.Evaluator{Store: db, Inventories: db}
			n, err := ev.EvaluateStale(cmd.Context())
			fmt.Fprintf(out, "re-evaluated %d hosts\n", n)
			return err
		},
	}
	imp.Flags().StringVar(&format, "format", "", "osv or debian (default: recognised from the content)")

	var statusFormat string
	status := &cobra.Command{
		Use:   "status --data DIR [--format json]",
		Short: "Show what the vulnerability database holds and how many hosts are evaluated",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := openData(cmd.Context(), data)
			if err != nil {
				return err
			}
			defer db.Close()
			st, err := db.VulnStatus(cmd.Context())
			if err != nil {
				return err
			}
			if statusFormat == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			printVulnStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	status.Flags().StringVar(&statusFormat, "format", "text", "text or json")
	cmd.AddCommand(imp, status)
	return cmd
}

// importVulnFile parses one file and stores it.
func importVulnFile(ctx context.Context, db *sqlite.DB, path, format string, out io.Writer) error {
	if format == "" {
		var err error
		if format, err = detectVulnFormat(path); err != nil {
			return err
		}
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return err
	}
	imp := vuln.Import{Source: format, File: filepath.Base(path), SHA256: sum}
	var advs []vuln.Advisory
	switch format {
	case "osv":
		imp.Source = vuln.SourceOSV
		res, err := osv.ReadFile(path, path, osv.Options{})
		if err != nil {
			return err
		}
		advs, imp.Skipped = res.Advisories, res.Skipped
	case "debian":
		imp.Source, imp.Replace = vuln.SourceDebian, true
		res, err := debian.ReadFile(path, path)
		if err != nil {
			return err
		}
		advs, imp.Skipped = res.Advisories, res.Skipped
	}
	r, err := db.ImportAdvisories(ctx, imp, advs, time.Now().UTC())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "imported %s (%s): %d advisories, %d affected packages", path, format, r.Advisories, r.Affected)
	if len(imp.Skipped) > 0 {
		fmt.Fprintf(out, "; skipped %s", formatCounts(imp.Skipped))
	}
	fmt.Fprintf(out, "; database generation %d\n", r.Generation)
	return nil
}

// detectVulnFormat recognises a zip (OSV records), an OSV record (an
// object whose first key is an OSV field) and the Debian tracker (an
// object of package names).
func detectVulnFormat(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	head, _ := br.Peek(4)
	if string(head) == "PK\x03\x04" {
		return "osv", nil
	}
	dec := json.NewDecoder(br)
	tok, err := dec.Token()
	if d, ok := tok.(json.Delim); err != nil || !ok || d != '{' {
		return "", &vuln.FileError{File: path, Offset: 0, Err: errors.New("neither a zip nor a JSON object: not an OSV or Debian tracker file")}
	}
	tok, err = dec.Token()
	if err != nil {
		return "", vuln.JSONError(path, "", 0, err)
	}
	key, _ := tok.(string)
	osvKeys := []string{"schema_version", "id", "modified", "published", "withdrawn", "aliases", "related", "upstream",
		"summary", "details", "severity", "affected", "references", "credits", "database_specific"}
	if slices.Contains(osvKeys, key) {
		return "osv", nil
	}
	return "debian", nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func formatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", m[k], k)
	}
	return strings.Join(parts, ", ")
}

func printVulnStatus(w io.Writer, st vuln.Status) {
	fmt.Fprintf(w, "database generation %d", st.Generation)
	if st.Generation == 0 {
		fmt.Fprint(w, " (nothing imported: vigil vulndb import FILE)")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tADVISORIES\tAFFECTED\tECOSYSTEMS\tLAST IMPORT")
	for _, s := range st.Sources {
		var ecos []string
		for e, n := range s.Ecosystems {
			ecos = append(ecos, fmt.Sprintf("%s (%d)", e, n))
		}
		slices.Sort(ecos)
		last := "-"
		if s.LastImport != nil {
			last = fmt.Sprintf("%s at %s", s.LastImport.File, s.LastImport.At.Format(time.RFC3339))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", s.Source, s.Advisories, s.Affected, strings.Join(ecos, ", "), last)
	}
	tw.Flush()
	fmt.Fprintf(w, "hosts evaluated %d, stale %d, findings %d\n", st.Hosts, st.Stale, st.Findings)
}
