package posture

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
)

// Event categories the sensor sends. docs/sca.md, "Events", lists the
// fields.
const (
	CategoryResult  = "sca_result"
	CategorySummary = "sca_summary"
)

// Triggers, the Trigger field: why a scan ran.
const (
	TriggerStart     = "start"
	TriggerScheduled = "scheduled"
	TriggerWatch     = "watch" // a file a policy reads changed
)

// SensorOptions configure a Sensor.
type SensorOptions struct {
	// Policies are evaluated in this order. The agent loads them once at
	// start (built-ins and configured files).
	Policies []*Policy
	// Every is how often every policy is evaluated; zero means 12 h. One
	// scan runs at start.
	Every time.Duration
	// WatchEvery is how often the files the policies read (their f: and d:
	// targets outside /proc and /sys) are stat'ed; a policy whose files
	// changed, and then stayed unchanged for one more tick, is evaluated
	// again. Zero means 60 s; negative disables watching.
	WatchEvery time.Duration
	// Eval configures the evaluator (root, commands, timeouts).
	Eval   Options
	Logger *slog.Logger // nil discards
}

// SensorStatus says what the sensor does, for agent health.
type SensorStatus struct {
	Policies      int
	Scans         uint64
	LastScan      time.Time
	LastDuration  time.Duration
	Passed        int // in the last scan of every policy, summed
	Failed        int
	NotApplicable int
	Watched       int // files and directories watched for changes
	Commands      bool
}

// String renders the status for the health event.
func (s SensorStatus) String() string {
	last := "never"
	if !s.LastScan.IsZero() {
		last = s.LastScan.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("policies=%d scans=%d last=%s took=%s passed=%d failed=%d not_applicable=%d watched=%d commands=%v",
		s.Policies, s.Scans, last, s.LastDuration.Round(time.Millisecond), s.Passed, s.Failed, s.NotApplicable, s.Watched, s.Commands)
}

// Sensor evaluates policies periodically and when their files change.
type Sensor struct {
	opts SensorOptions
	ev   *Evaluator

	mu     sync.Mutex
	status SensorStatus
	last   map[string]Summary // policy id → its last summary
}

// NewSensor returns a Sensor with defaults filled in.
func NewSensor(opts SensorOptions) *Sensor {
	if opts.Every <= 0 {
		opts.Every = 12 * time.Hour
	}
	if opts.WatchEvery == 0 {
		opts.WatchEvery = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Sensor{opts: opts, ev: NewEvaluator(opts.Eval), last: map[string]Summary{},
		status: SensorStatus{Policies: len(opts.Policies), Commands: opts.Eval.Commands}}
}

// Name is the sensor's name in health reports.
func (s *Sensor) Name() string { return "sca" }

// Status returns the sensor's state.
func (s *Sensor) Status() SensorStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Run scans every policy now and every Every, and a policy again when its
// watched files changed, until ctx ends. Events are sent through out from
// the calling goroutine.
func (s *Sensor) Run(ctx context.Context, out func(*event.Event)) error {
	watch := make([][]string, len(s.opts.Policies))
	sigs := make([]string, len(s.opts.Policies))
	n := 0
	for i, p := range s.opts.Policies {
		watch[i] = WatchedPaths(p, s.ev.opts.Root)
		n += len(watch[i])
		sigs[i] = signature(watch[i])
	}
	s.mu.Lock()
	s.status.Watched = n
	s.mu.Unlock()
	s.scanAll(ctx, TriggerStart, out)

	every := time.NewTicker(s.opts.Every)
	defer every.Stop()
	var tick <-chan time.Time
	if s.opts.WatchEvery > 0 {
		t := time.NewTicker(s.opts.WatchEvery)
		defer t.Stop()
		tick = t.C
	}
	pending := make([]string, len(s.opts.Policies)) // a changed signature waiting for one quiet tick
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-every.C:
			s.scanAll(ctx, TriggerScheduled, out)
			for i := range sigs {
				sigs[i], pending[i] = signature(watch[i]), ""
			}
		case <-tick:
			for i, p := range s.opts.Policies {
				now := signature(watch[i])
				switch {
				case now == sigs[i]:
					pending[i] = ""
				case now != pending[i]:
					pending[i] = now // changed: wait until it stays the same for a tick
				default:
					sigs[i], pending[i] = now, ""
					s.scan(ctx, p, TriggerWatch, out)
				}
			}
		}
	}
}

func (s *Sensor) scanAll(ctx context.Context, trigger string, out func(*event.Event)) {
	for _, p := range s.opts.Policies {
		if ctx.Err() != nil {
			return
		}
		s.scan(ctx, p, trigger, out)
	}
}

// scan evaluates one policy and sends its events: one sca_result per check,
// then the sca_summary.
func (s *Sensor) scan(ctx context.Context, p *Policy, trigger string, out func(*event.Event)) {
	r := s.ev.Evaluate(ctx, p)
	scanID := newScanID()
	for _, ev := range Events(r, scanID, trigger) {
		out(ev)
	}
	s.mu.Lock()
	s.last[p.ID] = r.Summary
	s.status.Scans++
	s.status.LastScan, s.status.LastDuration = r.Started, r.Finished.Sub(r.Started)
	s.status.Passed, s.status.Failed, s.status.NotApplicable = 0, 0, 0
	for _, sum := range s.last {
		s.status.Passed += sum.Passed
		s.status.Failed += sum.Failed
		s.status.NotApplicable += sum.NotApplicable
	}
	s.mu.Unlock()
	s.opts.Logger.Debug("sca scan", "policy", p.ID, "trigger", trigger, "passed", r.Summary.Passed, "failed", r.Summary.Failed,
		"not_applicable", r.Summary.NotApplicable, "took", r.Finished.Sub(r.Started))
}

func newScanID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Events renders a report as the events the sensor sends: one sca_result
// per check, in policy order, then one sca_summary. Every event has the
// scan's start as its time.
func Events(r *Report, scanID, trigger string) []*event.Event {
	evs := make([]*event.Event, 0, len(r.Results)+1)
	common := func(cat string) *event.Event {
		ev := &event.Event{Time: r.Started, Product: runtime.GOOS, Categories: []string{cat}}
		ev.Add("EventType", cat)
		ev.Add("ScanId", scanID)
		ev.Add("Trigger", trigger)
		ev.Add("PolicyId", r.PolicyID)
		ev.Add("PolicyName", r.Name)
		ev.Add("PolicySource", r.Source)
		ev.Add("PolicySha256", r.SHA256)
		return ev
	}
	for _, res := range r.Results {
		ev := common(CategoryResult)
		ev.Add("CheckId", strconv.FormatInt(res.CheckID, 10))
		ev.Add("Title", res.Title)
		ev.Add("Status", string(res.Status))
		ev.Add("Reason", res.Reason)
		if c := res.Check; c != nil {
			addIf(ev, "Description", c.Description)
			addIf(ev, "Rationale", c.Rationale)
			addIf(ev, "Remediation", c.Remediation)
			if len(c.Compliance) > 0 {
				b, _ := json.Marshal(c.Compliance)
				ev.Add("Compliance", string(b))
			}
			if len(c.References) > 0 {
				b, _ := json.Marshal(c.References)
				ev.Add("References", string(b))
			}
		}
		if len(res.Rules) > 0 {
			b, _ := json.Marshal(res.Rules)
			ev.Add("Rules", string(b))
		}
		evs = append(evs, ev)
	}
	ev := common(CategorySummary)
	s := r.Summary
	ev.Add("Passed", strconv.Itoa(s.Passed))
	ev.Add("Failed", strconv.Itoa(s.Failed))
	ev.Add("NotApplicable", strconv.Itoa(s.NotApplicable))
	ev.Add("Total", strconv.Itoa(s.Total))
	ev.Add("Score", strconv.Itoa(s.Score))
	ev.Add("Applicable", strconv.FormatBool(r.Applicable))
	addIf(ev, "RequirementsReason", r.RequirementsReason)
	ev.Add("DurationMs", strconv.FormatInt(r.Finished.Sub(r.Started).Milliseconds(), 10))
	evs = append(evs, ev)
	return evs
}

func addIf(ev *event.Event, name, v string) {
	if v != "" {
		ev.Add(name, v)
	}
}

// WatchedPaths lists the files and directories a policy's f: and d: rules
// (and requirements) name, with variables expanded, globs left out and
// /proc and /sys skipped (their times change all the time), as host paths
// under root, sorted.
func WatchedPaths(p *Policy, root string) []string {
	set := map[string]bool{}
	add := func(rules []string) {
		for _, raw := range rules {
			r, err := parseRule(raw, p.Variables, p.RegexType)
			if err != nil || (r.kind != 'f' && r.kind != 'd') {
				continue
			}
			for _, t := range r.targets {
				if !filepath.IsAbs(t) || strings.ContainsAny(t, "*?[") || strings.HasPrefix(t, "/proc/") || strings.HasPrefix(t, "/sys/") {
					continue
				}
				if root != "" && root != "/" {
					t = filepath.Join(root, t)
				}
				set[filepath.Clean(t)] = true
			}
		}
	}
	if p.Requirements != nil {
		add(p.Requirements.Rules)
	}
	for _, c := range p.Checks {
		add(c.Rules)
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// signature sums up the paths' state: size, mode, owner, times and inode
// of each, and for a directory the same of its direct entries (bounded).
func signature(paths []string) string {
	var b strings.Builder
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			b.WriteString(p + " -\n")
			continue
		}
		b.WriteString(p + " " + statLine(fi) + "\n")
		if fi.IsDir() {
			ents, _ := os.ReadDir(p)
			for i, e := range ents {
				if i >= 1000 {
					break
				}
				if efi, err := e.Info(); err == nil {
					b.WriteString("  " + e.Name() + " " + statLine(efi) + "\n")
				}
			}
		}
	}
	return sha256hex([]byte(b.String()))
}

func statLine(fi os.FileInfo) string {
	uid, gid, _ := fileOwner(fi)
	return fmt.Sprintf("%d %o %d %d %d %s", fi.Size(), fi.Mode(), fi.ModTime().UnixNano(), uid, gid, inodeOf(fi))
}
