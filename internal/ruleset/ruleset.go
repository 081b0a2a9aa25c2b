package ruleset

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-edr/vigil/internal/detect/correlate"
	"github.com/vigil-edr/vigil/internal/detect/sigma"
)

// Set is one compiled generation of the rules. A Set is immutable; a reload
// builds a new one and swaps it in, so detection never sees a half-loaded set.
// Correlation state lives in the Set's correlation engine and restarts with
// each reload.
type Set struct {
	Engine   *sigma.Engine
	Corr     *correlate.Engine
	Rules    []*sigma.Rule // every parsed rule, enabled or not
	Rejected []*sigma.Error
	Disabled map[string]bool
	LoadedAt time.Time
	// CorrMu serialises use of Corr, which is not safe for concurrent use.
	CorrMu sync.Mutex
}

// Options configure a Manager.
type Options struct {
	Paths   []string // rule files and directories
	Store   Store
	Compile sigma.Options
	Now     func() time.Time
}

// Manager holds the current Set and rebuilds it when files or choices change.
type Manager struct {
	opts    Options
	cur     atomic.Pointer[Set]
	mu      sync.Mutex // serialises reloads
	stamp   string     // fingerprint of the rule files at the last load
	reloads atomic.Uint64
}

// New returns a Manager; call Load before Current.
func New(opts Options) *Manager {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Manager{opts: opts}
}

// Current returns the live Set (nil before the first Load).
func (m *Manager) Current() *Set { return m.cur.Load() }

// Reloads counts successful loads.
func (m *Manager) Reloads() uint64 { return m.reloads.Load() }

// Load reads the rule files, leaves out disabled rules, compiles the rest and
// makes them live. Rules that fail to load are listed in Set.Rejected; Load
// itself fails only when the files cannot be read at all or storage fails.
func (m *Manager) Load(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.loadLocked(ctx)
}

func (m *Manager) loadLocked(ctx context.Context) error {
	stamp, err := m.fingerprint(ctx)
	if err != nil {
		return err
	}
	rules, errs := sigma.LoadPaths(m.opts.Paths...)
	disabledIDs, err := m.opts.Store.DisabledRules(ctx)
	if err != nil {
		return fmt.Errorf("reading disabled rules: %w", err)
	}
	disabled := map[string]bool{}
	for _, id := range disabledIDs {
		disabled[id] = true
	}
	var enabled []*sigma.Rule
	for _, r := range rules {
		if !disabled[r.ID] {
			enabled = append(enabled, r)
		}
	}
	eng, cerrs := sigma.NewEngine(enabled, m.opts.Compile)
	errs = append(errs, cerrs...)
	corr, rerrs := correlate.New(enabled, func(ref string) bool { _, ok := eng.Lookup(ref); return ok }, correlate.Options{})
	errs = append(errs, rerrs...)
	set := &Set{Engine: eng, Corr: corr, Rules: rules, Disabled: disabled, LoadedAt: m.opts.Now()}
	for _, e := range errs {
		var se *sigma.Error
		if errors.As(e, &se) {
			set.Rejected = append(set.Rejected, se)
		} else {
			set.Rejected = append(set.Rejected, &sigma.Error{Reason: e.Error()})
		}
	}
	m.cur.Store(set)
	m.stamp = stamp
	m.reloads.Add(1)
	return nil
}

// SetEnabled enables or disables a rule by id and reloads.
func (m *Manager) SetEnabled(ctx context.Context, id string, enabled bool) error {
	if s := m.Current(); s != nil {
		known := false
		for _, r := range s.Rules {
			if r.ID == id {
				known = true
				break
			}
		}
		if !known {
			return fmt.Errorf("rule %q is not loaded", id)
		}
	}
	if err := m.opts.Store.SetRuleEnabled(ctx, id, enabled); err != nil {
		return err
	}
	return m.Load(ctx)
}

// Watch reloads whenever a rule file is added, removed or modified, or a rule
// is enabled or disabled elsewhere (another server process, the CLI),
// checking every interval, until ctx ends. Errors are reported to onErr.
func (m *Manager) Watch(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		stamp, err := m.fingerprint(ctx)
		if err == nil {
			m.mu.Lock()
			if stamp != m.stamp {
				err = m.loadLocked(ctx)
			}
			m.mu.Unlock()
		}
		if err != nil {
			if ctx.Err() != nil {
				return // stopping: the error is the cancellation, not news
			}
			onErr(err)
		}
	}
}

// fingerprint summarises the rule files' names, sizes and modification
// times, and the disabled rules.
func (m *Manager) fingerprint(ctx context.Context) (string, error) {
	disabled, err := m.opts.Store.DisabledRules(ctx)
	if err != nil {
		return "", fmt.Errorf("reading disabled rules: %w", err)
	}
	sort.Strings(disabled)
	parts := []string{fmt.Sprint(disabled)}
	for _, root := range m.opts.Paths {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			parts = append(parts, fmt.Sprintf("%s|%d|%d", p, info.Size(), info.ModTime().UnixNano()))
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("reading rules: %w", err)
		}
	}
	sort.Strings(parts)
	return fmt.Sprint(parts), nil
}

// Info describes one rule for the API and the console.
type Info struct {
	ID, Title, Level, Path string
	Tags                   []string
	Kind                   string // detection, correlation, filter
	Enabled                bool
	Matches                uint64
	Evaluations            uint64
	Cost                   time.Duration // estimated total evaluation time
	LastError              string
}

// List describes every loaded or rejected rule, sorted by title.
func (m *Manager) List() []Info {
	s := m.Current()
	if s == nil {
		return nil
	}
	rejected := map[string]*sigma.Error{}
	for _, e := range s.Rejected {
		rejected[e.Path+"|"+e.Rule] = e
	}
	var out []Info
	for _, r := range s.Rules {
		in := Info{ID: r.ID, Title: r.Title, Level: r.Level.String(), Path: r.Path, Tags: r.Tags, Enabled: !s.Disabled[r.ID]}
		switch r.Kind {
		case sigma.KindCorrelation:
			in.Kind = "correlation"
		case sigma.KindFilter:
			in.Kind = "filter"
		default:
			in.Kind = "detection"
		}
		if c, ok := s.Engine.Lookup(r.ID); ok && r.ID != "" && c.Rule == r {
			in.Matches = c.Matches()
			in.Evaluations, in.Cost = c.Evaluations()
		}
		if e, ok := rejected[r.Path+"|"+r.Ref()]; ok {
			in.LastError = e.Reason
			delete(rejected, r.Path+"|"+r.Ref())
		}
		out = append(out, in)
	}
	for _, e := range rejected { // files or documents that did not parse at all
		out = append(out, Info{ID: e.Rule, Path: e.Path, Title: e.Rule, Kind: "rejected", LastError: e.Error()})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Title < out[j].Title })
	return out
}
