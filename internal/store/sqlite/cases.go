package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/cases"
	"github.com/vigil-edr/vigil/internal/store"
)

var _ cases.Store = (*DB)(nil)

func severityRank(s cases.Severity) int {
	for i, sv := range cases.Severities {
		if sv == s {
			return i
		}
	}
	return -1
}

// caseCols selects a case row and its alert ids (a JSON array in position
// order) in one query.
const caseCols = `id, title, severity, status, assignee, created_by, created_at, updated_at, status_by, status_at,
	reason, breach, breach_aware_at, nis2, nis2_aware_at, sent, version,
	(SELECT json_group_array(alert_id) FROM (SELECT alert_id FROM case_alerts WHERE case_id = cases.id ORDER BY pos))`

func scanCase(sc interface{ Scan(...any) error }) (*cases.Case, error) {
	c := &cases.Case{}
	var sev, status, sent, alertIDs string
	var created, updated, statusAt, breachAt, nis2At int64
	if err := sc.Scan(&c.ID, &c.Title, &sev, &status, &c.Assignee, &c.CreatedBy, &created, &updated, &c.StatusBy,
		&statusAt, &c.Reason, &c.Breach, &breachAt, &c.NIS2, &nis2At, &sent, &c.Version, &alertIDs); err != nil {
		return nil, err
	}
	c.Severity, c.Status = cases.Severity(sev), cases.Status(status)
	c.CreatedAt, c.UpdatedAt, c.StatusAt = fromTS(created), fromTS(updated), fromTS(statusAt)
	c.BreachAwareAt, c.NIS2AwareAt = fromTS(breachAt), fromTS(nis2At)
	var raw map[string]int64
	if err := json.Unmarshal([]byte(sent), &raw); err != nil {
		return nil, fmt.Errorf("case %d sent times: %w", c.ID, err)
	}
	c.Sent = make(map[cases.Notice]time.Time, len(raw))
	for n, t := range raw {
		c.Sent[cases.Notice(n)] = fromTS(t)
	}
	if err := json.Unmarshal([]byte(alertIDs), &c.AlertIDs); err != nil {
		return nil, fmt.Errorf("case %d alert ids: %w", c.ID, err)
	}
	return c, nil
}

func sentJSON(m map[cases.Notice]time.Time) string {
	raw := make(map[string]int64, len(m))
	for n, t := range m {
		raw[string(n)] = ts(t)
	}
	b, _ := json.Marshal(raw) // map[string]int64 cannot fail; keys are sorted
	return string(b)
}

func insertEntries(ctx context.Context, tx *sql.Tx, caseID int64, entries []cases.Entry) error {
	for _, e := range entries {
		if _, err := tx.ExecContext(ctx, `INSERT INTO case_timeline(case_id, at, actor, kind, detail) VALUES (?, ?, ?, ?, ?)`,
			caseID, ts(e.At), e.Actor, string(e.Kind), e.Detail); err != nil {
			return err
		}
	}
	return nil
}

func insertCaseAlerts(ctx context.Context, tx *sql.Tx, caseID int64, ids []int64) error {
	for i, id := range ids {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO case_alerts(case_id, alert_id, pos) VALUES (?, ?, ?)`,
			caseID, id, i); err != nil {
			return err
		}
	}
	return nil
}

// CreateCase stores c, its alert ids and entries; it sets c.ID, c.Version
// (1) and the entries' CaseID.
func (d *DB) CreateCase(ctx context.Context, c *cases.Case, entries []cases.Entry) error {
	var id int64
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO cases(title, severity, severity_rank, status, assignee, created_by,
			created_at, updated_at, status_by, status_at, reason, breach, breach_aware_at, nis2, nis2_aware_at, sent, version)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) RETURNING id`,
			c.Title, string(c.Severity), severityRank(c.Severity), string(c.Status), c.Assignee, c.CreatedBy,
			ts(c.CreatedAt), ts(c.UpdatedAt), c.StatusBy, ts(c.StatusAt), c.Reason, b2i(c.Breach), ts(c.BreachAwareAt),
			b2i(c.NIS2), ts(c.NIS2AwareAt), sentJSON(c.Sent)).Scan(&id)
		if err != nil {
			return err
		}
		if err := insertCaseAlerts(ctx, tx, id, c.AlertIDs); err != nil {
			return err
		}
		return insertEntries(ctx, tx, id, entries)
	})
	if err != nil {
		return fmt.Errorf("sqlite: create case: %w", err)
	}
	c.ID, c.Version = id, 1
	for i := range entries {
		entries[i].CaseID = id
	}
	return nil
}

// GetCase returns one case or store.ErrNotFound.
func (d *DB) GetCase(ctx context.Context, id int64) (*cases.Case, error) {
	c, err := scanCase(d.r.QueryRowContext(ctx, `SELECT `+caseCols+` FROM cases WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("sqlite: case", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get case %d: %w", id, err)
	}
	return c, nil
}

// ListCases returns the cases matching f, highest id first. An unknown
// MinSeverity or Regime is an error.
func (d *DB) ListCases(ctx context.Context, f cases.Filter) ([]cases.Case, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	var where []string
	var args []any
	if len(f.Statuses) > 0 {
		where = append(where, "status IN (?"+strings.Repeat(", ?", len(f.Statuses)-1)+")")
		for _, s := range f.Statuses {
			args = append(args, string(s))
		}
	}
	if f.Assignee != "" {
		where, args = append(where, "assignee = ?"), append(args, f.Assignee)
	}
	if f.MinSeverity != "" {
		rank := severityRank(f.MinSeverity)
		if rank < 0 {
			return nil, fmt.Errorf("sqlite: list cases: unknown severity %q", f.MinSeverity)
		}
		where, args = append(where, "severity_rank >= ?"), append(args, rank)
	}
	switch f.Regime {
	case "":
	case cases.RegimeGDPR:
		where = append(where, "breach = 1")
	case cases.RegimeNIS2:
		where = append(where, "nis2 = 1")
	default:
		return nil, fmt.Errorf("sqlite: list cases: unknown regime %q", f.Regime)
	}
	if f.AlertID != 0 {
		where = append(where, "id IN (SELECT case_id FROM case_alerts WHERE alert_id = ?)")
		args = append(args, f.AlertID)
	}
	if f.Before != 0 {
		where, args = append(where, "id < ?"), append(args, f.Before)
	}
	q := `SELECT ` + caseCols + ` FROM cases`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT " + strconv.Itoa(limit)
	rows, err := d.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list cases: %w", err)
	}
	defer rows.Close()
	var out []cases.Case
	for rows.Next() {
		c, err := scanCase(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list cases: %w", err)
		}
		out = append(out, *c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list cases: %w", err)
	}
	return out, nil
}

// UpdateCase writes c if the stored version is c.Version, adds new alert
// ids, appends entries and increments c.Version.
func (d *DB) UpdateCase(ctx context.Context, c *cases.Case, entries []cases.Entry) error {
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		n, err := affected(tx.ExecContext(ctx, `UPDATE cases SET title = ?, severity = ?, severity_rank = ?, status = ?,
			assignee = ?, updated_at = ?, status_by = ?, status_at = ?, reason = ?, breach = ?, breach_aware_at = ?,
			nis2 = ?, nis2_aware_at = ?, sent = ?, version = version + 1
			WHERE id = ? AND version = ?`,
			c.Title, string(c.Severity), severityRank(c.Severity), string(c.Status), c.Assignee, ts(c.UpdatedAt),
			c.StatusBy, ts(c.StatusAt), c.Reason, b2i(c.Breach), ts(c.BreachAwareAt), b2i(c.NIS2), ts(c.NIS2AwareAt),
			sentJSON(c.Sent), c.ID, c.Version))
		if err != nil {
			return err
		}
		if n == 0 {
			var v int64
			err := tx.QueryRowContext(ctx, `SELECT version FROM cases WHERE id = ?`, c.ID).Scan(&v)
			if errors.Is(err, sql.ErrNoRows) {
				return notFound("case", c.ID)
			}
			if err != nil {
				return err
			}
			return fmt.Errorf("case %d is at version %d, not %d: %w", c.ID, v, c.Version, store.ErrConflict)
		}
		if err := insertCaseAlerts(ctx, tx, c.ID, c.AlertIDs); err != nil {
			return err
		}
		return insertEntries(ctx, tx, c.ID, entries)
	})
	if err != nil {
		return fmt.Errorf("sqlite: update case: %w", err)
	}
	c.Version++
	for i := range entries {
		entries[i].CaseID = c.ID
	}
	return nil
}

// touchCase sets updated_at, reporting store.ErrNotFound for an unknown
// case; the child row inserts rely on it running first.
func touchCase(ctx context.Context, tx *sql.Tx, id int64, at time.Time) error {
	n, err := affected(tx.ExecContext(ctx, `UPDATE cases SET updated_at = max(updated_at, ?) WHERE id = ?`, ts(at), id))
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound("case", id)
	}
	return nil
}

// AddCaseComment stores c and its entry, setting c.ID.
func (d *DB) AddCaseComment(ctx context.Context, c *cases.Comment, e cases.Entry) error {
	var id int64
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		if err := touchCase(ctx, tx, c.CaseID, c.At); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO case_comments(case_id, author, text, at) VALUES (?, ?, ?, ?) RETURNING id`,
			c.CaseID, c.Author, c.Text, ts(c.At)).Scan(&id); err != nil {
			return err
		}
		return insertEntries(ctx, tx, c.CaseID, []cases.Entry{e})
	})
	if err != nil {
		return fmt.Errorf("sqlite: comment on case %d: %w", c.CaseID, err)
	}
	c.ID = id
	return nil
}

// CaseComments returns a case's comments, oldest first.
func (d *DB) CaseComments(ctx context.Context, caseID int64) ([]cases.Comment, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT id, case_id, author, text, at FROM case_comments WHERE case_id = ? ORDER BY id`, caseID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: comments of case %d: %w", caseID, err)
	}
	defer rows.Close()
	var out []cases.Comment
	for rows.Next() {
		var c cases.Comment
		var at int64
		if err := rows.Scan(&c.ID, &c.CaseID, &c.Author, &c.Text, &at); err != nil {
			return nil, fmt.Errorf("sqlite: comments of case %d: %w", caseID, err)
		}
		c.At = fromTS(at)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: comments of case %d: %w", caseID, err)
	}
	return out, nil
}

// AddCaseEvidence stores ev and its entry, setting ev.ID; the same kind and
// ref twice in a case is store.ErrConflict.
func (d *DB) AddCaseEvidence(ctx context.Context, ev *cases.Evidence, e cases.Entry) error {
	var id int64
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		if err := touchCase(ctx, tx, ev.CaseID, ev.AddedAt); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO case_evidence(case_id, kind, ref, name, size, note, added_by, added_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			ev.CaseID, string(ev.Kind), ev.Ref, ev.Name, ev.Size, ev.Note, ev.AddedBy, ts(ev.AddedAt)).Scan(&id)
		if err != nil {
			return conflict(fmt.Sprintf("%s %s", ev.Kind, ev.Ref), err)
		}
		return insertEntries(ctx, tx, ev.CaseID, []cases.Entry{e})
	})
	if err != nil {
		return fmt.Errorf("sqlite: add evidence to case %d: %w", ev.CaseID, err)
	}
	ev.ID = id
	return nil
}

// CaseEvidence returns a case's evidence, oldest first.
func (d *DB) CaseEvidence(ctx context.Context, caseID int64) ([]cases.Evidence, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT id, case_id, kind, ref, name, size, note, added_by, added_at
		FROM case_evidence WHERE case_id = ? ORDER BY id`, caseID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: evidence of case %d: %w", caseID, err)
	}
	defer rows.Close()
	var out []cases.Evidence
	for rows.Next() {
		var ev cases.Evidence
		var kind string
		var at int64
		if err := rows.Scan(&ev.ID, &ev.CaseID, &kind, &ev.Ref, &ev.Name, &ev.Size, &ev.Note, &ev.AddedBy, &at); err != nil {
			return nil, fmt.Errorf("sqlite: evidence of case %d: %w", caseID, err)
		}
		ev.Kind, ev.AddedAt = cases.EvidenceKind(kind), fromTS(at)
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: evidence of case %d: %w", caseID, err)
	}
	return out, nil
}

// CaseTimeline returns a case's stored entries in the order they were
// written.
func (d *DB) CaseTimeline(ctx context.Context, caseID int64) ([]cases.Entry, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT id, case_id, at, actor, kind, detail FROM case_timeline WHERE case_id = ? ORDER BY id`, caseID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: timeline of case %d: %w", caseID, err)
	}
	defer rows.Close()
	var out []cases.Entry
	for rows.Next() {
		var e cases.Entry
		var kind string
		var at int64
		if err := rows.Scan(&e.ID, &e.CaseID, &at, &e.Actor, &kind, &e.Detail); err != nil {
			return nil, fmt.Errorf("sqlite: timeline of case %d: %w", caseID, err)
		}
		e.Kind, e.At = cases.EntryKind(kind), fromTS(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: timeline of case %d: %w", caseID, err)
	}
	return out, nil
}

// PutCaseFile stores data under sum unless it is stored already. A sum
// that is not the data's SHA-256 in lower-case hex is refused: content
// addressing holds whatever the caller.
func (d *DB) PutCaseFile(ctx context.Context, sum string, data []byte) error {
	if h := sha256.Sum256(data); hex.EncodeToString(h[:]) != sum {
		return fmt.Errorf("sqlite: store case file: %q is not the content's SHA-256", sum)
	}
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO case_files(sha256, size, data) VALUES (?, ?, ?)`,
			sum, len(data), nonNil(data))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: store case file: %w", err)
	}
	return nil
}

// CaseFile returns the content stored under sum or store.ErrNotFound.
func (d *DB) CaseFile(ctx context.Context, sum string) ([]byte, error) {
	var b []byte
	err := d.r.QueryRowContext(ctx, `SELECT data FROM case_files WHERE sha256 = ?`, sum).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("sqlite: case file", sum)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: case file: %w", err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}
