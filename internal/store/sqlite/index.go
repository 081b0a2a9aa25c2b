package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Full-text indexing runs behind the commit path. Insert stores events and
// kicks the indexer goroutine (started by Open, stopped by Close), which reads
// the events after the persisted high-water mark (counter fts_indexed: every
// event id ≤ it belongs to a block in blocks_fts or has expired) block by
// block in id order and, in one write transaction, tokenizes them in Go, adds
// one row per block to blocks_fts and advances the mark. A crash loses no
// indexing: the mark and the index rows commit together, and on Open the
// indexer resumes from the mark.
//
// Lag is bounded two ways: the indexer starts a round as soon as an Insert
// commits (typically tens to hundreds of milliseconds behind), and Insert
// waits while more than maxIndexLag committed events are not indexed, so a
// slow indexer slows ingest instead of falling behind without limit. Search
// with Text or field filters first waits (at most searchIndexWait) until the
// events committed before the call are indexed, so a caller that inserts and
// then searches finds its events.

const (
	// indexRoundBlocks is the most blocks one indexing transaction adds
	// (up to 16 × maxBlockEvents events).
	indexRoundBlocks = 16
	// maxIndexLag is how many committed events may wait for indexing before
	// Insert waits for the indexer.
	maxIndexLag = 200000
	// searchIndexWait bounds how long Search waits for the index to cover
	// events committed before it was called; after that it searches what is
	// indexed.
	searchIndexWait = 5 * time.Second
	// indexRetry is how soon a failed round is tried again.
	indexRetry = time.Second
)

// indexer is the state shared by the indexer goroutine, Insert and Search.
type indexer struct {
	kick chan struct{} // capacity 1: "events were committed"
	stop context.CancelFunc
	done chan struct{}

	mu        sync.Mutex
	committed int64         // highest committed event id (in memory)
	indexed   int64         // the persisted high-water mark
	since     time.Time     // when the oldest unindexed event was committed (zero: none)
	err       error         // the last round's error, nil after a successful one
	changed   chan struct{} // closed and replaced whenever indexed or err changes
	paused    bool          // tests: rounds are skipped
}

// startIndexer reads the high-water mark and starts the goroutine.
func (d *DB) startIndexer(ctx context.Context) error {
	var indexed, next int64
	err := d.w.QueryRowContext(ctx, `SELECT
		(SELECT value FROM counters WHERE name = 'fts_indexed'),
		(SELECT value FROM counters WHERE name = 'event_next_id')`).Scan(&indexed, &next)
	if err != nil {
		return err
	}
	ix := &indexer{kick: make(chan struct{}, 1), done: make(chan struct{}),
		committed: next - 1, indexed: indexed, changed: make(chan struct{})}
	if ix.committed > ix.indexed {
		ix.since = time.Now()
	}
	var run context.Context
	run, ix.stop = context.WithCancel(context.Background())
	d.idx = ix
	go d.indexLoop(run)
	ix.poke()
	return nil
}

// stopIndexer stops the goroutine and waits for it; a round in progress is
// rolled back.
func (d *DB) stopIndexer() {
	if d.idx != nil {
		d.idx.stop()
		<-d.idx.done
	}
}

func (ix *indexer) poke() {
	select {
	case ix.kick <- struct{}{}:
	default:
	}
}

// committedUpTo records that events up to id are committed.
func (ix *indexer) committedUpTo(id int64) {
	ix.mu.Lock()
	if id > ix.committed {
		if ix.committed <= ix.indexed {
			ix.since = time.Now()
		}
		ix.committed = id
	}
	ix.mu.Unlock()
	ix.poke()
}

func (d *DB) indexLoop(ctx context.Context) {
	defer close(d.idx.done)
	ix := d.idx
	var w indexWork
	w.init()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ix.kick:
		}
		for {
			more, err := d.indexRound(ctx, &w)
			if ctx.Err() != nil {
				return
			}
			ix.mu.Lock()
			ix.err = err
			ix.broadcast()
			ix.mu.Unlock()
			if err != nil {
				// Try again later; Insert keeps kicking too.
				time.AfterFunc(indexRetry, ix.poke)
				break
			}
			if !more {
				break
			}
		}
	}
}

// broadcast wakes the waiters; ix.mu must be held.
func (ix *indexer) broadcast() {
	close(ix.changed)
	ix.changed = make(chan struct{})
}

// indexWork holds the buffers one indexing round reuses.
type indexWork struct {
	text     []byte
	raw      []byte // a decompressed block
	z        tokenizer
	args     []any
	addValue func(v string) // appends v's new tokens to text
}

func (w *indexWork) init() {
	w.addValue = func(v string) { w.text = w.z.appendTokens(w.text, v) }
}

// indexRound indexes up to indexRoundBlocks blocks after the mark. more
// reports that blocks may remain.
func (d *DB) indexRound(ctx context.Context, w *indexWork) (more bool, err error) {
	ix := d.idx
	ix.mu.Lock()
	lo, hi, paused := ix.indexed, ix.committed, ix.paused
	ix.mu.Unlock()
	if paused || hi <= lo {
		return false, nil
	}
	// Reading on the writer, inside the transaction, finds the pages in
	// its cache (Insert just wrote them) and sees exactly the blocks that
	// exist: expired ones are simply not read.
	var mark int64
	err = d.writeTx(ctx, false, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, last_id, data FROM event_blocks WHERE id > ? AND id <= ? ORDER BY id LIMIT ?`, lo, hi, indexRoundBlocks)
		if err != nil {
			return err
		}
		w.args = w.args[:0]
		n := 0
		var lastID int64
		for rows.Next() {
			var id int64
			var data sql.RawBytes
			if err := rows.Scan(&id, &lastID, &data); err != nil {
				rows.Close()
				return err
			}
			var r *blockReader
			r, w.raw, err = decodeBlockInto(id, data, w.raw)
			if err != nil {
				rows.Close()
				return err
			}
			// The block's text: the distinct tokens of all its events.
			w.text = w.text[:0]
			w.z.reset()
			if err := r.values(w.addValue); err != nil {
				rows.Close()
				return err
			}
			w.args = append(w.args, id, string(w.text))
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// The mark moves past the last block read, or to hi when the rest
		// of the range has expired.
		mark = hi
		if n == indexRoundBlocks {
			mark = lastID
		}
		if err := d.ins.fts.exec(ctx, tx, w.args); err != nil {
			return err
		}
		_, err = tx.StmtContext(ctx, d.ins.setCounter).ExecContext(ctx, mark, "fts_indexed")
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: index: %w", err)
	}
	ix.mu.Lock()
	ix.indexed = mark
	if ix.indexed >= ix.committed {
		ix.since = time.Time{}
	}
	more = ix.committed > ix.indexed
	ix.mu.Unlock()
	return more, nil
}

// waitIndexed waits until every event up to id is indexed or ctx ends. It
// returns the indexer's error when a round failed after the call began.
func (ix *indexer) waitIndexed(ctx context.Context, id int64) error {
	for {
		ix.mu.Lock()
		done, err, ch := ix.indexed >= id, ix.err, ix.changed
		ix.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return errors.Join(ctx.Err(), err)
			}
			return ctx.Err()
		case <-ch:
		}
	}
}

// waitLag waits while more than max committed events are unindexed.
func (ix *indexer) waitLag(ctx context.Context, max int64) error {
	ix.mu.Lock()
	target := ix.committed - max
	ix.mu.Unlock()
	return ix.waitIndexed(ctx, target)
}

// WaitIndexed waits until every event committed before the call is in the
// full-text index, or ctx ends.
func (d *DB) WaitIndexed(ctx context.Context) error {
	d.idx.mu.Lock()
	target := d.idx.committed
	d.idx.mu.Unlock()
	if err := d.idx.waitIndexed(ctx, target); err != nil {
		return fmt.Errorf("sqlite: wait for the full-text index: %w", err)
	}
	return nil
}

// IndexLag reports how many committed events are not yet in the full-text
// index, how long ago the oldest of them was committed (zero when none are
// waiting; measured from Open for events left by a previous run), and the
// last indexing error (nil while indexing succeeds).
func (d *DB) IndexLag() (events int64, age time.Duration, err error) {
	d.idx.mu.Lock()
	defer d.idx.mu.Unlock()
	events = max(d.idx.committed-d.idx.indexed, 0)
	if events > 0 && !d.idx.since.IsZero() {
		age = time.Since(d.idx.since)
	}
	return events, age, d.idx.err
}
