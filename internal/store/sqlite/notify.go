package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/notify"
	"github.com/vigil-edr/vigil/internal/store"
	"github.com/vigil-edr/vigil/internal/wire"
)

var _ notify.Store = (*DB)(nil)

const channelCols = `id, name, kind, enabled, url, secret, smtp_addr, smtp_tls, username, password, from_addr, to_addrs, created_at, updated_at`

func scanChannel(sc interface{ Scan(...any) error }) (*notify.Channel, error) {
	c := &notify.Channel{}
	var kind, mode, to string
	var created, updated int64
	if err := sc.Scan(&c.ID, &c.Name, &kind, &c.Enabled, &c.URL, &c.Secret, &c.SMTPAddr, &mode, &c.Username,
		&c.Password, &c.From, &to, &created, &updated); err != nil {
		return nil, err
	}
	c.Kind, c.SMTPTLS, c.CreatedAt, c.UpdatedAt = notify.Kind(kind), notify.TLSMode(mode), fromTS(created), fromTS(updated)
	if err := json.Unmarshal([]byte(to), &c.To); err != nil {
		return nil, fmt.Errorf("channel %d recipients: %w", c.ID, err)
	}
	return c, nil
}

func channelArgs(c *notify.Channel) []any {
	to := c.To
	if to == nil {
		to = []string{}
	}
	return []any{c.Name, string(c.Kind), b2i(c.Enabled), c.URL, c.Secret, c.SMTPAddr, string(c.SMTPTLS), c.Username,
		c.Password, c.From, string(wire.AppendStringList(nil, to))}
}

// CreateChannel stores c and sets its id and times.
func (d *DB) CreateChannel(ctx context.Context, c *notify.Channel) error {
	now := time.Now().UTC()
	var id int64
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO notify_channels(name, kind, enabled, url, secret, smtp_addr, smtp_tls,
			username, password, from_addr, to_addrs, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			append(channelArgs(c), ts(now), ts(now))...).Scan(&id)
	})
	if err != nil {
		return fmt.Errorf("sqlite: create channel: %w", err)
	}
	c.ID, c.CreatedAt, c.UpdatedAt = id, now, now
	return nil
}

// UpdateChannel replaces channel c.ID; store.ErrNotFound if unknown.
func (d *DB) UpdateChannel(ctx context.Context, c *notify.Channel) error {
	now := time.Now().UTC()
	err := d.updateOne(ctx, true, "channel", c.ID, `UPDATE notify_channels SET name = ?, kind = ?, enabled = ?, url = ?,
		secret = ?, smtp_addr = ?, smtp_tls = ?, username = ?, password = ?, from_addr = ?, to_addrs = ?, updated_at = ?
		WHERE id = ?`, append(channelArgs(c), ts(now), c.ID)...)
	if err == nil {
		c.UpdatedAt = now
	}
	return err
}

// GetChannel returns one channel or store.ErrNotFound.
func (d *DB) GetChannel(ctx context.Context, id int64) (*notify.Channel, error) {
	c, err := scanChannel(d.r.QueryRowContext(ctx, `SELECT `+channelCols+` FROM notify_channels WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("sqlite: channel", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get channel %d: %w", id, err)
	}
	return c, nil
}

// ListChannels returns every channel by id.
func (d *DB) ListChannels(ctx context.Context) ([]notify.Channel, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT `+channelCols+` FROM notify_channels ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list channels: %w", err)
	}
	defer rows.Close()
	var out []notify.Channel
	for rows.Next() {
		c, err := scanChannel(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list channels: %w", err)
		}
		out = append(out, *c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list channels: %w", err)
	}
	return out, nil
}

// DeleteChannel deletes a channel; store.ErrConflict while a route names
// it (the foreign key of notify_route_channels).
func (d *DB) DeleteChannel(ctx context.Context, id int64) error {
	err := d.updateOne(ctx, true, "channel", id, `DELETE FROM notify_channels WHERE id = ?`, id)
	if isConstraint(err) {
		return fmt.Errorf("sqlite: delete channel %d: a route still uses it: %w", id, store.ErrConflict)
	}
	return err
}

const routeCols = `id, name, enabled, min_level, tags, hosts, on_state_change, escalate_after, created_at, updated_at`

func (d *DB) scanRoutes(ctx context.Context, where string, args ...any) ([]notify.Route, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT `+routeCols+` FROM notify_routes `+where+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	var out []notify.Route
	byID := map[int64]int{}
	for rows.Next() {
		var r notify.Route
		var tags, hosts string
		var esc, created, updated int64
		if err := rows.Scan(&r.ID, &r.Name, &r.Enabled, &r.MinLevel, &tags, &hosts, &r.OnStateChange, &esc, &created, &updated); err != nil {
			rows.Close()
			return nil, err
		}
		if err := errors.Join(json.Unmarshal([]byte(tags), &r.Tags), json.Unmarshal([]byte(hosts), &r.Hosts)); err != nil {
			rows.Close()
			return nil, fmt.Errorf("route %d: %w", r.ID, err)
		}
		r.EscalateAfter, r.CreatedAt, r.UpdatedAt = time.Duration(esc), fromTS(created), fromTS(updated)
		byID[r.ID] = len(out)
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return out, nil
	}
	crows, err := d.r.QueryContext(ctx, `SELECT route_id, escalation, channel_id FROM notify_route_channels ORDER BY route_id, escalation, position`)
	if err != nil {
		return nil, err
	}
	defer crows.Close()
	for crows.Next() {
		var rid, cid int64
		var esc bool
		if err := crows.Scan(&rid, &esc, &cid); err != nil {
			return nil, err
		}
		i, ok := byID[rid]
		if !ok {
			continue
		}
		if esc {
			out[i].EscalateTo = append(out[i].EscalateTo, cid)
		} else {
			out[i].Channels = append(out[i].Channels, cid)
		}
	}
	return out, crows.Err()
}

func writeRouteChannels(ctx context.Context, tx *sql.Tx, r *notify.Route) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM notify_route_channels WHERE route_id = ?`, r.ID); err != nil {
		return err
	}
	for esc, ids := range [][]int64{r.Channels, r.EscalateTo} {
		for pos, cid := range ids {
			if _, err := tx.ExecContext(ctx, `INSERT INTO notify_route_channels(route_id, escalation, position, channel_id)
				VALUES (?, ?, ?, ?)`, r.ID, esc, pos, cid); err != nil {
				return err
			}
		}
	}
	return nil
}

func routeArgs(r *notify.Route) []any {
	list := func(l []string) string {
		if l == nil {
			l = []string{}
		}
		return string(wire.AppendStringList(nil, l))
	}
	return []any{r.Name, b2i(r.Enabled), r.MinLevel, list(r.Tags), list(r.Hosts), b2i(r.OnStateChange), int64(r.EscalateAfter)}
}

// CreateRoute stores r with its channels; store.ErrConflict if a channel
// does not exist.
func (d *DB) CreateRoute(ctx context.Context, r *notify.Route) error {
	now := time.Now().UTC()
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO notify_routes(name, enabled, min_level, tags, hosts, on_state_change,
			escalate_after, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			append(routeArgs(r), ts(now), ts(now))...).Scan(&r.ID); err != nil {
			return err
		}
		return writeRouteChannels(ctx, tx, r)
	})
	if err != nil {
		r.ID = 0
		return conflict("sqlite: create route (unknown channel?)", err)
	}
	r.CreatedAt, r.UpdatedAt = now, now
	return nil
}

// UpdateRoute replaces route r.ID and its channels.
func (d *DB) UpdateRoute(ctx context.Context, r *notify.Route) error {
	now := time.Now().UTC()
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		n, err := affected(tx.ExecContext(ctx, `UPDATE notify_routes SET name = ?, enabled = ?, min_level = ?, tags = ?,
			hosts = ?, on_state_change = ?, escalate_after = ?, updated_at = ? WHERE id = ?`,
			append(routeArgs(r), ts(now), r.ID)...))
		if err != nil {
			return err
		}
		if n == 0 {
			return notFound("route", r.ID)
		}
		return writeRouteChannels(ctx, tx, r)
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("sqlite: update %w", err)
	}
	if err != nil {
		return conflict("sqlite: update route (unknown channel?)", err)
	}
	r.UpdatedAt = now
	return nil
}

// GetRoute returns one route or store.ErrNotFound.
func (d *DB) GetRoute(ctx context.Context, id int64) (*notify.Route, error) {
	rs, err := d.scanRoutes(ctx, `WHERE id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: get route %d: %w", id, err)
	}
	if len(rs) == 0 {
		return nil, notFound("sqlite: route", id)
	}
	return &rs[0], nil
}

// ListRoutes returns every route by id.
func (d *DB) ListRoutes(ctx context.Context) ([]notify.Route, error) {
	rs, err := d.scanRoutes(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("sqlite: list routes: %w", err)
	}
	return rs, nil
}

// DeleteRoute deletes a route, its channel links and its escalations.
func (d *DB) DeleteRoute(ctx context.Context, id int64) error {
	return d.updateOne(ctx, true, "route", id, `DELETE FROM notify_routes WHERE id = ?`, id)
}

// PendingChanges returns up to limit alert changes, oldest first, each with
// the alert as it is now.
func (d *DB) PendingChanges(ctx context.Context, limit int) ([]notify.AlertChange, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT id, alert_id, kind, from_state, to_state, by, at FROM alert_changes ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: pending alert changes: %w", err)
	}
	var out []notify.AlertChange
	for rows.Next() {
		var c notify.AlertChange
		var kind, from, to string
		var at int64
		if err := rows.Scan(&c.ID, &c.AlertID, &kind, &from, &to, &c.By, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: pending alert changes: %w", err)
		}
		c.Kind, c.From, c.To, c.At = notify.ChangeKind(kind), alert.State(from), alert.State(to), fromTS(at)
		out = append(out, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: pending alert changes: %w", err)
	}
	for i := range out {
		a, err := d.GetAlert(ctx, out[i].AlertID)
		switch {
		case err == nil:
			out[i].Alert = a
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
	}
	return out, nil
}

// DueEscalations returns up to limit escalations due at or before now.
func (d *DB) DueEscalations(ctx context.Context, now time.Time, limit int) ([]notify.Escalation, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT id, alert_id, route_id, due_at FROM notify_escalations
		WHERE due_at <= ? ORDER BY due_at, id LIMIT ?`, ts(now), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: due escalations: %w", err)
	}
	defer rows.Close()
	var out []notify.Escalation
	for rows.Next() {
		var e notify.Escalation
		var due int64
		if err := rows.Scan(&e.ID, &e.AlertID, &e.RouteID, &due); err != nil {
			return nil, fmt.Errorf("sqlite: due escalations: %w", err)
		}
		e.DueAt = fromTS(due)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Commit applies a batch in one durable transaction; store.ErrConflict
// (and nothing applied) when a change or escalation is already gone.
func (d *DB) Commit(ctx context.Context, b *notify.Batch) error {
	ids := make([]int64, len(b.Deliveries))
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		for _, del := range []struct {
			table string
			ids   []int64
		}{{"alert_changes", b.Changes}, {"notify_escalations", b.Escalations}} {
			for _, id := range del.ids {
				n, err := affected(tx.ExecContext(ctx, `DELETE FROM `+del.table+` WHERE id = ?`, id))
				if err != nil {
					return err
				}
				if n == 0 {
					return fmt.Errorf("%s %d already consumed: %w", strings.TrimPrefix(del.table, "notify_"), id, store.ErrConflict)
				}
			}
		}
		for i := range b.Deliveries {
			dl := &b.Deliveries[i]
			msg, err := json.Marshal(dl.Message)
			if err != nil {
				return err
			}
			if err := tx.QueryRowContext(ctx, `INSERT INTO notify_outbox(channel_id, event, alert_id, message, state, attempts,
				next_at, created_at, done_at, last_error) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, 0, '') RETURNING id`,
				dl.ChannelID, string(dl.Message.Event), dl.Message.Alert.ID, string(msg), ts(dl.NextAt), ts(dl.CreatedAt)).Scan(&ids[i]); err != nil {
				return err
			}
		}
		for _, e := range b.Schedule {
			if _, err := tx.ExecContext(ctx, `INSERT INTO notify_escalations(alert_id, route_id, due_at) VALUES (?, ?, ?)`,
				e.AlertID, e.RouteID, ts(e.DueAt)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: notify commit: %w", err)
	}
	for i := range b.Deliveries {
		b.Deliveries[i].ID, b.Deliveries[i].State = ids[i], notify.DeliveryPending
	}
	return nil
}

const deliveryCols = `id, channel_id, message, state, attempts, next_at, created_at, done_at, last_error`

func scanDelivery(sc interface{ Scan(...any) error }) (notify.Delivery, error) {
	var dl notify.Delivery
	var msg, state string
	var next, created, done int64
	if err := sc.Scan(&dl.ID, &dl.ChannelID, &msg, &state, &dl.Attempts, &next, &created, &done, &dl.LastError); err != nil {
		return dl, err
	}
	dl.State, dl.NextAt, dl.CreatedAt, dl.DoneAt = notify.DeliveryState(state), fromTS(next), fromTS(created), fromTS(done)
	if err := json.Unmarshal([]byte(msg), &dl.Message); err != nil {
		return dl, fmt.Errorf("delivery %d message: %w", dl.ID, err)
	}
	return dl, nil
}

// ClaimDeliveries leases up to limit due pending deliveries until now+lease.
// A lease needs no fsync: losing one on power loss only means an earlier retry.
func (d *DB) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]notify.Delivery, error) {
	var out []notify.Delivery
	err := d.writeTx(ctx, false, func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `SELECT `+deliveryCols+` FROM notify_outbox
			WHERE state = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?`, ts(now), limit)
		if err != nil {
			return err
		}
		var unreadable []int64
		for rows.Next() {
			dl, err := scanDelivery(rows)
			var se *json.SyntaxError
			var te *json.UnmarshalTypeError
			if errors.As(err, &se) || errors.As(err, &te) {
				// A message that cannot be read can never be sent; failing it
				// keeps it from blocking every claim after it.
				unreadable = append(unreadable, dl.ID)
				continue
			}
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, dl)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range unreadable {
			if _, err := tx.ExecContext(ctx, `UPDATE notify_outbox SET state = 'failed', done_at = ?,
				last_error = 'the stored message is unreadable' WHERE id = ?`, ts(now), id); err != nil {
				return err
			}
		}
		for _, dl := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE notify_outbox SET next_at = ? WHERE id = ?`, ts(now.Add(lease)), dl.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim deliveries: %w", err)
	}
	return out, nil
}

// FinishAttempt records an attempt's outcome durably.
func (d *DB) FinishAttempt(ctx context.Context, dl *notify.Delivery) error {
	return d.updateOne(ctx, true, "delivery", dl.ID, `UPDATE notify_outbox SET state = ?, attempts = ?, next_at = ?,
		done_at = ?, last_error = ? WHERE id = ?`, string(dl.State), dl.Attempts, ts(dl.NextAt), ts(dl.DoneAt), dl.LastError, dl.ID)
}

// Deliveries returns the newest deliveries first.
func (d *DB) Deliveries(ctx context.Context, limit int) ([]notify.Delivery, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT `+deliveryCols+` FROM notify_outbox ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: deliveries: %w", err)
	}
	defer rows.Close()
	var out []notify.Delivery
	for rows.Next() {
		dl, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: deliveries: %w", err)
		}
		out = append(out, dl)
	}
	return out, rows.Err()
}

// PruneDeliveries deletes sent and failed deliveries done before t.
func (d *DB) PruneDeliveries(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := d.writeTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		n, err = affected(tx.ExecContext(ctx, `DELETE FROM notify_outbox WHERE state <> 'pending' AND done_at < ?`, ts(before)))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune deliveries: %w", err)
	}
	return n, nil
}
