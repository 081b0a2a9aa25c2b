package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-edr/vigil/internal/detect/correlate"
	"github.com/vigil-edr/vigil/internal/detect/sigma"
	"github.com/vigil-edr/vigil/internal/hunt"
)

func newHuntCmd() *cobra.Command {
	var (
		rulePaths  []string
		minLevel   string
		format     string
		workers    int
		noProgress bool
		allSources bool
	)
	cmd := &cobra.Command{
		Use:   "hunt --rules PATH [--rules PATH]... PATH...",
		Short: "Run Sigma rules over log files (EVTX, JSON lines, syslog, auditd)",
		Long: `Hunt runs Sigma rules over log files offline and prints what they find.

PATH may be files or directories (searched recursively). Formats are detected
from the content: Windows EVTX, JSON or JSON lines (including SigmaHQ's
rendering of Windows events), syslog and auth.log (RFC 3164, RFC 5424), and
Linux audit logs. Files of other kinds are skipped and counted.

Detections go to standard output; a summary (files, events, events/s,
detections by level, top rules) goes to standard error. The exit status is 0
when the hunt ran, whatever it found, and non-zero only on errors.`,
		Example: `  vigil hunt --rules sigma/rules --min-level high evtx/
  vigil hunt --rules my-rules/ --format jsonl /var/log/auth.log > detections.jsonl`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(rulePaths) == 0 {
				return fmt.Errorf("no rules: give at least one --rules PATH")
			}
			lvl := sigma.LevelUnknown
			if minLevel != "" {
				var err error
				if lvl, err = sigma.ParseLevel(minLevel); err != nil {
					return fmt.Errorf("--min-level: %w", err)
				}
			}
			stderr := cmd.ErrOrStderr()
			rules, errs := sigma.LoadPaths(rulePaths...)
			eng, cerrs := sigma.NewEngine(rules, sigma.Options{IgnoreLogsource: allSources})
			errs = append(errs, cerrs...)
			corr, rerrs := correlate.New(rules, func(ref string) bool { _, ok := eng.Lookup(ref); return ok }, correlate.Options{})
			errs = append(errs, rerrs...)
			for _, err := range errs {
				fmt.Fprintln(stderr, "rule rejected:", err)
			}
			if len(eng.Rules()) == 0 {
				return fmt.Errorf("no usable rules in %s", strings.Join(rulePaths, ", "))
			}
			files, err := hunt.Walk(args)
			if err != nil {
				return err
			}
			out, err := hunt.NewWriter(format, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			opts := hunt.Options{Workers: workers, MinLevel: lvl}
			bar := newProgress(stderr, !noProgress)
			if bar != nil {
				opts.Progress = bar.update
			}
			fmt.Fprintf(stderr, "vigil hunt: %d rules (%d rejected, %d correlations), %d files\n",
				len(eng.Rules()), len(errs), len(eng.Correlations()), len(files))
			sum, err := hunt.Run(cmd.Context(), eng, corr, files, opts, out.Write)
			if bar != nil {
				bar.finish()
			}
			if ferr := out.Flush(); err == nil {
				err = ferr
			}
			printSummary(stderr, sum)
			if err != nil {
				return err
			}
			if len(sum.Errors) > 0 && sum.Files == 0 {
				return exitError{2}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&rulePaths, "rules", "r", nil, "Sigma rule file or directory (repeatable)")
	f.StringVar(&minLevel, "min-level", "", "report only detections at or above this level (informational, low, medium, high, critical)")
	f.StringVarP(&format, "format", "f", "table", "output format: table, jsonl or csv")
	f.IntVarP(&workers, "workers", "j", 0, "files hunted in parallel (default: number of CPUs)")
	f.BoolVar(&noProgress, "no-progress", false, "do not show the progress bar on a terminal")
	f.BoolVar(&allSources, "ignore-logsource", false, "run every rule on every event, whatever its log source (for unlabelled JSON)")
	return cmd
}

func printSummary(w io.Writer, s *hunt.Summary) {
	if s == nil {
		return
	}
	secs := s.Elapsed.Seconds()
	if secs <= 0 {
		secs = 1e-9
	}
	fmt.Fprintf(w, "\nfiles %d (skipped %d of unknown format, %d unreadable), events %d, %.1f MB in %s: %.0f events/s, %.1f MB/s\n",
		s.Files, s.Skipped, len(s.Errors), s.Events, float64(s.Bytes)/1e6, s.Elapsed.Round(time.Millisecond),
		float64(s.Events)/secs, float64(s.Bytes)/1e6/secs)
	fmt.Fprintf(w, "detections %d:", s.Detections)
	for l := sigma.LevelCritical; l >= sigma.LevelUnknown; l-- {
		if n := s.ByLevel[l]; n > 0 {
			fmt.Fprintf(w, " %s %d", l, n)
		}
	}
	fmt.Fprintln(w)
	type kv struct {
		k string
		v int
	}
	var top []kv
	for k, v := range s.ByRule {
		top = append(top, kv{k, v})
	}
	sort.Slice(top, func(i, j int) bool { return top[i].v > top[j].v || top[i].v == top[j].v && top[i].k < top[j].k })
	if len(top) > 0 {
		fmt.Fprintln(w, "top rules:")
		for i, x := range top {
			if i == 10 {
				break
			}
			fmt.Fprintf(w, "  %6d  %s\n", x.v, x.k)
		}
	}
	if s.Warnings > 0 {
		fmt.Fprintf(w, "warnings %d (corrupt records or chunks skipped, lines cut):\n", s.Warnings)
		for _, m := range s.WarningMessages {
			fmt.Fprintln(w, "  "+m)
		}
	}
	for _, e := range s.Errors {
		fmt.Fprintln(w, "error:", e)
	}
	if s.CorrelationDropped > 0 {
		fmt.Fprintf(w, "correlation state dropped %d groups or entries (limits reached)\n", s.CorrelationDropped)
	}
}

// progress draws a one-line bar on a terminal, as Hayabusa does.
type progress struct {
	w     io.Writer
	start time.Time
}

func newProgress(w io.Writer, enabled bool) *progress {
	f, ok := w.(*os.File)
	if !enabled || !ok {
		return nil
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return &progress{w: w, start: time.Now()}
}

func (p *progress) update(done, total int64) {
	if total <= 0 {
		return
	}
	const width = 40
	frac := float64(done) / float64(total)
	n := int(frac * width)
	secs := time.Since(p.start).Seconds()
	fmt.Fprintf(p.w, "\r[%s%s] %5.1f%%  %.1f MB/s ", strings.Repeat("=", n), strings.Repeat(" ", width-n), 100*frac, float64(done)/1e6/max(secs, 1e-3))
}

func (p *progress) finish() { fmt.Fprint(p.w, "\r\033[K") }
