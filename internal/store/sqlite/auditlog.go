package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/vigil-edr/vigil/internal/audit"
)

var _ audit.Store = (*DB)(nil)

// AppendAudit seals e after the stored head and writes it and the new head in
// one synchronous=FULL transaction. BEGIN IMMEDIATE takes the database's
// write lock, so appends from several processes are serialised.
func (d *DB) AppendAudit(ctx context.Context, e *audit.Entry) error {
	return d.writeTx(ctx, true, func(tx *sql.Tx) error {
		var head audit.Head
		if err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&head.Seq, &head.Hash); err != nil {
			return fmt.Errorf("sqlite: audit head: %w", err)
		}
		audit.Seal(e, head)
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log(seq, at, actor, source, action, target, detail, prev_hash, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, e.At.UnixNano(), e.Actor, e.Source, e.Action, e.Target, e.Detail, e.PrevHash, e.Hash); err != nil {
			return fmt.Errorf("sqlite: append audit entry: %w", err)
		}
		_, err := tx.ExecContext(ctx, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, e.Seq, e.Hash)
		return err
	})
}

// AuditEntries returns up to limit entries after seq, in sequence order.
func (d *DB) AuditEntries(ctx context.Context, after int64, limit int) ([]audit.Entry, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT seq, at, actor, source, action, target, detail, prev_hash, hash
		FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: audit entries: %w", err)
	}
	defer rows.Close()
	var out []audit.Entry
	for rows.Next() {
		var e audit.Entry
		var at int64
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.Source, &e.Action, &e.Target, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("sqlite: audit entries: %w", err)
		}
		e.At = time.Unix(0, at).UTC() // exactly the nanoseconds hashed, even 0
		out = append(out, e)
	}
	return out, rows.Err()
}

// AuditHead returns the checkpoint.
func (d *DB) AuditHead(ctx context.Context) (audit.Head, error) {
	var h audit.Head
	if err := d.r.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&h.Seq, &h.Hash); err != nil {
		return audit.Head{}, fmt.Errorf("sqlite: audit head: %w", err)
	}
	return h, nil
}
