// Package sqlite is Vigil's embedded storage backend: one SQLite file (WAL
// mode) through the pure-Go driver modernc.org/sqlite, so the server stays a
// static CGO_ENABLED=0 binary. One *DB implements every storage interface the
// server stages declare: transport.Store, eventstore.Store, alert.Store,
// authz.Store, ruleset.Store, notify.Store, cases.Store and overview.Store.
// The schema is described in schema.md; migrations are applied in order by
// Open.
//
// Only cmd/vigil (which wires the stages) and tests import this package;
// stages depend on their own interfaces, never on a backend.
//
// # Concurrency
//
// A DB is safe for concurrent use. SQLite allows one writer at a time, so all
// writes go through one connection (a *sql.DB limited to one open
// connection) and queue there in call order; every write is one IMMEDIATE
// transaction. Reads use a separate pool and see the last committed state
// (WAL readers never block the writer nor wait for it).
//
// Full-text indexing runs behind the commit path on a goroutine that Open
// starts and Close stops (index.go): Insert returns before its events are
// in the text index, Search with text or field filters waits (bounded) for
// the events committed before it, WaitIndexed waits for everything
// committed, and IndexLag reports the backlog.
//
// # Durability
//
// Events are committed with synchronous=NORMAL: in WAL mode a process crash
// loses nothing, a power loss may lose the last commits. That is acceptable
// because JetStream is the durable log and the ingest consumer acknowledges a
// batch only after Insert returns, so a lost tail is delivered again.
// Enrolment tokens, agents, API tokens, rule switches, alert and case
// changes, notification settings and the notification outbox are
// committed with synchronous=FULL (the writer switches the setting around
// those transactions), so they are on disk when the call returns.
// Heartbeat timestamps (TouchAgent, TouchToken) and delivery leases use
// NORMAL.
//
// # Errors
//
// Methods return store.ErrNotFound and store.ErrConflict wrapped with
// context; ConsumeEnrollToken returns transport.ErrTokenInvalid wrapped.
package sqlite
