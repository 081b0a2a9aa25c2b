package atomics

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Status is a test's outcome.
type Status string

// Statuses.
const (
	StatusDetected    Status = "detected"
	StatusNotDetected Status = "not detected"
	StatusSkipped     Status = "skipped"
	StatusError       Status = "error"     // could not run or could not be measured
	StatusPlanned     Status = "would run" // plan only (no Runner)
)

// Result is one test's outcome.
type Result struct {
	Technique  string      `json:"technique"`
	Number     int         `json:"number"`
	Name       string      `json:"name"`
	GUID       string      `json:"guid,omitempty"`
	Status     Status      `json:"status"`
	Ran        bool        `json:"ran"`
	Reason     Reason      `json:"skip_reason,omitempty"`
	Detail     string      `json:"detail,omitempty"`
	Execution  *Execution  `json:"execution,omitempty"`
	Detections []Detection `json:"detections,omitempty"`
}

// ID names the test as "T1053.003 #2".
func (r *Result) ID() string { return fmt.Sprintf("%s #%d", r.Technique, r.Number) }

// Options configure Validate.
type Options struct {
	Client *Client
	Host   string  // the agent's host name, as alerts and events carry it
	Runner *Runner // nil: plan only (nothing is run)
	Plan   Host
	// Techniques selects tests: a technique id (a parent id selects its
	// sub-techniques too), "T1053.003#2" for one test, or a test's GUID.
	// Empty selects every test.
	Techniques []string
	// Settle bounds the wait for the host's events to reach the server
	// after each test (default 30 s).
	Settle time.Duration
	// Progress, when set, is told of each result as it is known.
	Progress func(Result)
}

// ErrNoTelemetry: the marker process's event never reached the server, so
// nothing this run does could be measured.
var ErrNoTelemetry = errors.New("no event from this host reached the server")

// Select reports whether the test matches one of the selectors.
func Select(t *Test, selectors []string) bool {
	if len(selectors) == 0 {
		return true
	}
	for _, s := range selectors {
		s = strings.TrimSpace(s)
		switch {
		case strings.EqualFold(s, t.GUID):
			return true
		case strings.Contains(s, "#"):
			id, n, _ := strings.Cut(s, "#")
			if strings.EqualFold(strings.TrimSpace(id), t.Technique) && strings.TrimSpace(n) == itoa(t.Number) {
				return true
			}
		case strings.EqualFold(s, t.Technique) || strings.HasPrefix(strings.ToUpper(t.Technique), strings.ToUpper(s)+"."):
			return true
		}
	}
	return false
}

// Validate plans, runs and measures the selected Linux-platform tests of
// techs in order. It stops early only when ctx ends or the host's events
// stop reaching the server (ErrNoTelemetry); results so far are returned.
func Validate(ctx context.Context, techs []*Technique, o Options) ([]Result, error) {
	if o.Settle <= 0 {
		o.Settle = 30 * time.Second
	}
	var results []Result
	report := func(r Result) {
		results = append(results, r)
		if o.Progress != nil {
			o.Progress(r)
		}
	}
	nonce := make([]byte, 6)
	rand.Read(nonce)
	tag := "vigil-validate-" + hex.EncodeToString(nonce)
	if o.Runner != nil {
		if err := settle(ctx, o, tag+"-start"); err != nil {
			return nil, err
		}
	}
	for _, tech := range techs {
		for i := range tech.Tests {
			t := &tech.Tests[i]
			if !Select(t, o.Techniques) {
				continue
			}
			r := Result{Technique: t.Technique, Number: t.Number, Name: t.Name, GUID: t.GUID}
			d := Plan(t, o.Plan)
			if !d.Run() {
				r.Status, r.Reason, r.Detail = StatusSkipped, d.Reason, d.Detail
				if d.Reason == ReasonPlatform && !t.SupportsPlatform("linux") {
					continue // not a Linux test at all: not part of the report
				}
				report(r)
				continue
			}
			if o.Runner == nil {
				r.Status = StatusPlanned
				report(r)
				continue
			}
			if err := ctx.Err(); err != nil {
				return results, err
			}
			ex, err := o.Runner.Run(ctx, t)
			if err != nil {
				r.Status, r.Detail = StatusError, err.Error()
				report(r)
				continue
			}
			r.Execution = ex
			if !ex.Ran() {
				r.Status, r.Reason, r.Detail = StatusSkipped, ReasonPrereq, ex.PrereqFailed
				if ex.Test.Err != "" {
					r.Status, r.Reason, r.Detail = StatusError, "", ex.Test.Err
				}
				report(r)
				continue
			}
			r.Ran = true
			end := ex.Test.End
			if ex.Cleanup != nil {
				end = ex.Cleanup.Start // the cleanup's own alerts are not the test's
			}
			if err := settle(ctx, o, fmt.Sprintf("%s-%s-%d", tag, t.Technique, t.Number)); err != nil {
				r.Status, r.Detail = StatusError, err.Error()
				report(r)
				return results, err
			}
			w := Window{From: ex.Test.Start, To: end, ShellPID: ex.Test.PID, Session: ex.Test.Session}
			alerts, err := o.Client.Alerts(ctx, o.Host, w.From.Add(-slackBefore))
			if err == nil {
				r.Detections, err = Attribute(ctx, w, alerts, o.Client.Evidence(o.Host))
			}
			switch {
			case err != nil:
				r.Status, r.Detail = StatusError, "reading alerts: "+err.Error()
			case len(r.Detections) > 0:
				r.Status = StatusDetected
				var rules []string
				for _, det := range r.Detections {
					rules = append(rules, det.RuleTitle)
				}
				r.Detail = strings.Join(rules, "; ")
			default:
				r.Status = StatusNotDetected
			}
			report(r)
		}
	}
	return results, nil
}

// settle runs a marker process and waits until its exec event is stored
// and detection has caught up, so every earlier event of the host has been
// matched.
func settle(ctx context.Context, o Options, token string) error {
	start := time.Now()
	if err := Marker(ctx, token); err != nil {
		return fmt.Errorf("running the marker process: %w", err)
	}
	cmdline := MarkerPath() + " " + token
	deadline := start.Add(o.Settle)
	for {
		evs, err := o.Client.Events(ctx, o.Host, "process_creation", map[string]string{"CommandLine": cmdline}, start.Add(-time.Second), time.Time{}, 1)
		if err != nil {
			return fmt.Errorf("searching events: %w", err)
		}
		if len(evs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w within %s (is `vigil up` with its local agent running, and is --host %q right?)", ErrNoTelemetry, o.Settle, o.Host)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	// The marker's batch was stored; detection of it and of everything
	// before it is done when no accepted batch is pending.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		n, err := o.Client.BusPending(ctx)
		if err != nil || n == 0 {
			break
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Summary counts results.
type Summary struct {
	Tests       int                       `json:"tests"`
	Ran         int                       `json:"ran"`
	Detected    int                       `json:"detected"`
	NotDetected int                       `json:"not_detected"`
	Skipped     int                       `json:"skipped"`
	Errors      int                       `json:"errors"`
	SkipReasons map[Reason]int            `json:"skip_reasons"`
	Techniques  map[string]TechniqueCount `json:"techniques"`
	Rules       map[string]int            `json:"rules"` // tests detected per rule title
}

// TechniqueCount is one technique's share of a Summary.
type TechniqueCount struct {
	Tests    int `json:"tests"`
	Ran      int `json:"ran"`
	Detected int `json:"detected"`
	Skipped  int `json:"skipped"`
}

// Summarize counts results.
func Summarize(results []Result) Summary {
	s := Summary{SkipReasons: map[Reason]int{}, Techniques: map[string]TechniqueCount{}, Rules: map[string]int{}}
	for _, r := range results {
		s.Tests++
		tc := s.Techniques[r.Technique]
		tc.Tests++
		if r.Ran {
			s.Ran++
			tc.Ran++
		}
		switch r.Status {
		case StatusDetected:
			s.Detected++
			tc.Detected++
			for _, d := range r.Detections {
				s.Rules[d.RuleTitle]++
			}
		case StatusNotDetected:
			s.NotDetected++
		case StatusSkipped:
			s.Skipped++
			tc.Skipped++
			s.SkipReasons[r.Reason]++
		case StatusError:
			s.Errors++
		}
		s.Techniques[r.Technique] = tc
	}
	return s
}

// SortedTechniques lists the Summary's technique ids in order.
func (s Summary) SortedTechniques() []string {
	ids := make([]string, 0, len(s.Techniques))
	for id := range s.Techniques {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
