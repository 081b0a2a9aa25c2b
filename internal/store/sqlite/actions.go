package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/respond"
	"github.com/vigil-edr/vigil/internal/store"
)

var _ respond.Store = (*DB)(nil)

const actionCols = `id, grp, agent_id, type, args, note, state, requested_by, requested_at, approved_by, approved_at,
	signed, expires_at, delivered_at, completed_at, reason, error, output, file_sha256, file_size, updated_by`

func scanAction(sc interface{ Scan(...any) error }) (respond.Action, error) {
	var a respond.Action
	var args, state string
	var req, appr, exp, deliv, done int64
	if err := sc.Scan(&a.ID, &a.Group, &a.AgentID, &a.Type, &args, &a.Note, &state, &a.RequestedBy, &req, &a.ApprovedBy,
		&appr, &a.Signed, &exp, &deliv, &done, &a.Reason, &a.Error, &a.Output, &a.FileSHA256, &a.FileSize, &a.UpdatedBy); err != nil {
		return a, err
	}
	a.State = respond.State(state)
	a.RequestedAt, a.ApprovedAt, a.ExpiresAt, a.DeliveredAt, a.CompletedAt = fromTS(req), fromTS(appr), fromTS(exp), fromTS(deliv), fromTS(done)
	if err := json.Unmarshal([]byte(args), &a.Args); err != nil {
		return a, fmt.Errorf("action %s args: %w", a.ID, err)
	}
	return a, nil
}

// CreateActions stores new actions in one transaction.
func (d *DB) CreateActions(ctx context.Context, as []respond.Action) error {
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		for _, a := range as {
			args, err := json.Marshal(a.Args)
			if err != nil {
				return err
			}
			if a.Args == nil {
				args = []byte("{}")
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO actions(`+actionCols+`)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				a.ID, a.Group, a.AgentID, a.Type, string(args), a.Note, string(a.State), a.RequestedBy, ts(a.RequestedAt),
				a.ApprovedBy, ts(a.ApprovedAt), a.Signed, ts(a.ExpiresAt), ts(a.DeliveredAt), ts(a.CompletedAt),
				a.Reason, a.Error, a.Output, a.FileSHA256, a.FileSize, a.UpdatedBy); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: create actions: %w", err)
	}
	return nil
}

// GetAction returns one action or store.ErrNotFound.
func (d *DB) GetAction(ctx context.Context, id string) (*respond.Action, error) {
	a, err := scanAction(d.r.QueryRowContext(ctx, `SELECT `+actionCols+` FROM actions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("sqlite: action", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get action: %w", err)
	}
	return &a, nil
}

// ListActions returns actions matching f, newest first.
func (d *DB) ListActions(ctx context.Context, f respond.Filter) ([]respond.Action, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	var where []string
	var args []any
	if f.AgentID != "" {
		where, args = append(where, "agent_id = ?"), append(args, f.AgentID)
	}
	if f.Group != "" {
		where, args = append(where, "grp = ?"), append(args, f.Group)
	}
	if len(f.States) > 0 {
		where = append(where, "state IN (?"+strings.Repeat(", ?", len(f.States)-1)+")")
		for _, s := range f.States {
			args = append(args, string(s))
		}
	}
	if f.Before != "" {
		where = append(where, "(requested_at, id) < (SELECT requested_at, id FROM actions WHERE id = ?)")
		args = append(args, f.Before)
	}
	q := `SELECT ` + actionCols + ` FROM actions`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY requested_at DESC, id DESC LIMIT ?"
	args = append(args, limit)
	return d.queryActions(ctx, q, args...)
}

func (d *DB) queryActions(ctx context.Context, q string, args ...any) ([]respond.Action, error) {
	rows, err := d.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list actions: %w", err)
	}
	defer rows.Close()
	var out []respond.Action
	for rows.Next() {
		a, err := scanAction(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list actions: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// UpdateAction stores a's mutable fields if its stored state is from.
func (d *DB) UpdateAction(ctx context.Context, a *respond.Action, from respond.State) error {
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE actions SET state = ?, approved_by = ?, approved_at = ?, signed = ?, expires_at = ?,
			delivered_at = ?, completed_at = ?, reason = ?, error = ?, output = ?, file_sha256 = ?, file_size = ?, updated_by = ?
			WHERE id = ? AND state = ?`,
			string(a.State), a.ApprovedBy, ts(a.ApprovedAt), a.Signed, ts(a.ExpiresAt), ts(a.DeliveredAt), ts(a.CompletedAt),
			a.Reason, a.Error, a.Output, a.FileSHA256, a.FileSize, a.UpdatedBy, a.ID, string(from))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return store.ErrConflict
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: update action %s: %w", a.ID, err)
	}
	return nil
}

// ClaimActions moves the agent's pending, unexpired actions to delivered.
func (d *DB) ClaimActions(ctx context.Context, agentID string, now time.Time, max int) ([]respond.Action, error) {
	var out []respond.Action
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE actions SET state = 'delivered', delivered_at = ?, updated_by = ?
			WHERE id IN (SELECT id FROM actions WHERE agent_id = ? AND state = 'pending' AND expires_at > ?
			             ORDER BY requested_at, id LIMIT ?)
			RETURNING `+actionCols, ts(now), "agent:"+agentID, agentID, ts(now), max)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			a, err := scanAction(rows)
			if err != nil {
				return err
			}
			out = append(out, a)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim actions: %w", err)
	}
	return out, nil
}

// ExpiredActions lists pending actions past their expiry and delivered
// ones past expiry plus grace.
func (d *DB) ExpiredActions(ctx context.Context, now time.Time, grace time.Duration) ([]respond.Action, error) {
	return d.queryActions(ctx, `SELECT `+actionCols+` FROM actions
		WHERE (state = 'pending' AND expires_at <= ?) OR (state = 'delivered' AND expires_at <= ?) LIMIT 1000`,
		ts(now), ts(now.Add(-grace)))
}

var _ respond.PlaybookStore = (*DB)(nil)

// CreatePlaybook stores a new playbook.
func (d *DB) CreatePlaybook(ctx context.Context, p *respond.Playbook) error {
	tags, _ := json.Marshal(p.Tags)
	if p.Tags == nil {
		tags = []byte("[]")
	}
	args, _ := json.Marshal(p.Args)
	if p.Args == nil {
		args = []byte("{}")
	}
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO playbooks(id, name, min_level, tags, type, args, dry_run, max_per_hour, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, p.ID, p.Name, p.MinLevel, string(tags), p.Action, string(args), b2i(p.DryRun),
			p.MaxPerHour, p.CreatedBy, ts(p.CreatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: create playbook: %w", err)
	}
	return nil
}

// ListPlaybooks returns every playbook, oldest first.
func (d *DB) ListPlaybooks(ctx context.Context) ([]respond.Playbook, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT id, name, min_level, tags, type, args, dry_run, max_per_hour, created_by, created_at
		FROM playbooks ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list playbooks: %w", err)
	}
	defer rows.Close()
	var out []respond.Playbook
	for rows.Next() {
		var p respond.Playbook
		var tags, args string
		var at int64
		if err := rows.Scan(&p.ID, &p.Name, &p.MinLevel, &tags, &p.Action, &args, &p.DryRun, &p.MaxPerHour, &p.CreatedBy, &at); err != nil {
			return nil, fmt.Errorf("sqlite: list playbooks: %w", err)
		}
		if err := json.Unmarshal([]byte(tags), &p.Tags); err != nil {
			return nil, fmt.Errorf("sqlite: playbook %s tags: %w", p.ID, err)
		}
		if err := json.Unmarshal([]byte(args), &p.Args); err != nil {
			return nil, fmt.Errorf("sqlite: playbook %s args: %w", p.ID, err)
		}
		p.CreatedAt = fromTS(at)
		out = append(out, p)
	}
	return out, rows.Err()
}

// DeletePlaybook removes a playbook or returns store.ErrNotFound.
func (d *DB) DeletePlaybook(ctx context.Context, id string) error {
	var n int64
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM playbooks WHERE id = ?`, id)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete playbook: %w", err)
	}
	if n == 0 {
		return notFound("sqlite: playbook", id)
	}
	return nil
}
