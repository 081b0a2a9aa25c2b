package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/vuln"
)

var _ vuln.Store = (*DB)(nil)

// ImportAdvisories stores an import's advisories in one durable
// transaction (see vuln.Store).
func (d *DB) ImportAdvisories(ctx context.Context, imp vuln.Import, advs []vuln.Advisory, now time.Time) (vuln.ImportResult, error) {
	var res vuln.ImportResult
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		if imp.Replace {
			if _, err := tx.ExecContext(ctx, `DELETE FROM vuln_advisories WHERE source = ?`, imp.Source); err != nil {
				return err
			}
		}
		upsert, err := tx.PrepareContext(ctx, `INSERT INTO vuln_advisories(source, advisory_id, aliases, summary, modified, severity)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT(source, advisory_id) DO UPDATE SET aliases = excluded.aliases, summary = excluded.summary,
				modified = excluded.modified, severity = excluded.severity
			RETURNING id`)
		if err != nil {
			return err
		}
		defer upsert.Close()
		clear, err := tx.PrepareContext(ctx, `DELETE FROM vuln_affected WHERE advisory = ?`)
		if err != nil {
			return err
		}
		defer clear.Close()
		ins, err := tx.PrepareContext(ctx, `INSERT INTO vuln_affected(advisory, ecosystem, package, data) VALUES (?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for i := range advs {
			a := &advs[i]
			aliases, _ := json.Marshal(orEmpty(a.Aliases))
			sev, _ := json.Marshal(a.Severity)
			var id int64
			if err := upsert.QueryRowContext(ctx, imp.Source, a.ID, string(aliases), a.Summary, ts(a.Modified), string(sev)).Scan(&id); err != nil {
				return fmt.Errorf("advisory %s: %w", a.ID, err)
			}
			if !imp.Replace {
				if _, err := clear.ExecContext(ctx, id); err != nil {
					return err
				}
			}
			for _, af := range a.Affected {
				data, err := json.Marshal(af)
				if err != nil {
					return err
				}
				if _, err := ins.ExecContext(ctx, id, af.Ecosystem, af.Package, string(data)); err != nil {
					return err
				}
				res.Affected++
			}
			res.Advisories++
		}
		skipped, _ := json.Marshal(imp.Skipped)
		if _, err := tx.ExecContext(ctx, `INSERT INTO vuln_imports(source, file, sha256, imported_at, advisories, affected, skipped) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			imp.Source, imp.File, imp.SHA256, ts(now), res.Advisories, res.Affected, string(skipped)); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `UPDATE counters SET value = value + 1 WHERE name = 'vulndb_generation' RETURNING value`).Scan(&res.Generation)
	})
	if err != nil {
		return res, fmt.Errorf("sqlite: vulnerability import of %s: %w", imp.File, err)
	}
	return res, nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Candidates returns the affected entries for names in ecosystem, read in
// one transaction with the generation.
func (d *DB) Candidates(ctx context.Context, ecosystem string, names []string) ([]vuln.Candidate, int64, error) {
	tx, err := d.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	var gen int64
	if err := tx.QueryRowContext(ctx, `SELECT value FROM counters WHERE name = 'vulndb_generation'`).Scan(&gen); err != nil {
		return nil, 0, fmt.Errorf("sqlite: vulnerability generation: %w", err)
	}
	advs := map[int64]*vuln.Advisory{}
	var out []vuln.Candidate
	// SQLite allows 32,766 parameters; 500 names a query keeps plans short.
	for len(names) > 0 {
		n := min(len(names), 500)
		chunk := names[:n]
		names = names[n:]
		args := []any{ecosystem}
		for _, s := range chunk {
			args = append(args, s)
		}
		rows, err := tx.QueryContext(ctx, `SELECT f.advisory, f.package, f.data, a.source, a.advisory_id, a.aliases, a.summary, a.modified, a.severity
			FROM vuln_affected f JOIN vuln_advisories a ON a.id = f.advisory
			WHERE f.ecosystem = ? AND f.package IN (?`+strings.Repeat(", ?", n-1)+`)
			ORDER BY a.source, a.advisory_id, f.package, f.rowid`, args...)
		if err != nil {
			return nil, 0, fmt.Errorf("sqlite: vulnerability candidates: %w", err)
		}
		for rows.Next() {
			var id, modified int64
			var pkg, data, source, advID, aliases, summary, sev string
			if err := rows.Scan(&id, &pkg, &data, &source, &advID, &aliases, &summary, &modified, &sev); err != nil {
				rows.Close()
				return nil, 0, err
			}
			a := advs[id]
			if a == nil {
				a = &vuln.Advisory{Source: source, ID: advID, Summary: summary, Modified: fromTS(modified)}
				if json.Unmarshal([]byte(aliases), &a.Aliases) != nil || json.Unmarshal([]byte(sev), &a.Severity) != nil {
					rows.Close()
					return nil, 0, fmt.Errorf("sqlite: advisory %s: undecodable columns", advID)
				}
				advs[id] = a
			}
			c := vuln.Candidate{Advisory: a, Affected: vuln.Affected{Ecosystem: ecosystem, Package: pkg}}
			if err := json.Unmarshal([]byte(data), &c.Affected); err != nil {
				rows.Close()
				return nil, 0, fmt.Errorf("sqlite: advisory %s: affected %s: %w", advID, pkg, err)
			}
			out = append(out, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, 0, err
		}
	}
	return out, gen, nil
}

// Generation returns the database generation.
func (d *DB) Generation(ctx context.Context) (int64, error) {
	var gen int64
	err := d.r.QueryRowContext(ctx, `SELECT value FROM counters WHERE name = 'vulndb_generation'`).Scan(&gen)
	return gen, err
}

// ReplaceFindings replaces a host's findings and their label.
func (d *DB) ReplaceFindings(ctx context.Context, agentID string, st vuln.Evaluation, fs []vuln.Finding) error {
	err := d.writeTx(ctx, false, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM vuln_findings WHERE agent_id = ?`, agentID); err != nil {
			return err
		}
		ins, err := tx.PrepareContext(ctx, `INSERT INTO vuln_findings(agent_id, rank, source, advisory_id, package, level, fixable, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for i := range fs {
			f := &fs[i]
			data, err := json.Marshal(f)
			if err != nil {
				return err
			}
			if _, err := ins.ExecContext(ctx, agentID, i, f.Source, f.AdvisoryID, f.Package, string(f.Severity.Level), b2i(f.Fixable()), string(data)); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO vuln_hosts(agent_id, snapshot_id, generation, evaluated_at, ecosystem, note) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT(agent_id) DO UPDATE SET snapshot_id = excluded.snapshot_id, generation = excluded.generation,
				evaluated_at = excluded.evaluated_at, ecosystem = excluded.ecosystem, note = excluded.note`,
			agentID, st.SnapshotID, st.Generation, ts(st.EvaluatedAt), st.Ecosystem, st.Note)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: vulnerability findings of %s: %w", agentID, err)
	}
	return nil
}

// staleHosts is the query behind StaleHosts and the stale count.
const staleHosts = `FROM inventory_hosts i LEFT JOIN vuln_hosts v ON v.agent_id = i.agent_id
	WHERE v.agent_id IS NULL OR v.snapshot_id != i.snapshot_id
		OR v.generation != (SELECT value FROM counters WHERE name = 'vulndb_generation')`

// StaleHosts returns hosts whose findings are out of date.
func (d *DB) StaleHosts(ctx context.Context) ([]string, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT i.agent_id `+staleHosts+` ORDER BY i.agent_id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: stale hosts: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

func scanState(row interface{ Scan(...any) error }, st *vuln.Evaluation) error {
	var at int64
	if err := row.Scan(&st.SnapshotID, &st.Generation, &at, &st.Ecosystem, &st.Note); err != nil {
		return err
	}
	st.EvaluatedAt = fromTS(at)
	return nil
}

// HostFindings returns a host's findings in the order Match sorted them.
func (d *DB) HostFindings(ctx context.Context, agentID string) (vuln.HostFindings, error) {
	hf := vuln.HostFindings{AgentID: agentID, Findings: []vuln.Finding{}}
	tx, err := d.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return hf, err
	}
	defer tx.Rollback()
	err = scanState(tx.QueryRowContext(ctx, `SELECT snapshot_id, generation, evaluated_at, ecosystem, note FROM vuln_hosts WHERE agent_id = ?`, agentID), &hf.Evaluation)
	if errors.Is(err, sql.ErrNoRows) {
		return hf, nil
	}
	if err != nil {
		return hf, fmt.Errorf("sqlite: vulnerabilities of %s: %w", agentID, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT data FROM vuln_findings WHERE agent_id = ? ORDER BY rank`, agentID)
	if err != nil {
		return hf, fmt.Errorf("sqlite: vulnerabilities of %s: %w", agentID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var data string
		var f vuln.Finding
		if err := rows.Scan(&data); err != nil {
			return hf, err
		}
		if err := json.Unmarshal([]byte(data), &f); err != nil {
			return hf, fmt.Errorf("sqlite: vulnerabilities of %s: %w", agentID, err)
		}
		hf.Findings = append(hf.Findings, f)
	}
	return hf, rows.Err()
}

func newCounts() vuln.Counts {
	c := vuln.Counts{ByLevel: map[vuln.Level]int{}}
	for _, l := range vuln.Levels {
		c.ByLevel[l] = 0
	}
	return c
}

// Fleet summarises every evaluated host.
func (d *DB) Fleet(ctx context.Context, top int) (vuln.Fleet, error) {
	f := vuln.Fleet{Counts: newCounts(), Hosts: []vuln.HostSummary{}, Advisories: []vuln.AdvisorySummary{}}
	tx, err := d.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return f, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT agent_id, snapshot_id, generation, evaluated_at, ecosystem, note FROM vuln_hosts ORDER BY agent_id`)
	if err != nil {
		return f, fmt.Errorf("sqlite: vulnerability fleet: %w", err)
	}
	idx := map[string]int{}
	for rows.Next() {
		h := vuln.HostSummary{Counts: newCounts()}
		var at int64
		if err := rows.Scan(&h.AgentID, &h.Evaluation.SnapshotID, &h.Evaluation.Generation, &at, &h.Evaluation.Ecosystem, &h.Evaluation.Note); err != nil {
			rows.Close()
			return f, err
		}
		h.Evaluation.EvaluatedAt = fromTS(at)
		idx[h.AgentID] = len(f.Hosts)
		f.Hosts = append(f.Hosts, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return f, err
	}
	rows, err = tx.QueryContext(ctx, `SELECT agent_id, level, count(*), sum(fixable) FROM vuln_findings GROUP BY agent_id, level`)
	if err != nil {
		return f, fmt.Errorf("sqlite: vulnerability fleet: %w", err)
	}
	for rows.Next() {
		var id, level string
		var n, fixable int
		if err := rows.Scan(&id, &level, &n, &fixable); err != nil {
			rows.Close()
			return f, err
		}
		i, ok := idx[id]
		if !ok {
			continue
		}
		for _, c := range []*vuln.Counts{&f.Hosts[i].Counts, &f.Counts} {
			c.Total += n
			c.Fixable += fixable
			c.ByLevel[vuln.Level(level)] += n
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return f, err
	}
	slices.SortStableFunc(f.Hosts, func(a, b vuln.HostSummary) int {
		for _, l := range vuln.Levels {
			if c := b.ByLevel[l] - a.ByLevel[l]; c != 0 {
				return c
			}
		}
		return strings.Compare(a.AgentID, b.AgentID)
	})
	if top <= 0 {
		return f, nil
	}
	rows, err = tx.QueryContext(ctx, `SELECT source, advisory_id, package, max(data), count(DISTINCT agent_id) AS hosts
		FROM vuln_findings GROUP BY source, advisory_id, package ORDER BY hosts DESC, source, advisory_id, package LIMIT ?`, top)
	if err != nil {
		return f, fmt.Errorf("sqlite: vulnerability fleet: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a vuln.AdvisorySummary
		var data string
		if err := rows.Scan(&a.Source, &a.AdvisoryID, &a.Package, &data, &a.Hosts); err != nil {
			return f, err
		}
		var fd vuln.Finding
		if err := json.Unmarshal([]byte(data), &fd); err != nil {
			return f, err
		}
		a.Severity = fd.Severity
		f.Advisories = append(f.Advisories, a)
	}
	return f, rows.Err()
}

// VulnStatus describes the database and the evaluation.
func (d *DB) VulnStatus(ctx context.Context) (vuln.Status, error) {
	st := vuln.Status{Sources: []vuln.SourceStatus{}}
	tx, err := d.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return st, err
	}
	defer tx.Rollback()
	fail := func(err error) (vuln.Status, error) { return st, fmt.Errorf("sqlite: vulnerability status: %w", err) }
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT value FROM counters WHERE name = 'vulndb_generation'),
		(SELECT count(*) FROM vuln_hosts), (SELECT count(*) `+staleHosts+`), (SELECT count(*) FROM vuln_findings)`).
		Scan(&st.Generation, &st.Hosts, &st.Stale, &st.Findings); err != nil {
		return fail(err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT a.source, f.ecosystem, count(DISTINCT a.id), count(*)
		FROM vuln_affected f JOIN vuln_advisories a ON a.id = f.advisory GROUP BY a.source, f.ecosystem ORDER BY a.source, f.ecosystem`)
	if err != nil {
		return fail(err)
	}
	bySource := map[string]*vuln.SourceStatus{}
	var order []string
	for rows.Next() {
		var src, eco string
		var advs, n int
		if err := rows.Scan(&src, &eco, &advs, &n); err != nil {
			rows.Close()
			return fail(err)
		}
		s := bySource[src]
		if s == nil {
			s = &vuln.SourceStatus{Source: src, Ecosystems: map[string]int{}}
			bySource[src] = s
			order = append(order, src)
		}
		s.Affected += n
		s.Ecosystems[eco] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	rows, err = tx.QueryContext(ctx, `SELECT source, count(*) FROM vuln_advisories GROUP BY source`)
	if err != nil {
		return fail(err)
	}
	for rows.Next() {
		var src string
		var n int
		if err := rows.Scan(&src, &n); err != nil {
			rows.Close()
			return fail(err)
		}
		if s := bySource[src]; s != nil {
			s.Advisories = n
		}
	}
	rows.Close()
	for _, src := range order {
		s := bySource[src]
		var r vuln.ImportRecord
		var at int64
		var skipped string
		err := tx.QueryRowContext(ctx, `SELECT file, sha256, imported_at, advisories, affected, skipped FROM vuln_imports WHERE source = ? ORDER BY id DESC LIMIT 1`, src).
			Scan(&r.File, &r.SHA256, &at, &r.Advisories, &r.Affected, &skipped)
		if err == nil {
			r.At = fromTS(at)
			_ = json.Unmarshal([]byte(skipped), &r.Skipped)
			s.LastImport = &r
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fail(err)
		}
		st.Sources = append(st.Sources, *s)
	}
	return st, nil
}
