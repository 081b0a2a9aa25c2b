package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vigil-edr/vigil/internal/sca"
)

var _ sca.Store = (*DB)(nil)

// AddSCAResults upserts results that are at least as new as the stored
// ones and as the policy's latest summary (see sca.Store).
func (d *DB) AddSCAResults(ctx context.Context, agentID string, rs []sca.Result) error {
	if len(rs) == 0 {
		return nil
	}
	err := d.writeTx(ctx, false, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO sca_results(agent_id, policy_id, check_id, scan_id, scanned_at, status, title, data)
			SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8
			WHERE NOT EXISTS (SELECT 1 FROM sca_policies WHERE agent_id = ?1 AND policy_id = ?2 AND scanned_at > ?5)
			ON CONFLICT(agent_id, policy_id, check_id) DO UPDATE SET scan_id = excluded.scan_id, scanned_at = excluded.scanned_at,
				status = excluded.status, title = excluded.title, data = excluded.data
			WHERE excluded.scanned_at >= sca_results.scanned_at`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, r := range rs {
			data, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if _, err := st.ExecContext(ctx, agentID, r.PolicyID, r.CheckID, r.ScanID, ts(r.ScannedAt), r.Status, r.Title, string(data)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: sca results of %s: %w", agentID, err)
	}
	return nil
}

// AddSCASummary records a summary in the history, makes it the latest
// when it is, drops older results of the policy and keeps the history to
// sca.HistoryKeep summaries, in one durable transaction.
func (d *DB) AddSCASummary(ctx context.Context, agentID string, s sca.Summary) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	at := ts(s.ScannedAt)
	err = d.writeTx(ctx, true, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO sca_history(agent_id, policy_id, scanned_at, scan_id, summary) VALUES (?, ?, ?, ?, ?)`,
			agentID, s.PolicyID, at, s.ScanID, string(data)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sca_policies(agent_id, policy_id, scan_id, scanned_at, summary) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT(agent_id, policy_id) DO UPDATE SET scan_id = excluded.scan_id, scanned_at = excluded.scanned_at, summary = excluded.summary
			WHERE excluded.scanned_at >= sca_policies.scanned_at`, agentID, s.PolicyID, s.ScanID, at, string(data)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sca_results WHERE agent_id = ? AND policy_id = ?
			AND scanned_at < (SELECT scanned_at FROM sca_policies WHERE agent_id = ? AND policy_id = ?)`, agentID, s.PolicyID, agentID, s.PolicyID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM sca_history WHERE agent_id = ? AND policy_id = ? AND scanned_at <
			(SELECT scanned_at FROM sca_history WHERE agent_id = ? AND policy_id = ? ORDER BY scanned_at DESC LIMIT 1 OFFSET ?)`,
			agentID, s.PolicyID, agentID, s.PolicyID, sca.HistoryKeep-1)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: sca summary %s/%s of %s: %w", s.PolicyID, s.ScanID, agentID, err)
	}
	return nil
}

// HostSCA returns one host's policies with results and history.
func (d *DB) HostSCA(ctx context.Context, agentID string, history int) (sca.Host, error) {
	h := sca.Host{AgentID: agentID, Policies: []sca.Policy{}}
	fail := func(err error) (sca.Host, error) { return h, fmt.Errorf("sqlite: sca of %s: %w", agentID, err) }
	rows, err := d.r.QueryContext(ctx, `SELECT summary FROM sca_policies WHERE agent_id = ? ORDER BY policy_id`, agentID)
	if err != nil {
		return fail(err)
	}
	for rows.Next() {
		var p sca.Policy
		var data string
		if err := rows.Scan(&data); err != nil {
			rows.Close()
			return fail(err)
		}
		if err := json.Unmarshal([]byte(data), &p.Summary); err != nil {
			rows.Close()
			return fail(err)
		}
		p.Results, p.History = []sca.Result{}, []sca.Summary{}
		h.Policies = append(h.Policies, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	for i := range h.Policies {
		p := &h.Policies[i]
		if err := scanJSON(ctx, d.r, &p.Results, `SELECT data FROM sca_results WHERE agent_id = ? AND policy_id = ? ORDER BY check_id`, agentID, p.PolicyID); err != nil {
			return fail(err)
		}
		if history > 0 {
			if err := scanJSON(ctx, d.r, &p.History, `SELECT summary FROM sca_history WHERE agent_id = ? AND policy_id = ? ORDER BY scanned_at DESC LIMIT ?`,
				agentID, p.PolicyID, history); err != nil {
				return fail(err)
			}
		}
	}
	return h, nil
}

// scanJSON appends the JSON column of every row to *list.
func scanJSON[T any](ctx context.Context, db *sql.DB, list *[]T, query string, args ...any) error {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return err
		}
		var v T
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			return err
		}
		*list = append(*list, v)
	}
	return rows.Err()
}

// FleetSCA returns every host's latest summaries, lowest score first, and
// the limit checks failing on most hosts.
func (d *DB) FleetSCA(ctx context.Context, limit int) (sca.Fleet, error) {
	f := sca.Fleet{Hosts: []sca.HostSummary{}, Checks: []sca.CheckCount{}}
	fail := func(err error) (sca.Fleet, error) { return f, fmt.Errorf("sqlite: sca fleet: %w", err) }
	rows, err := d.r.QueryContext(ctx, `SELECT agent_id, summary FROM sca_policies ORDER BY agent_id, policy_id`)
	if err != nil {
		return fail(err)
	}
	for rows.Next() {
		var hs sca.HostSummary
		var data string
		if err := rows.Scan(&hs.AgentID, &data); err != nil {
			rows.Close()
			return fail(err)
		}
		if err := json.Unmarshal([]byte(data), &hs.Summary); err != nil {
			rows.Close()
			return fail(err)
		}
		f.Hosts = append(f.Hosts, hs)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	sca.SortWorstFirst(f.Hosts)
	rows, err = d.r.QueryContext(ctx, `SELECT policy_id, check_id, max(title),
			sum(status = 'failed'), sum(status = 'passed'), sum(status = 'not_applicable')
		FROM sca_results GROUP BY policy_id, check_id HAVING sum(status = 'failed') > 0
		ORDER BY 4 DESC, policy_id, check_id LIMIT ?`, limit)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	for rows.Next() {
		var c sca.CheckCount
		if err := rows.Scan(&c.PolicyID, &c.CheckID, &c.Title, &c.Failed, &c.Passed, &c.NotApplicable); err != nil {
			return fail(err)
		}
		f.Checks = append(f.Checks, c)
	}
	if err := rows.Err(); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fail(err)
	}
	return f, nil
}
