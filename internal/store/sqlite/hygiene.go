package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-edr/vigil/internal/hygiene"
)

var _ hygiene.Store = (*DB)(nil)

// RecordHygiene stores a score point unless the newest has the same key,
// replacing the newest when it falls in the same interval of length every
// (an hour, on the clock) as p (see hygiene.Store).
func (d *DB) RecordHygiene(ctx context.Context, agentID string, p hygiene.Point, key string, every time.Duration) (bool, error) {
	ds, err := json.Marshal(p.Deductions)
	if err != nil {
		return false, err
	}
	wrote := false
	err = d.writeTx(ctx, false, func(tx *sql.Tx) error {
		var at int64
		var last string
		err := tx.QueryRowContext(ctx, `SELECT at, key FROM hygiene_scores WHERE agent_id = ? ORDER BY at DESC LIMIT 1`, agentID).Scan(&at, &last)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case last == key:
			return nil
		case p.At.Truncate(every).Equal(fromTS(at).Truncate(every)):
			// The same hour (every): the newest point becomes this one.
			if _, err := tx.ExecContext(ctx, `DELETE FROM hygiene_scores WHERE agent_id = ? AND at = ?`, agentID, at); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO hygiene_scores(agent_id, at, score, key, deductions) VALUES (?, ?, ?, ?, ?)`,
			agentID, ts(p.At), p.Score, key, string(ds)); err != nil {
			return err
		}
		wrote = true
		_, err = tx.ExecContext(ctx, `DELETE FROM hygiene_scores WHERE agent_id = ? AND at <
			(SELECT at FROM hygiene_scores WHERE agent_id = ? ORDER BY at DESC LIMIT 1 OFFSET ?)`, agentID, agentID, hygiene.HistoryKeep-1)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: hygiene score of %q: %w", agentID, err)
	}
	return wrote, nil
}

// HygieneHistory returns up to limit points, newest first.
func (d *DB) HygieneHistory(ctx context.Context, agentID string, limit int) ([]hygiene.Point, error) {
	out := []hygiene.Point{}
	rows, err := d.r.QueryContext(ctx, `SELECT at, score, deductions FROM hygiene_scores WHERE agent_id = ? ORDER BY at DESC LIMIT ?`, agentID, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: hygiene history of %q: %w", agentID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var p hygiene.Point
		var at int64
		var ds string
		if err := rows.Scan(&at, &p.Score, &ds); err != nil {
			return nil, err
		}
		p.At = fromTS(at)
		if err := json.Unmarshal([]byte(ds), &p.Deductions); err != nil {
			return nil, fmt.Errorf("sqlite: hygiene history of %q: %w", agentID, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
