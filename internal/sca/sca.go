// Package sca is the server's view of configuration assessment: it reads
// the sca_result and sca_summary events the agents' SCA sensor sends
// (fields in docs/sca.md), has a Store keep the latest result of every
// check per host and policy and the history of each policy's summary (pass
// and fail counts over time, for trends), and declares what the API, scores
// and reports read: HostSCA (one host, latest results with history) and
// FleetSCA (every host's latest summaries and the checks failing most).
//
// Only cmd/vigil wires this package; the pipeline calls Recorder.AfterStore,
// web and the hygiene stages read through Store. It imports the standard
// library, internal/event and internal/eventstore, never a storage backend
// or an agent package.
//
// # Ordering and concurrency
//
// Events of one scan share its ScanId and time (the scan's start). They may
// arrive in any order, more than once and from several detection workers
// at once; a Store keeps a result only when it is from a scan at least as
// new as the one it has for that check and as the policy's latest summary,
// and a summary drops the results of older scans (checks removed from the
// policy). Recorder is safe for concurrent use when its Store is.
package sca

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
)

// Event categories, as the agent sends them.
const (
	CategoryResult  = "sca_result"
	CategorySummary = "sca_summary"
)

// Statuses of a check.
const (
	StatusPassed        = "passed"
	StatusFailed        = "failed"
	StatusNotApplicable = "not_applicable"
)

// Limits on one event's fields; an agent never comes near them.
const (
	maxID     = 200
	maxText   = 16 << 10
	maxRules  = 64 << 10
	MaxChecks = 10_000 // per host and policy
	// HistoryKeep is how many summaries per host and policy a Store keeps.
	HistoryKeep = 1000
)

// ErrMalformed: an sca event that does not follow the format.
var ErrMalformed = errors.New("sca: malformed event")

// Result is the latest outcome of one check on one host.
type Result struct {
	PolicyID    string              `json:"policy_id"`
	CheckID     int64               `json:"check_id"`
	ScanID      string              `json:"scan_id"`
	ScannedAt   time.Time           `json:"scanned_at"`
	Title       string              `json:"title"`
	Status      string              `json:"status"` // passed, failed, not_applicable
	Reason      string              `json:"reason"`
	Description string              `json:"description,omitempty"`
	Rationale   string              `json:"rationale,omitempty"`
	Remediation string              `json:"remediation,omitempty"`
	Compliance  map[string][]string `json:"compliance,omitempty"`
	References  []string            `json:"references,omitempty"`
	// Rules is the agent's JSON list of evaluated rules ({rule, outcome,
	// reason}), kept as sent.
	Rules json.RawMessage `json:"rules,omitempty"`
}

// Summary is one scan of one policy on one host.
type Summary struct {
	PolicyID           string    `json:"policy_id"`
	PolicyName         string    `json:"policy_name"`
	PolicySource       string    `json:"policy_source"`
	PolicySHA256       string    `json:"policy_sha256"`
	ScanID             string    `json:"scan_id"`
	ScannedAt          time.Time `json:"scanned_at"`
	Trigger            string    `json:"trigger"`
	Passed             int       `json:"passed"`
	Failed             int       `json:"failed"`
	NotApplicable      int       `json:"not_applicable"`
	Total              int       `json:"total"`
	Score              int       `json:"score"` // passed × 100 / (passed + failed); -1 when both are 0
	Applicable         bool      `json:"applicable"`
	RequirementsReason string    `json:"requirements_reason,omitempty"`
	DurationMs         int64     `json:"duration_ms"`
}

// Policy is one policy's latest state on a host.
type Policy struct {
	Summary
	Results []Result  `json:"results"`
	History []Summary `json:"history"` // newest first
}

// Host is every policy's latest state on one host.
type Host struct {
	AgentID  string   `json:"agent_id"`
	Policies []Policy `json:"policies"`
}

// HostSummary is one host's latest summary of one policy, for fleet views.
type HostSummary struct {
	AgentID string `json:"agent_id"`
	Summary
}

// CheckCount counts one check's latest statuses across the fleet.
type CheckCount struct {
	PolicyID      string `json:"policy_id"`
	CheckID       int64  `json:"check_id"`
	Title         string `json:"title"`
	Failed        int    `json:"failed"`
	Passed        int    `json:"passed"`
	NotApplicable int    `json:"not_applicable"`
}

// Fleet is the fleet view: every host's latest summary per policy (lowest
// score first) and the checks failing on most hosts.
type Fleet struct {
	Hosts  []HostSummary `json:"hosts"`
	Checks []CheckCount  `json:"checks"`
}

// Store keeps results and summaries. store/sqlite implements it.
type Store interface {
	// AddSCAResults stores results of one host: each replaces the stored
	// result of its (policy, check) when it is from a scan at least as new,
	// and is ignored when the policy has a summary of a newer scan.
	AddSCAResults(ctx context.Context, agentID string, rs []Result) error
	// AddSCASummary records a scan's summary in the history (once per
	// ScanID), makes it the policy's latest when it is the newest, and
	// drops the policy's results from older scans.
	AddSCASummary(ctx context.Context, agentID string, s Summary) error
	// HostSCA returns the host's policies (by id) with their latest
	// summary, results (by check id) and up to history summaries, newest
	// first. A host without any has no policies.
	HostSCA(ctx context.Context, agentID string, history int) (Host, error)
	// FleetSCA returns every host's latest summaries and the limit checks
	// failing on most hosts.
	FleetSCA(ctx context.Context, limit int) (Fleet, error)
}

func text(ev *event.Event, name string, max int) (string, error) {
	v, _ := ev.Get(name)
	if len(v) > max {
		return "", fmt.Errorf("%w: %s longer than %d bytes", ErrMalformed, name, max)
	}
	if !utf8.ValidString(v) {
		return "", fmt.Errorf("%w: %s is not valid UTF-8", ErrMalformed, name)
	}
	return v, nil
}

// common reads the fields both kinds share.
func common(ev *event.Event) (policyID, scanID string, err error) {
	if policyID, err = text(ev, "PolicyId", maxID); err != nil {
		return
	}
	if scanID, err = text(ev, "ScanId", maxID); err != nil {
		return
	}
	if policyID == "" || scanID == "" {
		return "", "", fmt.Errorf("%w: no PolicyId or ScanId", ErrMalformed)
	}
	if ev.Time.IsZero() {
		return "", "", fmt.Errorf("%w: no time", ErrMalformed)
	}
	return policyID, scanID, nil
}

// ResultFromEvent reads an sca_result event. ok is false for other
// categories; err wraps ErrMalformed.
func ResultFromEvent(ev *event.Event) (r Result, ok bool, err error) {
	if !ev.HasCategory(CategoryResult) {
		return r, false, nil
	}
	if r.PolicyID, r.ScanID, err = common(ev); err != nil {
		return r, true, err
	}
	r.ScannedAt = ev.Time.UTC()
	cid, _ := ev.Get("CheckId")
	if r.CheckID, err = strconv.ParseInt(cid, 10, 64); err != nil {
		return r, true, fmt.Errorf("%w: CheckId %.20q", ErrMalformed, cid)
	}
	fields := []struct {
		name string
		dst  *string
		max  int
	}{
		{"Title", &r.Title, maxText}, {"Status", &r.Status, maxID}, {"Reason", &r.Reason, maxText},
		{"Description", &r.Description, maxText}, {"Rationale", &r.Rationale, maxText}, {"Remediation", &r.Remediation, maxText},
	}
	for _, f := range fields {
		if *f.dst, err = text(ev, f.name, f.max); err != nil {
			return r, true, err
		}
	}
	switch r.Status {
	case StatusPassed, StatusFailed, StatusNotApplicable:
	default:
		return r, true, fmt.Errorf("%w: Status %.20q", ErrMalformed, r.Status)
	}
	if v, _ := ev.Get("Compliance"); v != "" {
		if len(v) > maxText || json.Unmarshal([]byte(v), &r.Compliance) != nil {
			return r, true, fmt.Errorf("%w: Compliance is not a JSON object of lists", ErrMalformed)
		}
	}
	if v, _ := ev.Get("References"); v != "" {
		if len(v) > maxText || json.Unmarshal([]byte(v), &r.References) != nil {
			return r, true, fmt.Errorf("%w: References is not a JSON list", ErrMalformed)
		}
	}
	if v, _ := ev.Get("Rules"); v != "" {
		var rules []struct {
			Rule    string `json:"rule"`
			Outcome string `json:"outcome"`
			Reason  string `json:"reason"`
		}
		if len(v) > maxRules || json.Unmarshal([]byte(v), &rules) != nil {
			return r, true, fmt.Errorf("%w: Rules is not a JSON list of rules", ErrMalformed)
		}
		r.Rules, _ = json.Marshal(rules) // canonical: unknown keys dropped
	}
	return r, true, nil
}

// SummaryFromEvent reads an sca_summary event.
func SummaryFromEvent(ev *event.Event) (s Summary, ok bool, err error) {
	if !ev.HasCategory(CategorySummary) {
		return s, false, nil
	}
	if s.PolicyID, s.ScanID, err = common(ev); err != nil {
		return s, true, err
	}
	s.ScannedAt = ev.Time.UTC()
	for _, f := range []struct {
		name string
		dst  *string
	}{{"PolicyName", &s.PolicyName}, {"PolicySource", &s.PolicySource}, {"PolicySha256", &s.PolicySHA256},
		{"Trigger", &s.Trigger}, {"RequirementsReason", &s.RequirementsReason}} {
		if *f.dst, err = text(ev, f.name, maxText); err != nil {
			return s, true, err
		}
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"Passed", &s.Passed}, {"Failed", &s.Failed}, {"NotApplicable", &s.NotApplicable}, {"Total", &s.Total}, {"Score", &s.Score}} {
		v, _ := ev.Get(f.name)
		n, err := strconv.Atoi(v)
		if err != nil || n < -1 || n > MaxChecks*10 {
			return s, true, fmt.Errorf("%w: %s %.20q", ErrMalformed, f.name, v)
		}
		*f.dst = n
	}
	if s.Passed < 0 || s.Failed < 0 || s.NotApplicable < 0 || s.Passed+s.Failed+s.NotApplicable != s.Total || s.Score > 100 {
		return s, true, fmt.Errorf("%w: counts %d+%d+%d != %d or score %d", ErrMalformed, s.Passed, s.Failed, s.NotApplicable, s.Total, s.Score)
	}
	a, _ := ev.Get("Applicable")
	s.Applicable = a == "true"
	if v, _ := ev.Get("DurationMs"); v != "" {
		s.DurationMs, _ = strconv.ParseInt(v, 10, 64)
	}
	return s, true, nil
}

// Recorder feeds sca events from stored batches to a Store.
type Recorder struct {
	Store  Store
	Logger *slog.Logger // malformed events are logged here; nil discards
}

// AfterStore stores the sca results and summaries among evs (a batch the
// pipeline has just stored): results first, grouped per agent, then the
// summaries. A malformed event is logged and skipped; a Store error is
// returned so the batch is delivered again (both writes are idempotent).
func (r *Recorder) AfterStore(ctx context.Context, evs []eventstore.Stored) error {
	var results map[string][]Result
	type sum struct {
		agent string
		s     Summary
	}
	var sums []sum
	for i := range evs {
		ev := evs[i].Event
		if res, ok, err := ResultFromEvent(ev); ok {
			if err != nil {
				r.skip(evs[i], err)
				continue
			}
			if results == nil {
				results = map[string][]Result{}
			}
			results[evs[i].AgentID] = append(results[evs[i].AgentID], res)
		} else if s, ok, err := SummaryFromEvent(ev); ok {
			if err != nil {
				r.skip(evs[i], err)
				continue
			}
			sums = append(sums, sum{evs[i].AgentID, s})
		}
	}
	for agent, rs := range results {
		if err := r.Store.AddSCAResults(ctx, agent, rs); err != nil {
			return fmt.Errorf("sca: %w", err)
		}
	}
	for _, s := range sums {
		if err := r.Store.AddSCASummary(ctx, s.agent, s.s); err != nil {
			return fmt.Errorf("sca: %w", err)
		}
	}
	return nil
}

func (r *Recorder) skip(st eventstore.Stored, err error) {
	if r.Logger != nil {
		r.Logger.Warn("sca event skipped", "agent", st.AgentID, "seq", st.Seq, "err", err)
	}
}

// SortWorstFirst orders host summaries worst first: lowest score (hosts
// without a score, -1, last), then most failures, then by agent and policy.
func SortWorstFirst(hs []HostSummary) {
	key := func(h HostSummary) int {
		if h.Score < 0 {
			return 101
		}
		return h.Score
	}
	sort.SliceStable(hs, func(i, j int) bool {
		a, b := hs[i], hs[j]
		if key(a) != key(b) {
			return key(a) < key(b)
		}
		if a.Failed != b.Failed {
			return a.Failed > b.Failed
		}
		if a.AgentID != b.AgentID {
			return a.AgentID < b.AgentID
		}
		return a.PolicyID < b.PolicyID
	})
}
