package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/ruleset"
	"github.com/vigil-edr/vigil/internal/transport"
)

var (
	_ transport.Store = (*DB)(nil)
	_ authz.Store     = (*DB)(nil)
	_ ruleset.Store   = (*DB)(nil)
)

// Enrolment tokens, agents, API tokens and rule switches are written with
// synchronous=FULL (durable on return): they are few, and losing one after
// telling a caller it was stored would break enrolment or revocation.

// CreateEnrollToken stores a new token; an existing id is store.ErrConflict.
func (d *DB) CreateEnrollToken(ctx context.Context, t transport.EnrollToken) error {
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO enroll_tokens(id, secret_hash, note, created_at, expires_at, max_uses, uses, revoked)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, nonNil(t.SecretHash), t.Note, ts(t.CreatedAt), ts(t.ExpiresAt), t.MaxUses, t.Uses, b2i(t.Revoked))
		return err
	})
	if err != nil {
		return conflict("sqlite: create enrolment token "+t.ID, err)
	}
	return nil
}

// ConsumeEnrollToken counts one use of a valid token in a single UPDATE, so
// concurrent consumers of the last use cannot both succeed. A zero ExpiresAt
// never expires; a token is expired from ExpiresAt on.
func (d *DB) ConsumeEnrollToken(ctx context.Context, id string, secretHash []byte, now time.Time) error {
	var n int64
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		var err error
		n, err = affected(tx.ExecContext(ctx, `UPDATE enroll_tokens SET uses = uses + 1
			WHERE id = ? AND secret_hash = ? AND NOT revoked
			  AND (expires_at = 0 OR expires_at > ?)
			  AND (max_uses = 0 OR uses < max_uses)`,
			id, nonNil(secretHash), now.UnixNano()))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: consume enrolment token %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: enrolment token %s: %w", id, transport.ErrTokenInvalid)
	}
	return nil
}

// RevokeEnrollToken revokes a token; an unknown id is store.ErrNotFound.
func (d *DB) RevokeEnrollToken(ctx context.Context, id string) error {
	return d.updateOne(ctx, true, "enrolment token", id, `UPDATE enroll_tokens SET revoked = 1 WHERE id = ?`, id)
}

// ListEnrollTokens returns every token, oldest first.
func (d *DB) ListEnrollTokens(ctx context.Context) ([]transport.EnrollToken, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT id, secret_hash, note, created_at, expires_at, max_uses, uses, revoked
		FROM enroll_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list enrolment tokens: %w", err)
	}
	defer rows.Close()
	var out []transport.EnrollToken
	for rows.Next() {
		var t transport.EnrollToken
		var created, expires int64
		if err := rows.Scan(&t.ID, &t.SecretHash, &t.Note, &created, &expires, &t.MaxUses, &t.Uses, &t.Revoked); err != nil {
			return nil, fmt.Errorf("sqlite: list enrolment tokens: %w", err)
		}
		t.CreatedAt, t.ExpiresAt = fromTS(created), fromTS(expires)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list enrolment tokens: %w", err)
	}
	return out, nil
}

const agentCols = `id, hostname, os, arch, version, cert_serial, cert_not_after, enrolled_at, last_seen, revoked, revoked_at, health, health_at`

// PutAgent inserts or replaces the agent row.
func (d *DB) PutAgent(ctx context.Context, a transport.Agent) error {
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO agents(`+agentCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET hostname = excluded.hostname, os = excluded.os, arch = excluded.arch,
				version = excluded.version, cert_serial = excluded.cert_serial, cert_not_after = excluded.cert_not_after,
				enrolled_at = excluded.enrolled_at, last_seen = excluded.last_seen, revoked = excluded.revoked,
				revoked_at = excluded.revoked_at, health = excluded.health, health_at = excluded.health_at`,
			a.ID, a.Hostname, a.OS, a.Arch, a.Version, a.CertSerial, ts(a.CertNotAfter), ts(a.EnrolledAt),
			ts(a.LastSeen), b2i(a.Revoked), ts(a.RevokedAt), string(a.Health), ts(a.HealthAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: put agent %s: %w", a.ID, err)
	}
	return nil
}

func scanAgent(sc interface{ Scan(...any) error }) (transport.Agent, error) {
	var a transport.Agent
	var notAfter, enrolled, seen, revokedAt, healthAt int64
	var health string
	err := sc.Scan(&a.ID, &a.Hostname, &a.OS, &a.Arch, &a.Version, &a.CertSerial, &notAfter, &enrolled, &seen, &a.Revoked, &revokedAt, &health, &healthAt)
	a.CertNotAfter, a.EnrolledAt, a.LastSeen, a.RevokedAt = fromTS(notAfter), fromTS(enrolled), fromTS(seen), fromTS(revokedAt)
	a.HealthAt = fromTS(healthAt)
	if health != "" {
		a.Health = []byte(health)
	}
	return a, err
}

// GetAgent returns store.ErrNotFound for an unknown id.
func (d *DB) GetAgent(ctx context.Context, id string) (transport.Agent, error) {
	a, err := scanAgent(d.r.QueryRowContext(ctx, `SELECT `+agentCols+` FROM agents WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, notFound("sqlite: agent", id)
	}
	if err != nil {
		return a, fmt.Errorf("sqlite: get agent %s: %w", id, err)
	}
	return a, nil
}

// ListAgents returns every agent ordered by id.
func (d *DB) ListAgents(ctx context.Context) ([]transport.Agent, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT `+agentCols+` FROM agents ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list agents: %w", err)
	}
	defer rows.Close()
	var out []transport.Agent
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list agents: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list agents: %w", err)
	}
	return out, nil
}

// RevokeAgent marks the agent revoked at t. Revoking a revoked agent keeps
// the first revocation time. An unknown id is store.ErrNotFound.
func (d *DB) RevokeAgent(ctx context.Context, id string, at time.Time) error {
	return d.updateOne(ctx, true, "agent", id,
		`UPDATE agents SET revoked_at = CASE WHEN revoked THEN revoked_at ELSE ? END, revoked = 1 WHERE id = ?`, ts(at), id)
}

// RevokedAgents lists the ids of revoked agents, sorted.
func (d *DB) RevokedAgents(ctx context.Context) ([]string, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT id FROM agents WHERE revoked ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: revoked agents: %w", err)
	}
	return scanStrings(rows, "sqlite: revoked agents")
}

// TouchAgent records that the agent was seen at t; LastSeen never moves
// backwards. It is not written durably (a lost heartbeat is harmless). An
// unknown id is store.ErrNotFound.
func (d *DB) TouchAgent(ctx context.Context, id string, t time.Time) error {
	return d.updateOne(ctx, false, "agent", id, `UPDATE agents SET last_seen = max(last_seen, ?) WHERE id = ?`, ts(t), id)
}

// TouchAgentHealth records a heartbeat at t with the agent's health (JSON):
// LastSeen as TouchAgent, and the health unless a later one is stored. Like
// TouchAgent it is not written durably. An unknown id is store.ErrNotFound.
func (d *DB) TouchAgentHealth(ctx context.Context, id string, t time.Time, health []byte) error {
	return d.updateOne(ctx, false, "agent", id, `UPDATE agents SET last_seen = max(last_seen, ?1),
		health = CASE WHEN ?1 >= health_at THEN ?2 ELSE health END, health_at = max(health_at, ?1) WHERE id = ?3`,
		ts(t), string(health), id)
}

// CreateToken stores an API token; an existing id or hash is
// store.ErrConflict.
func (d *DB) CreateToken(ctx context.Context, t authz.Token) error {
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO api_tokens(id, name, role, hash, created_at, expires_at, last_used, revoked)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.Name, string(t.Role), nonNil(t.Hash), ts(t.CreatedAt), ts(t.ExpiresAt), ts(t.LastUsed), b2i(t.Revoked))
		return err
	})
	if err != nil {
		return conflict("sqlite: create API token "+t.ID, err)
	}
	return nil
}

const tokenCols = `id, name, role, hash, created_at, expires_at, last_used, revoked`

func scanToken(sc interface{ Scan(...any) error }) (authz.Token, error) {
	var t authz.Token
	var role string
	var created, expires, used int64
	err := sc.Scan(&t.ID, &t.Name, &role, &t.Hash, &created, &expires, &used, &t.Revoked)
	t.Role, t.CreatedAt, t.ExpiresAt, t.LastUsed = authz.Role(role), fromTS(created), fromTS(expires), fromTS(used)
	return t, err
}

// TokenByHash returns the token whatever its state (the caller checks
// Revoked and ExpiresAt), or store.ErrNotFound.
func (d *DB) TokenByHash(ctx context.Context, hash []byte) (authz.Token, error) {
	t, err := scanToken(d.r.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE hash = ?`, nonNil(hash)))
	if errors.Is(err, sql.ErrNoRows) {
		return t, notFound("sqlite: API token with hash", fmt.Sprintf("%.8x…", hash))
	}
	if err != nil {
		return t, fmt.Errorf("sqlite: API token by hash: %w", err)
	}
	return t, nil
}

// ListTokens returns every API token, oldest first.
func (d *DB) ListTokens(ctx context.Context) ([]authz.Token, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT `+tokenCols+` FROM api_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list API tokens: %w", err)
	}
	defer rows.Close()
	var out []authz.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list API tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list API tokens: %w", err)
	}
	return out, nil
}

// RevokeToken revokes an API token; an unknown id is store.ErrNotFound.
func (d *DB) RevokeToken(ctx context.Context, id string) error {
	return d.updateOne(ctx, true, "API token", id, `UPDATE api_tokens SET revoked = 1 WHERE id = ?`, id)
}

// TouchToken records a use at t (never moving LastUsed backwards); not
// durable. An unknown id is store.ErrNotFound.
func (d *DB) TouchToken(ctx context.Context, id string, t time.Time) error {
	return d.updateOne(ctx, false, "API token", id, `UPDATE api_tokens SET last_used = max(last_used, ?) WHERE id = ?`, ts(t), id)
}

// DisabledRules returns the ids of disabled rules, sorted.
func (d *DB) DisabledRules(ctx context.Context) ([]string, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT rule_id FROM disabled_rules ORDER BY rule_id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: disabled rules: %w", err)
	}
	return scanStrings(rows, "sqlite: disabled rules")
}

// SetRuleEnabled enables or disables a rule; setting the current state again
// is not an error.
func (d *DB) SetRuleEnabled(ctx context.Context, ruleID string, enabled bool) error {
	q := `INSERT INTO disabled_rules(rule_id) VALUES (?) ON CONFLICT DO NOTHING`
	if enabled {
		q = `DELETE FROM disabled_rules WHERE rule_id = ?`
	}
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, q, ruleID)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: set rule %s enabled=%v: %w", ruleID, enabled, err)
	}
	return nil
}

// updateOne runs an UPDATE or DELETE that must hit exactly one row, and
// returns store.ErrNotFound when it hits none.
func (d *DB) updateOne(ctx context.Context, durable bool, what string, id any, q string, args ...any) error {
	var n int64
	err := d.writeTx(ctx, durable, func(tx *sql.Tx) error {
		var err error
		n, err = affected(tx.ExecContext(ctx, q, args...))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: update %s %v: %w", what, id, err)
	}
	if n == 0 {
		return notFound("sqlite: "+what, id)
	}
	return nil
}

func scanStrings(rows *sql.Rows, what string) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// nonNil stores a nil byte slice as an empty BLOB rather than NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
