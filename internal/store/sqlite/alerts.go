package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/store"
	"github.com/vigil-edr/vigil/internal/wire"
)

var _ alert.Store = (*DB)(nil)

// levelRank orders Sigma levels; an unknown level ranks with informational.
func levelRank(level string) (int, bool) {
	switch strings.ToLower(level) {
	case "informational":
		return 0, true
	case "low":
		return 1, true
	case "medium":
		return 2, true
	case "high":
		return 3, true
	case "critical":
		return 4, true
	}
	return 0, false
}

const alertCols = `id, rule_id, rule_title, level, tags, host, agent_id, correlation, state, count, first_seen, last_seen,
	fields, event_ids, assignee, state_by, state_at, reason`

func scanAlert(sc interface{ Scan(...any) error }) (*alert.Alert, error) {
	a := &alert.Alert{}
	var state, tags, fields, eventIDs string
	var first, last, stateAt int64
	if err := sc.Scan(&a.ID, &a.RuleID, &a.RuleTitle, &a.Level, &tags, &a.Host, &a.AgentID, &a.Correlation, &state,
		&a.Count, &first, &last, &fields, &eventIDs, &a.Assignee, &a.StateBy, &stateAt, &a.Reason); err != nil {
		return nil, err
	}
	a.State, a.FirstSeen, a.LastSeen, a.StateAt = alert.State(state), fromTS(first), fromTS(last), fromTS(stateAt)
	if err := json.Unmarshal([]byte(tags), &a.Tags); err != nil {
		return nil, fmt.Errorf("alert %d tags: %w", a.ID, err)
	}
	var pairs [][2]string
	if err := json.Unmarshal([]byte(fields), &pairs); err != nil {
		return nil, fmt.Errorf("alert %d fields: %w", a.ID, err)
	}
	if len(pairs) > 0 {
		a.Fields = make([]event.Field, len(pairs))
		for i, p := range pairs {
			a.Fields[i] = event.Field{Name: p[0], Value: p[1]}
		}
	}
	if err := json.Unmarshal([]byte(eventIDs), &a.EventIDs); err != nil {
		return nil, fmt.Errorf("alert %d event ids: %w", a.ID, err)
	}
	return a, nil
}

func fieldsJSON(fs []event.Field) string {
	return string(wire.AppendFieldPairs(nil, fs))
}

func idsJSON(ids []int64) string {
	b := []byte{'['}
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ']'))
}

// OpenAlert returns the newest open (new or acknowledged) alert for rule and
// host whose LastSeen is at or after since, or store.ErrNotFound.
func (d *DB) OpenAlert(ctx context.Context, ruleID, host string, since time.Time) (*alert.Alert, error) {
	return openAlert(d.r.QueryRowContext(ctx, openAlertSQL, ruleID, host, ts(since)), ruleID, host)
}

// alertStmts are the statements WriteAlerts runs, prepared once on the
// writer.
type alertStmts struct {
	open, create, change, addOccurrences *sql.Stmt
}

const (
	openAlertSQL = `SELECT ` + alertCols + ` FROM alerts
		WHERE rule_id = ? AND host = ? AND state IN ('new', 'acknowledged') AND last_seen >= ?
		ORDER BY last_seen DESC, id DESC LIMIT 1`
	createAlertSQL = `INSERT INTO alerts(rule_id, rule_title, level, level_rank, tags, host, agent_id,
		correlation, state, count, first_seen, last_seen, fields, event_ids, assignee, state_by, state_at, reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`
	alertCreatedSQL = `INSERT INTO alert_changes(alert_id, kind, from_state, to_state, by, at)
		VALUES (?, 'created', '', ?, '', ?)`
	// ?4 NULL keeps the event ids.
	addOccurrencesSQL = `UPDATE alerts SET count = count + ?1, last_seen = max(last_seen, ?2),
		event_ids = coalesce(?4, event_ids) WHERE id = ?3`
)

func (s *alertStmts) prepare(ctx context.Context, w *sql.DB) error {
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{{&s.open, openAlertSQL}, {&s.create, createAlertSQL}, {&s.change, alertCreatedSQL}, {&s.addOccurrences, addOccurrencesSQL}} {
		st, err := w.PrepareContext(ctx, p.sql)
		if err != nil {
			s.close()
			return fmt.Errorf("%s: %w", p.sql, err)
		}
		*p.st = st
	}
	return nil
}

func (s *alertStmts) close() {
	for _, st := range []*sql.Stmt{s.open, s.create, s.change, s.addOccurrences} {
		if st != nil {
			st.Close()
		}
	}
}

// alertWriter is alert.Writer on one write transaction.
type alertWriter struct {
	tx *sql.Tx
	st *alertStmts
}

// WriteAlerts runs fn in one durable write transaction. See alert.Store.
func (d *DB) WriteAlerts(ctx context.Context, fn func(alert.Writer) error) error {
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		return fn(&alertWriter{tx: tx, st: &d.alertSt})
	})
	if err != nil {
		return fmt.Errorf("sqlite: write alerts: %w", err)
	}
	return nil
}

func (w *alertWriter) OpenAlert(ctx context.Context, ruleID, host string, since time.Time) (*alert.Alert, error) {
	return openAlert(w.tx.StmtContext(ctx, w.st.open).QueryRowContext(ctx, ruleID, host, ts(since)), ruleID, host)
}

func (w *alertWriter) CreateAlert(ctx context.Context, a *alert.Alert) error {
	return createAlert(ctx, w.tx.StmtContext(ctx, w.st.create), w.tx.StmtContext(ctx, w.st.change), a)
}

func (w *alertWriter) AddOccurrences(ctx context.Context, id int64, n int, last time.Time, eventIDs []int64) error {
	var ids any // NULL: unchanged
	if eventIDs != nil {
		ids = idsJSON(eventIDs)
	}
	res, err := w.tx.StmtContext(ctx, w.st.addOccurrences).ExecContext(ctx, n, ts(last), id, ids)
	if rows, err := affected(res, err); err != nil {
		return fmt.Errorf("sqlite: add occurrences to alert %d: %w", id, err)
	} else if rows == 0 {
		return notFound("sqlite: add occurrences: alert", id)
	}
	return nil
}

func openAlert(row *sql.Row, ruleID, host string) (*alert.Alert, error) {
	a, err := scanAlert(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: open alert for rule %s on %s: %w", ruleID, host, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: open alert: %w", err)
	}
	return a, nil
}

// CreateAlert stores a and sets a.ID. An empty State is stored as new.
func (d *DB) CreateAlert(ctx context.Context, a *alert.Alert) error {
	return d.CreateAlerts(ctx, []*alert.Alert{a})
}

// CreateAlerts stores the alerts in one transaction, in order, and sets
// their IDs; an empty State is stored as new. Each gets its created row in
// the notification feed, as with CreateAlert. It is the batch path for
// imports and test fixtures: one commit (one fsync) for all of them.
func (d *DB) CreateAlerts(ctx context.Context, as []*alert.Alert) error {
	if len(as) == 0 {
		return nil
	}
	states := make([]alert.State, len(as))
	for i, a := range as {
		states[i] = a.State
	}
	err := d.WriteAlerts(ctx, func(w alert.Writer) error {
		for _, a := range as {
			if err := w.CreateAlert(ctx, a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for i, a := range as { // nothing was stored
			a.ID, a.State = 0, states[i]
		}
		return fmt.Errorf("sqlite: create alerts: %w", err)
	}
	return nil
}

// createAlert inserts a and its change-feed row (the outbox notify reads,
// notify.Store) with the two statements of one transaction, and sets a.ID
// (and an empty State to new).
func createAlert(ctx context.Context, create, change *sql.Stmt, a *alert.Alert) error {
	if a.State == "" {
		a.State = alert.StateNew
	}
	rank, _ := levelRank(a.Level)
	tags := a.Tags
	if tags == nil {
		tags = []string{}
	}
	var id int64
	if err := create.QueryRowContext(ctx,
		a.RuleID, a.RuleTitle, a.Level, rank, string(wire.AppendStringList(nil, tags)), a.Host, a.AgentID,
		b2i(a.Correlation), string(a.State), a.Count, ts(a.FirstSeen), ts(a.LastSeen), fieldsJSON(a.Fields),
		idsJSON(a.EventIDs), a.Assignee, a.StateBy, ts(a.StateAt), a.Reason).Scan(&id); err != nil {
		return fmt.Errorf("rule %s: %w", a.RuleID, err)
	}
	if _, err := change.ExecContext(ctx, id, string(a.State), time.Now().UnixNano()); err != nil {
		return fmt.Errorf("rule %s: change feed: %w", a.RuleID, err)
	}
	a.ID = id
	return nil
}

// AddOccurrence counts one more occurrence at t (LastSeen never moves
// backwards) and appends eventIDs, keeping the first maxEvents ids (the
// evidence that opened the alert); maxEvents <= 0 keeps all.
func (d *DB) AddOccurrence(ctx context.Context, id int64, t time.Time, eventIDs []int64, maxEvents int) error {
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		var raw string
		err := tx.QueryRowContext(ctx, `SELECT event_ids FROM alerts WHERE id = ?`, id).Scan(&raw)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("alert", id)
		}
		if err != nil {
			return err
		}
		var ids []int64
		if err := json.Unmarshal([]byte(raw), &ids); err != nil {
			return fmt.Errorf("alert %d event ids: %w", id, err)
		}
		ids = append(ids, eventIDs...)
		if maxEvents > 0 && len(ids) > maxEvents {
			ids = ids[:maxEvents]
		}
		_, err = tx.ExecContext(ctx, `UPDATE alerts SET count = count + 1, last_seen = max(last_seen, ?), event_ids = ? WHERE id = ?`,
			ts(t), idsJSON(ids), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: add occurrence to alert %d: %w", id, err)
	}
	return nil
}

// GetAlert returns one alert or store.ErrNotFound.
func (d *DB) GetAlert(ctx context.Context, id int64) (*alert.Alert, error) {
	a, err := scanAlert(d.r.QueryRowContext(ctx, `SELECT `+alertCols+` FROM alerts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("sqlite: alert", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get alert %d: %w", id, err)
	}
	return a, nil
}

// ListAlerts returns alerts matching f, newest (highest id) first. Since
// selects alerts last seen at or after it. An unknown MinLevel is an error.
func (d *DB) ListAlerts(ctx context.Context, f alert.Filter) ([]alert.Alert, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	var where []string
	var args []any
	if len(f.States) > 0 {
		where = append(where, "state IN (?"+strings.Repeat(", ?", len(f.States)-1)+")")
		for _, s := range f.States {
			args = append(args, string(s))
		}
	}
	if f.Host != "" {
		where, args = append(where, "host = ?"), append(args, f.Host)
	}
	if f.RuleID != "" {
		where, args = append(where, "rule_id = ?"), append(args, f.RuleID)
	}
	if f.MinLevel != "" {
		rank, ok := levelRank(f.MinLevel)
		if !ok {
			return nil, fmt.Errorf("sqlite: list alerts: unknown level %q (want informational, low, medium, high or critical)", f.MinLevel)
		}
		where, args = append(where, "level_rank >= ?"), append(args, rank)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "last_seen >= ?"), append(args, ts(f.Since))
	}
	if f.Before != 0 {
		where, args = append(where, "id < ?"), append(args, f.Before)
	}
	q := `SELECT ` + alertCols + ` FROM alerts`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT " + strconv.Itoa(limit)
	rows, err := d.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list alerts: %w", err)
	}
	defer rows.Close()
	var out []alert.Alert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list alerts: %w", err)
		}
		out = append(out, *a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list alerts: %w", err)
	}
	return out, nil
}

// SetState changes the state only if it is still from: store.ErrConflict
// when it is not, store.ErrNotFound for an unknown id. Checking that the
// transition is allowed is package alert's job.
func (d *DB) SetState(ctx context.Context, id int64, from, to alert.State, by string, at time.Time, reason string) error {
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		n, err := affected(tx.ExecContext(ctx, `UPDATE alerts SET state = ?, state_by = ?, state_at = ?, reason = ?
			WHERE id = ? AND state = ?`, string(to), by, ts(at), reason, id, string(from)))
		if err != nil {
			return err
		}
		if n == 1 {
			_, err := tx.ExecContext(ctx, `INSERT INTO alert_changes(alert_id, kind, from_state, to_state, by, at)
				VALUES (?, 'state', ?, ?, ?, ?)`, id, string(from), string(to), by, ts(at))
			return err
		}
		var cur string
		err = tx.QueryRowContext(ctx, `SELECT state FROM alerts WHERE id = ?`, id).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("alert", id)
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("alert %d is %s, not %s: %w", id, cur, from, store.ErrConflict)
	})
	if err != nil {
		return fmt.Errorf("sqlite: set state of alert: %w", err)
	}
	return nil
}

// SetAssignee sets (or, with "", clears) the assignee.
func (d *DB) SetAssignee(ctx context.Context, id int64, assignee string) error {
	return d.updateOne(ctx, true, "alert", id, `UPDATE alerts SET assignee = ? WHERE id = ?`, assignee, id)
}

// AddComment stores c and sets c.ID; an unknown alert is store.ErrNotFound.
func (d *DB) AddComment(ctx context.Context, c *alert.Comment) error {
	var id int64
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO alert_comments(alert_id, author, text, at) VALUES (?, ?, ?, ?) RETURNING id`,
			c.AlertID, c.Author, c.Text, ts(c.At)).Scan(&id)
	})
	if isConstraint(err) {
		return notFound("sqlite: add comment: alert", c.AlertID)
	}
	if err != nil {
		return fmt.Errorf("sqlite: add comment to alert %d: %w", c.AlertID, err)
	}
	c.ID = id
	return nil
}

// Comments returns an alert's comments, oldest first (none for an unknown
// alert).
func (d *DB) Comments(ctx context.Context, alertID int64) ([]alert.Comment, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT id, alert_id, author, text, at FROM alert_comments WHERE alert_id = ? ORDER BY at, id`, alertID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: comments of alert %d: %w", alertID, err)
	}
	defer rows.Close()
	var out []alert.Comment
	for rows.Next() {
		var c alert.Comment
		var at int64
		if err := rows.Scan(&c.ID, &c.AlertID, &c.Author, &c.Text, &at); err != nil {
			return nil, fmt.Errorf("sqlite: comments of alert %d: %w", alertID, err)
		}
		c.At = fromTS(at)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: comments of alert %d: %w", alertID, err)
	}
	return out, nil
}

// CreateSuppression stores s and sets s.ID. A zero ExpiresAt never expires.
func (d *DB) CreateSuppression(ctx context.Context, s *alert.Suppression) error {
	var id int64
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO suppressions(rule_id, host, field, value, reason, created_by, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			s.RuleID, s.Host, s.Field, s.Value, s.Reason, s.CreatedBy, ts(s.CreatedAt), ts(s.ExpiresAt)).Scan(&id)
	})
	if err != nil {
		return fmt.Errorf("sqlite: create suppression for rule %s: %w", s.RuleID, err)
	}
	s.ID = id
	return nil
}

// ActiveSuppressions returns suppressions not expired at now (ExpiresAt after
// now, or zero), oldest first.
func (d *DB) ActiveSuppressions(ctx context.Context, now time.Time) ([]alert.Suppression, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT id, rule_id, host, field, value, reason, created_by, created_at, expires_at
		FROM suppressions WHERE expires_at = 0 OR expires_at > ? ORDER BY id`, now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("sqlite: active suppressions: %w", err)
	}
	defer rows.Close()
	var out []alert.Suppression
	for rows.Next() {
		var s alert.Suppression
		var created, expires int64
		if err := rows.Scan(&s.ID, &s.RuleID, &s.Host, &s.Field, &s.Value, &s.Reason, &s.CreatedBy, &created, &expires); err != nil {
			return nil, fmt.Errorf("sqlite: active suppressions: %w", err)
		}
		s.CreatedAt, s.ExpiresAt = fromTS(created), fromTS(expires)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: active suppressions: %w", err)
	}
	return out, nil
}

// DeleteSuppression removes a suppression; an unknown id is
// store.ErrNotFound.
func (d *DB) DeleteSuppression(ctx context.Context, id int64) error {
	return d.updateOne(ctx, true, "suppression", id, `DELETE FROM suppressions WHERE id = ?`, id)
}
