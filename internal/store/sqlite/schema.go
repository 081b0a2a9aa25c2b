package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order; migrations[i] brings the schema from
// version i to i+1. Never edit a released migration: append a new one.
// schema.md describes the resulting schema.
var migrations = []string{
	// 1: everything.
	`
CREATE TABLE counters (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters(name, value) VALUES ('event_next_id', 1), ('event_count', 0), ('event_bytes', 0);

CREATE TABLE events (
	id         INTEGER PRIMARY KEY,
	agent_id   TEXT    NOT NULL,
	boot_epoch INTEGER NOT NULL,
	seq        INTEGER NOT NULL,
	host       TEXT    NOT NULL,
	time       INTEGER NOT NULL,
	product    TEXT    NOT NULL,
	services   TEXT    NOT NULL,
	categories TEXT    NOT NULL,
	fields     TEXT    NOT NULL,
	bytes      INTEGER NOT NULL
);
CREATE UNIQUE INDEX events_identity  ON events(agent_id, boot_epoch, seq);
CREATE INDEX        events_host_time ON events(host, time);
CREATE INDEX        events_time      ON events(time);

CREATE TABLE event_categories (
	category TEXT    NOT NULL,
	time     INTEGER NOT NULL,
	event_id INTEGER NOT NULL,
	PRIMARY KEY (category, time, event_id)
) WITHOUT ROWID;

CREATE TABLE events_unscanned (id INTEGER PRIMARY KEY);

CREATE VIRTUAL TABLE events_fts USING fts5(
	text,
	content = '',
	contentless_delete = 1,
	tokenize = 'ascii',
	detail = 'none'
);
INSERT INTO events_fts(events_fts, rank) VALUES ('hashsize', 16777216);

CREATE TABLE enroll_tokens (
	id          TEXT PRIMARY KEY,
	secret_hash BLOB    NOT NULL,
	note        TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	max_uses    INTEGER NOT NULL,
	uses        INTEGER NOT NULL,
	revoked     INTEGER NOT NULL
);

CREATE TABLE agents (
	id             TEXT PRIMARY KEY,
	hostname       TEXT    NOT NULL,
	os             TEXT    NOT NULL,
	arch           TEXT    NOT NULL,
	version        TEXT    NOT NULL,
	cert_serial    TEXT    NOT NULL,
	cert_not_after INTEGER NOT NULL,
	enrolled_at    INTEGER NOT NULL,
	last_seen      INTEGER NOT NULL,
	revoked        INTEGER NOT NULL,
	revoked_at     INTEGER NOT NULL
);
CREATE INDEX agents_revoked ON agents(id) WHERE revoked;

CREATE TABLE alerts (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	rule_id     TEXT    NOT NULL,
	rule_title  TEXT    NOT NULL,
	level       TEXT    NOT NULL,
	level_rank  INTEGER NOT NULL,
	tags        TEXT    NOT NULL,
	host        TEXT    NOT NULL,
	agent_id    TEXT    NOT NULL,
	correlation INTEGER NOT NULL,
	state       TEXT    NOT NULL,
	count       INTEGER NOT NULL,
	first_seen  INTEGER NOT NULL,
	last_seen   INTEGER NOT NULL,
	fields      TEXT    NOT NULL,
	event_ids   TEXT    NOT NULL,
	assignee    TEXT    NOT NULL,
	state_by    TEXT    NOT NULL,
	state_at    INTEGER NOT NULL,
	reason      TEXT    NOT NULL
);
CREATE INDEX alerts_open  ON alerts(rule_id, host, state, last_seen);
CREATE INDEX alerts_state ON alerts(state, id);
CREATE INDEX alerts_host  ON alerts(host, id);

CREATE TABLE alert_comments (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
	author   TEXT    NOT NULL,
	text     TEXT    NOT NULL,
	at       INTEGER NOT NULL
);
CREATE INDEX alert_comments_alert ON alert_comments(alert_id, at);

CREATE TABLE suppressions (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	rule_id    TEXT    NOT NULL,
	host       TEXT    NOT NULL,
	field      TEXT    NOT NULL,
	value      TEXT    NOT NULL,
	reason     TEXT    NOT NULL,
	created_by TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);
CREATE INDEX suppressions_expiry ON suppressions(expires_at);

CREATE TABLE api_tokens (
	id         TEXT PRIMARY KEY,
	name       TEXT    NOT NULL,
	role       TEXT    NOT NULL,
	hash       BLOB    NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	last_used  INTEGER NOT NULL,
	revoked    INTEGER NOT NULL
);

CREATE TABLE disabled_rules (rule_id TEXT PRIMARY KEY) WITHOUT ROWID;
`,
	// 2: full-text indexing moves behind the commit path; fts_indexed is
	// its high-water mark. Everything stored so far was indexed by Insert.
	`
INSERT INTO counters(name, value) SELECT 'fts_indexed', value - 1 FROM counters WHERE name = 'event_next_id';
`,
	// 3: the indexer writes 20,000 events per transaction; FTS5's default
	// 1 MiB in-memory hash costs no more CPU than 16 MiB there and
	// allocates (and releases) far less.
	`
INSERT INTO events_fts(events_fts, rank) VALUES ('hashsize', 1048576);
`,
	// 4: notifications: the alert change feed (written with the alert),
	// channels, routes, escalations and the delivery outbox.
	`
CREATE TABLE alert_changes (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	alert_id   INTEGER NOT NULL,
	kind       TEXT    NOT NULL,
	from_state TEXT    NOT NULL,
	to_state   TEXT    NOT NULL,
	by         TEXT    NOT NULL,
	at         INTEGER NOT NULL
);

CREATE TABLE notify_channels (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	name       TEXT    NOT NULL,
	kind       TEXT    NOT NULL,
	enabled    INTEGER NOT NULL,
	url        TEXT    NOT NULL,
	secret     TEXT    NOT NULL,
	smtp_addr  TEXT    NOT NULL,
	smtp_tls   TEXT    NOT NULL,
	username   TEXT    NOT NULL,
	password   TEXT    NOT NULL,
	from_addr  TEXT    NOT NULL,
	to_addrs   TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);

CREATE TABLE notify_routes (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	name            TEXT    NOT NULL,
	enabled         INTEGER NOT NULL,
	min_level       TEXT    NOT NULL,
	tags            TEXT    NOT NULL,
	hosts           TEXT    NOT NULL,
	on_state_change INTEGER NOT NULL,
	escalate_after  INTEGER NOT NULL,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL
);

CREATE TABLE notify_route_channels (
	route_id   INTEGER NOT NULL REFERENCES notify_routes(id) ON DELETE CASCADE,
	escalation INTEGER NOT NULL,
	position   INTEGER NOT NULL,
	channel_id INTEGER NOT NULL REFERENCES notify_channels(id),
	PRIMARY KEY (route_id, escalation, position)
) WITHOUT ROWID;
CREATE INDEX notify_route_channels_channel ON notify_route_channels(channel_id);

CREATE TABLE notify_escalations (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	alert_id INTEGER NOT NULL,
	route_id INTEGER NOT NULL REFERENCES notify_routes(id) ON DELETE CASCADE,
	due_at   INTEGER NOT NULL
);
CREATE INDEX notify_escalations_due   ON notify_escalations(due_at);
CREATE INDEX notify_escalations_route ON notify_escalations(route_id);

CREATE TABLE notify_outbox (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	channel_id INTEGER NOT NULL,
	event      TEXT    NOT NULL,
	alert_id   INTEGER NOT NULL,
	message    TEXT    NOT NULL,
	state      TEXT    NOT NULL,
	attempts   INTEGER NOT NULL,
	next_at    INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	done_at    INTEGER NOT NULL,
	last_error TEXT    NOT NULL
);
CREATE INDEX notify_outbox_due  ON notify_outbox(next_at) WHERE state = 'pending';
CREATE INDEX notify_outbox_done ON notify_outbox(done_at) WHERE state <> 'pending';
`,
	// 5: console identity (users, sessions) and the hash-chained audit log
	// with its head checkpoint. Audit rows refuse UPDATE and DELETE.
	`
CREATE TABLE users (
	name           TEXT PRIMARY KEY,
	role           TEXT    NOT NULL,
	password_hash  TEXT    NOT NULL,
	totp_secret    BLOB    NOT NULL,
	totp_last_step INTEGER NOT NULL,
	failed         INTEGER NOT NULL,
	locked_until   INTEGER NOT NULL,
	created_at     INTEGER NOT NULL,
	updated_at     INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE sessions (
	hash       BLOB PRIMARY KEY,
	user_name  TEXT    NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	pending    INTEGER NOT NULL,
	csrf       TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	ip         TEXT    NOT NULL,
	user_agent TEXT    NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions(user_name);

CREATE TABLE audit_log (
	seq       INTEGER PRIMARY KEY,
	at        INTEGER NOT NULL,
	actor     TEXT    NOT NULL,
	source    TEXT    NOT NULL,
	action    TEXT    NOT NULL,
	target    TEXT    NOT NULL,
	detail    TEXT    NOT NULL,
	prev_hash BLOB    NOT NULL,
	hash      BLOB    NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE audit_head (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash BLOB    NOT NULL
);
INSERT INTO audit_head(id, seq, hash) VALUES (1, 0, x'');
`,
	// 6: cases (package cases): the case rows, their alerts, comments,
	// evidence, timeline, and uploaded files by SHA-256.
	`
CREATE TABLE cases (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	title           TEXT    NOT NULL,
	severity        TEXT    NOT NULL,
	severity_rank   INTEGER NOT NULL,
	status          TEXT    NOT NULL,
	assignee        TEXT    NOT NULL,
	created_by      TEXT    NOT NULL,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	status_by       TEXT    NOT NULL,
	status_at       INTEGER NOT NULL,
	reason          TEXT    NOT NULL,
	breach          INTEGER NOT NULL,
	breach_aware_at INTEGER NOT NULL,
	nis2            INTEGER NOT NULL,
	nis2_aware_at   INTEGER NOT NULL,
	sent            TEXT    NOT NULL,
	version         INTEGER NOT NULL
);
CREATE INDEX cases_status   ON cases(status, id);
CREATE INDEX cases_assignee ON cases(assignee, id);

CREATE TABLE case_alerts (
	case_id  INTEGER NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
	alert_id INTEGER NOT NULL,
	pos      INTEGER NOT NULL,
	PRIMARY KEY (case_id, alert_id)
) WITHOUT ROWID;
CREATE INDEX case_alerts_alert ON case_alerts(alert_id);

CREATE TABLE case_comments (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	case_id INTEGER NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
	author  TEXT    NOT NULL,
	text    TEXT    NOT NULL,
	at      INTEGER NOT NULL
);
CREATE INDEX case_comments_case ON case_comments(case_id, id);

CREATE TABLE case_evidence (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	case_id  INTEGER NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
	kind     TEXT    NOT NULL,
	ref      TEXT    NOT NULL,
	name     TEXT    NOT NULL,
	size     INTEGER NOT NULL,
	note     TEXT    NOT NULL,
	added_by TEXT    NOT NULL,
	added_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX case_evidence_ref ON case_evidence(case_id, kind, ref);

CREATE TABLE case_timeline (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	case_id INTEGER NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
	at      INTEGER NOT NULL,
	actor   TEXT    NOT NULL,
	kind    TEXT    NOT NULL,
	detail  TEXT    NOT NULL
);
CREATE INDEX case_timeline_case ON case_timeline(case_id, id);

CREATE TABLE case_files (
	sha256 TEXT    PRIMARY KEY,
	size   INTEGER NOT NULL,
	data   BLOB    NOT NULL
);
`,
	// 7: events are stored in compressed blocks (block.go); duplicates are
	// found through runs of stored sequence numbers; the full-text index
	// holds one row per block. convertRowEvents (migrate.go) then moves the
	// rows of version 3 into blocks and drops the old tables.
	`
CREATE TABLE event_blocks (
	id       INTEGER PRIMARY KEY,
	last_id  INTEGER NOT NULL,
	agent_id TEXT    NOT NULL,
	host     TEXT    NOT NULL,
	n        INTEGER NOT NULL,
	min_time INTEGER NOT NULL,
	max_time INTEGER NOT NULL,
	bytes    INTEGER NOT NULL,
	categories TEXT  NOT NULL,
	data     BLOB    NOT NULL
);
CREATE INDEX event_blocks_max   ON event_blocks(max_time);
CREATE INDEX event_blocks_min   ON event_blocks(min_time);
CREATE INDEX event_blocks_host  ON event_blocks(host, max_time);
CREATE INDEX event_blocks_agent ON event_blocks(agent_id, max_time);

CREATE TABLE block_categories (
	category TEXT    NOT NULL,
	max_time INTEGER NOT NULL,
	block_id INTEGER NOT NULL,
	PRIMARY KEY (category, max_time, block_id)
) WITHOUT ROWID;

CREATE TABLE event_seqs (
	agent_id   TEXT    NOT NULL,
	boot_epoch INTEGER NOT NULL,
	lo         INTEGER NOT NULL,
	hi         INTEGER NOT NULL,
	first_id   INTEGER NOT NULL,
	block_id   INTEGER NOT NULL,
	PRIMARY KEY (agent_id, boot_epoch, lo)
) WITHOUT ROWID;
CREATE INDEX event_seqs_block ON event_seqs(block_id);

CREATE TABLE unscanned (lo INTEGER PRIMARY KEY, hi INTEGER NOT NULL);

CREATE VIRTUAL TABLE blocks_fts USING fts5(
	text,
	content = '',
	contentless_delete = 1,
	tokenize = 'ascii',
	detail = 'none'
);
UPDATE counters SET value = 0 WHERE name = 'fts_indexed';
`,
	// 8: host inventories: staged snapshot chunks, and the latest complete
	// inventory per host.
	`
CREATE TABLE inventory_chunks (
	agent_id    TEXT    NOT NULL,
	snapshot_id TEXT    NOT NULL,
	chunk_index INTEGER NOT NULL,
	chunk_count INTEGER NOT NULL,
	kind        TEXT    NOT NULL,
	collected   INTEGER NOT NULL,
	items       TEXT    NOT NULL,
	received_at INTEGER NOT NULL,
	PRIMARY KEY (agent_id, snapshot_id, chunk_index)
) WITHOUT ROWID;
CREATE INDEX inventory_chunks_received ON inventory_chunks(agent_id, received_at);

CREATE TABLE inventory_hosts (
	agent_id    TEXT PRIMARY KEY,
	snapshot_id TEXT    NOT NULL,
	collected   INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE inventory_items (
	agent_id TEXT NOT NULL,
	kind     TEXT NOT NULL,
	name     TEXT NOT NULL,
	data     TEXT NOT NULL
);
CREATE INDEX inventory_items_host ON inventory_items(agent_id, kind, name);
CREATE INDEX inventory_items_name ON inventory_items(kind, name);
`,
	// 9: the console overview's aggregates (overview.Store) read the alerts
	// of a time window from this index alone.
	`
CREATE INDEX alerts_first_seen ON alerts(first_seen, level_rank, rule_id, host);
`,
	// 10: the vulnerability database (advisories and their affected
	// packages, imports) and the findings per host with what they were
	// computed from; vulndb_generation counts imports.
	`
CREATE TABLE vuln_advisories (
	id          INTEGER PRIMARY KEY,
	source      TEXT    NOT NULL,
	advisory_id TEXT    NOT NULL,
	aliases     TEXT    NOT NULL,
	summary     TEXT    NOT NULL,
	modified    INTEGER NOT NULL,
	severity    TEXT    NOT NULL,
	UNIQUE (source, advisory_id)
);

CREATE TABLE vuln_affected (
	advisory  INTEGER NOT NULL REFERENCES vuln_advisories(id) ON DELETE CASCADE,
	ecosystem TEXT    NOT NULL,
	package   TEXT    NOT NULL,
	data      TEXT    NOT NULL
);
CREATE INDEX vuln_affected_package  ON vuln_affected(ecosystem, package);
CREATE INDEX vuln_affected_advisory ON vuln_affected(advisory);

CREATE TABLE vuln_imports (
	id          INTEGER PRIMARY KEY,
	source      TEXT    NOT NULL,
	file        TEXT    NOT NULL,
	sha256      TEXT    NOT NULL,
	imported_at INTEGER NOT NULL,
	advisories  INTEGER NOT NULL,
	affected    INTEGER NOT NULL,
	skipped     TEXT    NOT NULL
);

CREATE TABLE vuln_hosts (
	agent_id     TEXT PRIMARY KEY,
	snapshot_id  TEXT    NOT NULL,
	generation   INTEGER NOT NULL,
	evaluated_at INTEGER NOT NULL,
	ecosystem    TEXT    NOT NULL,
	note         TEXT    NOT NULL
) WITHOUT ROWID;

CREATE TABLE vuln_findings (
	agent_id    TEXT    NOT NULL,
	rank        INTEGER NOT NULL,
	source      TEXT    NOT NULL,
	advisory_id TEXT    NOT NULL,
	package     TEXT    NOT NULL,
	level       TEXT    NOT NULL,
	fixable     INTEGER NOT NULL,
	data        TEXT    NOT NULL
);
CREATE INDEX vuln_findings_host     ON vuln_findings(agent_id, rank);
CREATE INDEX vuln_findings_advisory ON vuln_findings(source, advisory_id);

INSERT INTO counters(name, value) VALUES ('vulndb_generation', 0);
`,
	// 11: configuration assessment (sca.Store). sca_results holds the latest
	// result per host, policy and check; sca_policies the latest summary per
	// host and policy; sca_history every summary (pass/fail over time).
	`
CREATE TABLE sca_policies (
	agent_id       TEXT NOT NULL,
	policy_id      TEXT NOT NULL,
	scan_id        TEXT NOT NULL,
	scanned_at     INTEGER NOT NULL,
	summary        TEXT NOT NULL,
	PRIMARY KEY (agent_id, policy_id)
) WITHOUT ROWID;
CREATE TABLE sca_results (
	agent_id   TEXT NOT NULL,
	policy_id  TEXT NOT NULL,
	check_id   INTEGER NOT NULL,
	scan_id    TEXT NOT NULL,
	scanned_at INTEGER NOT NULL,
	status     TEXT NOT NULL,
	title      TEXT NOT NULL,
	data       TEXT NOT NULL,
	PRIMARY KEY (agent_id, policy_id, check_id)
) WITHOUT ROWID;
CREATE INDEX sca_results_check ON sca_results(policy_id, check_id, status);
CREATE TABLE sca_history (
	agent_id   TEXT NOT NULL,
	policy_id  TEXT NOT NULL,
	scanned_at INTEGER NOT NULL,
	scan_id    TEXT NOT NULL,
	summary    TEXT NOT NULL,
	PRIMARY KEY (agent_id, policy_id, scanned_at, scan_id)
) WITHOUT ROWID;
`,
	// 12: agent health from heartbeats: the last health body (canonical
	// JSON, wire.Health) and when it arrived.
	`
ALTER TABLE agents ADD COLUMN health TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN health_at INTEGER NOT NULL DEFAULT 0;
`,
	// 13: response actions (package respond): one row per command, its
	// signed bytes and the agent's result; state changes are
	// compare-and-set on state.
	`
CREATE TABLE actions (
	id           TEXT PRIMARY KEY,
	grp          TEXT    NOT NULL,
	agent_id     TEXT    NOT NULL,
	type         TEXT    NOT NULL,
	args         TEXT    NOT NULL,
	note         TEXT    NOT NULL,
	state        TEXT    NOT NULL,
	requested_by TEXT    NOT NULL,
	requested_at INTEGER NOT NULL,
	approved_by  TEXT    NOT NULL,
	approved_at  INTEGER NOT NULL,
	signed       BLOB,
	expires_at   INTEGER NOT NULL,
	delivered_at INTEGER NOT NULL,
	completed_at INTEGER NOT NULL,
	reason       TEXT    NOT NULL,
	error        TEXT    NOT NULL,
	output       BLOB,
	file_sha256  TEXT    NOT NULL,
	file_size    INTEGER NOT NULL,
	updated_by   TEXT    NOT NULL
) WITHOUT ROWID;
CREATE INDEX actions_agent_state ON actions(agent_id, state, requested_at);
CREATE INDEX actions_requested   ON actions(requested_at, id);
CREATE INDEX actions_group       ON actions(grp, requested_at);
CREATE INDEX actions_open        ON actions(state, expires_at) WHERE state IN ('pending', 'delivered');
`,

	// 14: hygiene score history (hygiene.Store): one row per point of a
	// host's score (agent_id '' is the fleet), key identifying its inputs.
	`
CREATE TABLE hygiene_scores (
	agent_id   TEXT NOT NULL,
	at         INTEGER NOT NULL,
	score      INTEGER NOT NULL,
	key        TEXT NOT NULL,
	deductions TEXT NOT NULL,
	PRIMARY KEY (agent_id, at)
) WITHOUT ROWID;
`,
	// 15: response playbooks (package respond): alert level and tags →
	// one action, run as their creator.
	`
CREATE TABLE playbooks (
	id           TEXT PRIMARY KEY,
	name         TEXT    NOT NULL,
	min_level    TEXT    NOT NULL,
	tags         TEXT    NOT NULL,
	type         TEXT    NOT NULL,
	args         TEXT    NOT NULL,
	dry_run      INTEGER NOT NULL,
	max_per_hour INTEGER NOT NULL,
	created_by   TEXT    NOT NULL,
	created_at   INTEGER NOT NULL
) WITHOUT ROWID;
`,
}

// migrationFuncs run after the SQL of the migration with the same index, in
// its transaction.
var migrationFuncs = map[int]func(ctx context.Context, tx *sql.Tx) error{
	6: convertRowEvents,
}

// SchemaVersion is the schema version this package writes.
var SchemaVersion = len(migrations)

// migrate brings the database to SchemaVersion, one transaction per
// migration. A database newer than this code is refused.
func migrate(ctx context.Context, w *sql.DB) error {
	if _, err := w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	var v int
	err := w.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	switch {
	case err == sql.ErrNoRows:
		if _, err := w.ExecContext(ctx, `INSERT INTO schema_version(version) VALUES (0)`); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this program's %d", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		tx, err := w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
		if fn := migrationFuncs[v]; fn != nil {
			if err := fn(ctx, tx); err != nil {
				tx.Rollback()
				return fmt.Errorf("migration %d: %w", v+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, v+1); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}
