package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/vigil-edr/vigil/internal/store"
)

// Options configures a DB. The zero value is valid: every field has a default.
type Options struct {
	// BusyTimeout is how long a connection waits for a lock held by another
	// connection (for example a checkpoint) before failing. Default 5 s.
	BusyTimeout time.Duration
	// ReadConns bounds the read pool. Default 4.
	ReadConns int
}

func (o Options) withDefaults() (Options, error) {
	if o.BusyTimeout < 0 {
		return o, fmt.Errorf("sqlite: BusyTimeout %v is negative", o.BusyTimeout)
	}
	if o.ReadConns < 0 {
		return o, fmt.Errorf("sqlite: ReadConns %d is negative", o.ReadConns)
	}
	if o.BusyTimeout == 0 {
		o.BusyTimeout = 5 * time.Second
	}
	if o.ReadConns == 0 {
		o.ReadConns = 4
	}
	return o, nil
}

// DB is the SQLite backend. It is safe for concurrent use.
type DB struct {
	w *sql.DB // the one writer connection
	r *sql.DB // read-only pool

	ins     eventStmts // prepared on w
	alertSt alertStmts // prepared on w
	idx     *indexer   // full-text indexing behind the commit path (index.go)
}

// Open opens (creating if needed) the database file at path and migrates its
// schema to the current version.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite: unusable database path %q", path)
	}
	busy := fmt.Sprintf("_pragma=busy_timeout(%d)", opts.BusyTimeout.Milliseconds())
	common := busy + "&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"

	w, err := sql.Open("sqlite", path+"?"+common+
		"&_pragma=cache_size(-65536)&_pragma=wal_autocheckpoint(4000)&_pragma=temp_store(MEMORY)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	d := &DB{w: w}
	// Set here, not in the DSN: the driver sorts its _pragma list, and a
	// page_size (which applies only while the file is empty) would have to
	// precede journal_mode. 8 KiB pages measured no faster than the
	// default 4 KiB for event inserts, so the default stays.
	for _, p := range []string{"PRAGMA journal_mode=WAL"} {
		if _, err := w.ExecContext(ctx, p); err != nil {
			w.Close()
			return nil, fmt.Errorf("sqlite: open %s: %s: %w", path, p, err)
		}
	}
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: migrate %s: %w", path, err)
	}
	if err := d.ins.prepare(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: prepare: %w", err)
	}
	if err := d.alertSt.prepare(ctx, w); err != nil {
		d.ins.close()
		w.Close()
		return nil, fmt.Errorf("sqlite: prepare: %w", err)
	}
	r, err := sql.Open("sqlite", path+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		d.ins.close()
		d.alertSt.close()
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(opts.ReadConns)
	r.SetMaxIdleConns(opts.ReadConns)
	d.r = r
	if err := d.startIndexer(ctx); err != nil {
		d.ins.close()
		d.alertSt.close()
		r.Close()
		w.Close()
		return nil, fmt.Errorf("sqlite: start the full-text indexer: %w", err)
	}
	return d, nil
}

// Close stops the full-text indexer (its progress is kept; the next Open
// resumes it) and closes both pools. It does not wait for running queries.
func (d *DB) Close() error {
	d.stopIndexer()
	d.ins.close()
	d.alertSt.close()
	return errors.Join(d.r.Close(), d.w.Close())
}

// writeTx runs fn in one write transaction (BEGIN IMMEDIATE on the single
// writer connection). When durable is set the commit is made with
// synchronous=FULL, so it is on disk when writeTx returns; otherwise with the
// connection's default synchronous=NORMAL, which in WAL mode survives a
// process crash but may lose the last commits on power loss.
func (d *DB) writeTx(ctx context.Context, durable bool, fn func(tx *sql.Tx) error) error {
	c, err := d.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if durable {
		if _, err := c.ExecContext(ctx, "PRAGMA synchronous=FULL"); err != nil {
			return err
		}
		// Reset even when ctx is cancelled: the connection is shared.
		defer c.ExecContext(context.Background(), "PRAGMA synchronous=NORMAL")
	}
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// isConstraint reports whether err is a UNIQUE, PRIMARY KEY or FOREIGN KEY
// violation.
func isConstraint(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}

// conflict maps a constraint violation to store.ErrConflict.
func conflict(what string, err error) error {
	if isConstraint(err) {
		return fmt.Errorf("%s: %w (%v)", what, store.ErrConflict, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func notFound(what string, id any) error {
	return fmt.Errorf("%s %v: %w", what, id, store.ErrNotFound)
}

// Times are stored as Unix nanoseconds (UTC); the zero time as 0.
func ts(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromTS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// affected returns the rows a statement changed.
func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
