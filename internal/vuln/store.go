package vuln

import (
	"context"
	"log/slog"
	"time"

	"github.com/vigil-edr/vigil/internal/inventory"
)

// Import describes one imported file.
type Import struct {
	Source string // SourceOSV or SourceDebian
	File   string // the file's base name, for status
	SHA256 string
	// Replace drops every advisory of Source first: a Debian tracker file
	// is the whole tracker. Otherwise advisories replace the stored ones
	// with the same source and id, and the rest stay (OSV files and zips
	// each hold some advisories).
	Replace bool
	// Skipped counts what the parser left out, by reason ("withdrawn",
	// "ecosystem PyPI", "not affected"), shown by status.
	Skipped map[string]int
}

// ImportResult counts what an import stored.
type ImportResult struct {
	Advisories, Affected int
	Generation           int64 // the database generation after it
}

// Evaluation labels a host's findings with what they were computed from.
type Evaluation struct {
	SnapshotID  string    `json:"snapshot_id"` // the inventory snapshot
	Generation  int64     `json:"generation"`  // the database generation
	EvaluatedAt time.Time `json:"evaluated_at"`
	Ecosystem   string    `json:"ecosystem,omitempty"`
	// Note says why a host has no findings although it has an inventory
	// ("OS "alpine" is not matched"); empty otherwise.
	Note string `json:"note,omitempty"`
}

// HostFindings is a host's findings and their label. A host never
// evaluated has a zero Evaluation and no findings.
type HostFindings struct {
	AgentID    string     `json:"agent_id"`
	Evaluation Evaluation `json:"evaluation"`
	Findings   []Finding  `json:"findings"`
}

// Counts counts findings by level, and those with a fix.
type Counts struct {
	Total   int           `json:"total"`
	Fixable int           `json:"fixable"`
	ByLevel map[Level]int `json:"by_level"`
}

// HostSummary is one host's line in the fleet summary.
type HostSummary struct {
	AgentID string `json:"agent_id"`
	// Hostname is filled in by the API from the enrolled agents; the Store
	// leaves it empty.
	Hostname   string     `json:"hostname,omitempty"`
	Evaluation Evaluation `json:"evaluation"`
	Counts
}

// AdvisorySummary is one advisory across the fleet.
type AdvisorySummary struct {
	Source     string   `json:"source"`
	AdvisoryID string   `json:"advisory_id"`
	Package    string   `json:"package"`
	Severity   Severity `json:"severity"`
	Hosts      int      `json:"hosts"`
}

// Fleet summarises every evaluated host: totals, hosts worst first (most
// critical, then high, … findings), and the advisories affecting the most
// hosts.
type Fleet struct {
	Counts
	Hosts      []HostSummary     `json:"hosts"`
	Advisories []AdvisorySummary `json:"top_advisories"`
}

// SourceStatus describes the stored advisories of one source.
type SourceStatus struct {
	Source     string         `json:"source"`
	Advisories int            `json:"advisories"`
	Affected   int            `json:"affected"`
	Ecosystems map[string]int `json:"ecosystems"` // affected entries per ecosystem
	LastImport *ImportRecord  `json:"last_import,omitempty"`
}

// ImportRecord is one past import.
type ImportRecord struct {
	File       string         `json:"file"`
	SHA256     string         `json:"sha256"`
	At         time.Time      `json:"at"`
	Advisories int            `json:"advisories"`
	Affected   int            `json:"affected"`
	Skipped    map[string]int `json:"skipped,omitempty"`
}

// Status describes the database and the evaluation.
type Status struct {
	Generation int64          `json:"generation"`
	Sources    []SourceStatus `json:"sources"`
	Hosts      int            `json:"hosts_evaluated"`
	Stale      int            `json:"hosts_stale"` // with an inventory, not evaluated against the current snapshot and database
	Findings   int            `json:"findings"`
}

// Store keeps the advisory database and the findings per host.
// store/sqlite implements it.
type Store interface {
	// ImportAdvisories stores advs (see Import.Replace) in one transaction
	// and increments the database generation.
	ImportAdvisories(ctx context.Context, imp Import, advs []Advisory, now time.Time) (ImportResult, error)
	// Candidates returns the affected entries of ecosystem naming any of
	// names, each with its advisory, and the generation they belong to.
	Candidates(ctx context.Context, ecosystem string, names []string) ([]Candidate, int64, error)
	// Generation is the current database generation (0: nothing imported).
	Generation(ctx context.Context) (int64, error)
	// ReplaceFindings replaces agentID's findings and their label.
	ReplaceFindings(ctx context.Context, agentID string, st Evaluation, fs []Finding) error
	// StaleHosts returns the hosts with an inventory whose findings are
	// missing or labelled with another snapshot or generation.
	StaleHosts(ctx context.Context) ([]string, error)
	// HostFindings returns agentID's findings, worst first.
	HostFindings(ctx context.Context, agentID string) (HostFindings, error)
	// Fleet summarises all hosts' findings; top bounds Fleet.Advisories.
	Fleet(ctx context.Context, top int) (Fleet, error)
	// VulnStatus describes the database.
	VulnStatus(ctx context.Context) (Status, error)
}

// Inventories reads hosts' inventories; inventory.Store satisfies it.
type Inventories interface {
	HostInventory(ctx context.Context, agentID string) (inventory.Host, error)
}

// Evaluator keeps every host's findings current.
type Evaluator struct {
	Store       Store
	Inventories Inventories
	Logger      *slog.Logger     // nil discards
	Now         func() time.Time // default time.Now
}

// EvaluateHost recomputes agentID's findings from its latest inventory
// and the current database and stores them.
func (e *Evaluator) EvaluateHost(ctx context.Context, agentID string) (HostFindings, error) {
	inv, err := e.Inventories.HostInventory(ctx, agentID)
	if err != nil {
		return HostFindings{}, err
	}
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	hf := HostFindings{AgentID: agentID, Evaluation: Evaluation{SnapshotID: inv.SnapshotID, EvaluatedAt: now().UTC()}, Findings: []Finding{}}
	eco, err := HostEcosystem(inv.OS)
	if err != nil {
		gen, gerr := e.Store.Generation(ctx)
		if gerr != nil {
			return hf, gerr
		}
		hf.Evaluation.Generation, hf.Evaluation.Note = gen, err.Error()
		return hf, e.Store.ReplaceFindings(ctx, agentID, hf.Evaluation, nil)
	}
	cands, gen, err := e.Store.Candidates(ctx, eco.Name, PackageNames(inv.Packages, eco))
	if err != nil {
		return hf, err
	}
	hf.Evaluation.Generation, hf.Evaluation.Ecosystem = gen, eco.Name
	hf.Findings = Match(inv.Packages, eco, cands)
	return hf, e.Store.ReplaceFindings(ctx, agentID, hf.Evaluation, hf.Findings)
}

// EvaluateStale evaluates every stale host (Store.StaleHosts) and returns
// how many it evaluated. A host that fails is logged and skipped; the
// first error is returned after the others were tried.
func (e *Evaluator) EvaluateStale(ctx context.Context) (int, error) {
	ids, err := e.Store.StaleHosts(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var first error
	for _, id := range ids {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if _, err := e.EvaluateHost(ctx, id); err != nil {
			if e.Logger != nil {
				e.Logger.Warn("vulnerability evaluation failed", "agent", id, "err", err)
			}
			if first == nil {
				first = err
			}
			continue
		}
		n++
	}
	return n, first
}

// Run evaluates stale hosts when woken (an inventory snapshot was
// applied) and every interval (an import by another process), until ctx
// ends. wake should be buffered (capacity 1) and sent to without
// blocking.
func (e *Evaluator) Run(ctx context.Context, wake <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := e.EvaluateStale(ctx); err != nil && ctx.Err() == nil && e.Logger != nil {
			e.Logger.Warn("vulnerability evaluation", "evaluated", n, "err", err)
		} else if n > 0 && e.Logger != nil {
			e.Logger.Info("vulnerabilities evaluated", "hosts", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-t.C:
		}
	}
}
