package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-edr/vigil/internal/authz"
)

var (
	_ authz.UserStore    = (*DB)(nil)
	_ authz.SessionStore = (*DB)(nil)
)

// Users are written with synchronous=FULL: a lockout counter or a new
// password must survive a crash. Sessions are too, except TouchSession.

const userCols = `name, role, password_hash, totp_secret, totp_last_step, failed, locked_until, created_at, updated_at`

func scanUser(sc interface{ Scan(...any) error }) (authz.User, error) {
	var u authz.User
	var role string
	var locked, created, updated int64
	err := sc.Scan(&u.Name, &role, &u.PasswordHash, &u.TOTPSecret, &u.TOTPLastStep, &u.Failed, &locked, &created, &updated)
	u.Role, u.LockedUntil, u.CreatedAt, u.UpdatedAt = authz.Role(role), fromTS(locked), fromTS(created), fromTS(updated)
	if len(u.TOTPSecret) == 0 {
		u.TOTPSecret = nil
	}
	return u, err
}

// CreateUser stores a new user; an existing name is store.ErrConflict.
func (d *DB) CreateUser(ctx context.Context, u authz.User) error {
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO users(`+userCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.Name, string(u.Role), u.PasswordHash, nonNil(u.TOTPSecret), u.TOTPLastStep, u.Failed,
			ts(u.LockedUntil), ts(u.CreatedAt), ts(u.UpdatedAt))
		return err
	})
	if err != nil {
		return conflict("sqlite: create user "+u.Name, err)
	}
	return nil
}

// GetUser returns store.ErrNotFound for an unknown name.
func (d *DB) GetUser(ctx context.Context, name string) (authz.User, error) {
	u, err := scanUser(d.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return authz.User{}, notFound("sqlite: user", name)
	}
	if err != nil {
		return authz.User{}, fmt.Errorf("sqlite: get user %s: %w", name, err)
	}
	return u, nil
}

// ListUsers returns every user ordered by name.
func (d *DB) ListUsers(ctx context.Context) ([]authz.User, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	defer rows.Close()
	var out []authz.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// UpdateUser runs fn on the stored user inside one write transaction (BEGIN
// IMMEDIATE also serialises against other processes) and stores the result.
func (d *DB) UpdateUser(ctx context.Context, name string, fn func(*authz.User) error) error {
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		u, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE name = ?`, name))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("sqlite: user", name)
		}
		if err != nil {
			return err
		}
		if err := fn(&u); err != nil {
			return err
		}
		if u.Name != name {
			return fmt.Errorf("sqlite: update user %s: renaming is not supported", name)
		}
		_, err = tx.ExecContext(ctx, `UPDATE users SET role = ?, password_hash = ?, totp_secret = ?, totp_last_step = ?,
			failed = ?, locked_until = ?, updated_at = ? WHERE name = ?`,
			string(u.Role), u.PasswordHash, nonNil(u.TOTPSecret), u.TOTPLastStep, u.Failed, ts(u.LockedUntil), ts(u.UpdatedAt), name)
		return err
	})
	return err
}

const sessionCols = `hash, user_name, pending, csrf, created_at, last_seen, expires_at, ip, user_agent`

// CreateSession stores a session; an existing hash is store.ErrConflict.
func (d *DB) CreateSession(ctx context.Context, s authz.Session) error {
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions(`+sessionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			nonNil(s.Hash), s.User, b2i(s.Pending), s.CSRF, ts(s.CreatedAt), ts(s.LastSeen), ts(s.ExpiresAt), s.IP, s.UserAgent)
		return err
	})
	if err != nil {
		return conflict("sqlite: create session", err)
	}
	return nil
}

// SessionByHash returns store.ErrNotFound for an unknown hash.
func (d *DB) SessionByHash(ctx context.Context, hash []byte) (authz.Session, error) {
	var s authz.Session
	var created, seen, expires int64
	err := d.r.QueryRowContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE hash = ?`, nonNil(hash)).
		Scan(&s.Hash, &s.User, &s.Pending, &s.CSRF, &created, &seen, &expires, &s.IP, &s.UserAgent)
	if errors.Is(err, sql.ErrNoRows) {
		return authz.Session{}, notFound("sqlite: session", "")
	}
	if err != nil {
		return authz.Session{}, fmt.Errorf("sqlite: get session: %w", err)
	}
	s.CreatedAt, s.LastSeen, s.ExpiresAt = fromTS(created), fromTS(seen), fromTS(expires)
	return s, nil
}

// TouchSession records activity; it is not synced (losing it on power loss
// only shortens an idle window).
func (d *DB) TouchSession(ctx context.Context, hash []byte, at time.Time) error {
	return d.updateOne(ctx, false, "session", "", `UPDATE sessions SET last_seen = max(last_seen, ?) WHERE hash = ?`, ts(at), nonNil(hash))
}

// DeleteSession removes one session; an unknown hash is not an error.
func (d *DB) DeleteSession(ctx context.Context, hash []byte) error {
	return d.writeTx(ctx, true, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE hash = ?`, nonNil(hash))
		return err
	})
}

// DeleteUserSessions ends every session of user.
func (d *DB) DeleteUserSessions(ctx context.Context, user string) error {
	return d.writeTx(ctx, true, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_name = ?`, user)
		return err
	})
}

// DeleteExpiredSessions removes sessions past their absolute expiry or idle
// since idleBefore.
func (d *DB) DeleteExpiredSessions(ctx context.Context, now, idleBefore time.Time) (int64, error) {
	var n int64
	err := d.writeTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		n, err = affected(tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ? OR last_seen <= ?`, ts(now), ts(idleBefore)))
		return err
	})
	return n, err
}
