package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/wire"
)

var _ eventstore.Store = (*DB)(nil)

// rowOverhead is added to each event's byte count for its share of integer
// columns and index entries.
const rowOverhead = 64

// eventStmts are the hot-path statements, prepared once on the writer.
type eventStmts struct {
	counter, addCounter, setCounter       *sql.Stmt
	runAt, runsIn, insBlock, insUnscanned *sql.Stmt
	unscannedIn, delUnscanned             *sql.Stmt

	runs, cats, fts multiInsert
}

func (s *eventStmts) prepare(ctx context.Context, w *sql.DB) error {
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{
		{&s.counter, `SELECT value FROM counters WHERE name = ?`},
		{&s.addCounter, `UPDATE counters SET value = value + ? WHERE name = ?`},
		{&s.setCounter, `UPDATE counters SET value = ? WHERE name = ?`},
		// The run holding sequence ?3, if any: the last run starting at or
		// before it (runs of one agent and epoch never overlap).
		{&s.runAt, `SELECT lo, hi, first_id FROM event_seqs WHERE agent_id = ? AND boot_epoch = ? AND lo <= ? ORDER BY lo DESC LIMIT 1`},
		// Every run meeting [?3, ?4]: from the run holding ?3 (or the first
		// after it) to the last one starting at or before ?4.
		{&s.runsIn, `SELECT lo, hi, first_id FROM event_seqs WHERE agent_id = ?1 AND boot_epoch = ?2 AND lo <= ?4 AND lo >= coalesce(
			(SELECT lo FROM event_seqs WHERE agent_id = ?1 AND boot_epoch = ?2 AND lo <= ?3 ORDER BY lo DESC LIMIT 1), ?3) ORDER BY lo`},
		{&s.insBlock, `INSERT INTO event_blocks(id, last_id, agent_id, host, n, min_time, max_time, bytes, categories, data)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&s.insUnscanned, `INSERT INTO unscanned(lo, hi) VALUES (?, ?)`},
		{&s.unscannedIn, `SELECT lo, hi FROM unscanned WHERE lo <= ?2 AND lo >= coalesce(
			(SELECT lo FROM unscanned WHERE lo <= ?1 ORDER BY lo DESC LIMIT 1), ?1) ORDER BY lo`},
		{&s.delUnscanned, `DELETE FROM unscanned WHERE lo = ?`},
	} {
		st, err := w.PrepareContext(ctx, p.sql)
		if err != nil {
			s.close()
			return fmt.Errorf("%s: %w", p.sql, err)
		}
		*p.st = st
	}
	for _, m := range []struct {
		m          *multiInsert
		head, tail string
		cols       int
	}{
		// No ON CONFLICT: Insert has set duplicates aside, so a second run
		// starting at a stored sequence is an error, never a silent skip.
		{&s.runs, `INSERT INTO event_seqs(agent_id, boot_epoch, lo, hi, first_id, block_id)`, "", 6},
		{&s.cats, `INSERT INTO block_categories(category, max_time, block_id)`, "", 3},
		{&s.fts, `INSERT INTO blocks_fts(rowid, text)`, "", 2},
	} {
		if err := m.m.prepare(ctx, w, m.head, m.cols, m.tail); err != nil {
			s.close()
			return err
		}
	}
	return nil
}

func (s *eventStmts) close() {
	for _, st := range []*sql.Stmt{s.counter, s.addCounter, s.setCounter, s.runAt, s.runsIn, s.insBlock,
		s.insUnscanned, s.unscannedIn, s.delUnscanned} {
		if st != nil {
			st.Close()
		}
	}
	s.runs.close()
	s.cats.close()
	s.fts.close()
}

// identity is an event's delivery identity.
type identity struct {
	agent      string
	epoch, seq uint64
}

// blockBuild collects one block: its payload and the facts its index rows
// need.
type blockBuild struct {
	w            blockWriter
	id, lastID   int64
	agent, host  string
	minT, maxT   int64
	bytes        int64
	cats         []string
	runs         []seqRun
	data, catsJS []byte
}

// builds keeps blockBuilds and their buffers for reuse.
var builds = sync.Pool{New: func() any { return new(blockBuild) }}

func (b *blockBuild) start(id int64, agent, host string) {
	b.w.reset(id)
	b.id, b.lastID, b.agent, b.host = id, id, agent, host
	b.bytes = 0
	b.cats, b.runs = b.cats[:0], b.runs[:0]
}

func (b *blockBuild) note(id int64, epoch, seq uint64, t, bytes int64, cats []string) {
	if b.w.n == 1 || t < b.minT {
		b.minT = t
	}
	if b.w.n == 1 || t > b.maxT {
		b.maxT = t
	}
	b.lastID = id
	b.bytes += bytes
	b.cats = categorySet(b.cats, cats)
	b.runs = appendRun(b.runs, epoch, seq, id)
}

func (b *blockBuild) addStored(id int64, s *eventstore.Stored) int64 {
	n := eventBytes(s.AgentID, s.Host, s.Event)
	b.w.add(id, s, n)
	b.note(id, s.BootEpoch, s.Seq, ts(s.Event.Time), n, s.Event.Categories)
	return n
}

func (b *blockBuild) addEvent(e *blockEvent) {
	b.w.addDecoded(e)
	b.note(e.id, e.bootEpoch, e.seq, e.time, e.bytes, e.cats)
}

// finish compresses the payload.
func (b *blockBuild) finish() {
	slices.Sort(b.cats)
	b.data = b.w.compress(b.data)
	b.catsJS = wire.AppendStringList(b.catsJS[:0], b.cats)
}

// putIndexRows writes the block's sequence runs and category rows.
func (d *DB) putIndexRows(ctx context.Context, tx *sql.Tx, b *blockBuild, args []any) ([]any, error) {
	args = args[:0]
	for _, r := range b.runs {
		args = append(args, b.agent, int64(r.epoch), r.lo, r.hi, r.firstID, b.id)
	}
	if err := d.ins.runs.exec(ctx, tx, args); err != nil {
		return args, fmt.Errorf("sequence runs: %w", err)
	}
	args = args[:0]
	for _, c := range b.cats {
		args = append(args, c, b.maxT, b.id)
	}
	if err := d.ins.cats.exec(ctx, tx, args); err != nil {
		return args, fmt.Errorf("categories: %w", err)
	}
	return args, nil
}

// Insert stores a batch in one transaction. See eventstore.Store.
//
// Duplicates are found before writing: within the batch with a map, and
// against stored events through the runs of stored sequence numbers
// (event_seqs), one range query per (agent, boot epoch) of the batch. The new
// events are then written as blocks, one per agent and host (at most
// maxBlockEvents each), with consecutive row ids.
func (d *DB) Insert(ctx context.Context, evs []eventstore.Stored) ([]eventstore.Inserted, error) {
	out := make([]eventstore.Inserted, len(evs))
	if len(evs) == 0 {
		return out, nil
	}
	for i := range evs {
		if s := &evs[i]; s.Event == nil {
			return nil, fmt.Errorf("sqlite: insert events: event %d of the batch (%s/%d/%d) is nil", i, s.AgentID, s.BootEpoch, s.Seq)
		}
	}
	if err := d.idx.waitLag(ctx, maxIndexLag); err != nil {
		return nil, fmt.Errorf("sqlite: insert events: waiting for the full-text indexer: %w", err)
	}
	var last int64
	err := d.writeTx(ctx, false, func(tx *sql.Tx) error {
		var next int64
		if err := tx.StmtContext(ctx, d.ins.counter).QueryRowContext(ctx, "event_next_id").Scan(&next); err != nil {
			return err
		}
		stored, err := d.storedIDs(ctx, tx, evs)
		if err != nil {
			return fmt.Errorf("look up duplicates: %w", err)
		}
		type group struct{ agent, host string }
		var order []group
		members := map[group][]int{}
		first := make(map[identity]int, len(evs)) // index of a triple's first copy in the batch
		var inBatch [][2]int                      // (duplicate, first copy)
		var dups []int                            // copies of stored events
		for i := range evs {
			s := &evs[i]
			k := identity{s.AgentID, s.BootEpoch, s.Seq}
			if j, ok := first[k]; ok {
				inBatch = append(inBatch, [2]int{i, j})
				continue
			}
			first[k] = i
			if id, ok := stored[k]; ok {
				out[i] = eventstore.Inserted{ID: id, Duplicate: true}
				dups = append(dups, i)
				continue
			}
			g := group{s.AgentID, s.Host}
			if _, ok := members[g]; !ok {
				order = append(order, g)
			}
			members[g] = append(members[g], i)
		}
		if err := d.duplicatesNeedScan(ctx, tx, out, dups); err != nil {
			return err
		}
		start := next
		var added, addedBytes int64
		b := builds.Get().(*blockBuild)
		defer builds.Put(b)
		var args []any
		insBlock := tx.StmtContext(ctx, d.ins.insBlock)
		insUnscanned := tx.StmtContext(ctx, d.ins.insUnscanned)
		for _, g := range order {
			idx := members[g]
			for len(idx) > 0 {
				chunk := idx[:min(len(idx), maxBlockEvents)]
				idx = idx[len(chunk):]
				b.start(next, g.agent, g.host)
				for _, i := range chunk {
					b.addStored(next, &evs[i])
					out[i] = eventstore.Inserted{ID: next, NeedsScan: true}
					next++
				}
				b.finish()
				if _, err := insBlock.ExecContext(ctx, b.id, b.lastID, b.agent, b.host, len(chunk),
					b.minT, b.maxT, b.bytes, string(b.catsJS), b.data); err != nil {
					return fmt.Errorf("block: %w", err)
				}
				if args, err = d.putIndexRows(ctx, tx, b, args); err != nil {
					return err
				}
				if _, err := insUnscanned.ExecContext(ctx, b.id, b.lastID); err != nil {
					return fmt.Errorf("unscanned: %w", err)
				}
				addedBytes += b.bytes
			}
		}
		for _, p := range inBatch {
			out[p[0]] = out[p[1]]
			out[p[0]].Duplicate = true
		}
		added = next - start
		if added == 0 {
			return nil
		}
		last = next - 1
		return addCounters(ctx, tx.StmtContext(ctx, d.ins.addCounter), added, addedBytes, added)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: insert events: %w", err)
	}
	if last != 0 {
		d.idx.committedUpTo(last)
	}
	return out, nil
}

// duplicatesNeedScan sets NeedsScan on the results at idx (copies of stored
// events) whose row id is still in the unscanned table.
func (d *DB) duplicatesNeedScan(ctx context.Context, tx *sql.Tx, out []eventstore.Inserted, idx []int) error {
	if len(idx) == 0 {
		return nil
	}
	lo, hi := out[idx[0]].ID, out[idx[0]].ID
	for _, i := range idx {
		lo, hi = min(lo, out[i].ID), max(hi, out[i].ID)
	}
	spans, err := d.unscannedSpans(ctx, tx, lo, hi)
	if err != nil {
		return fmt.Errorf("look up unscanned duplicates: %w", err)
	}
	for _, i := range idx {
		id := out[i].ID
		k := sort.Search(len(spans), func(k int) bool { return spans[k][1] >= id })
		out[i].NeedsScan = k < len(spans) && spans[k][0] <= id
	}
	return nil
}

// unscannedSpans returns the unscanned id ranges meeting [lo, hi], in order.
func (d *DB) unscannedSpans(ctx context.Context, tx *sql.Tx, lo, hi int64) ([][2]int64, error) {
	rows, err := tx.StmtContext(ctx, d.ins.unscannedIn).QueryContext(ctx, lo, hi)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][2]int64
	for rows.Next() {
		var s [2]int64
		if err := rows.Scan(&s[0], &s[1]); err != nil {
			return nil, err
		}
		if s[1] >= lo {
			out = append(out, s)
		}
	}
	return out, rows.Err()
}

// clearUnscanned removes the ids lo..hi from the unscanned ranges, splitting
// a range that covers more.
func (d *DB) clearUnscanned(ctx context.Context, tx *sql.Tx, lo, hi int64) error {
	spans, err := d.unscannedSpans(ctx, tx, lo, hi)
	if err != nil {
		return err
	}
	del, ins := tx.StmtContext(ctx, d.ins.delUnscanned), tx.StmtContext(ctx, d.ins.insUnscanned)
	for _, s := range spans {
		if _, err := del.ExecContext(ctx, s[0]); err != nil {
			return err
		}
		if s[0] < lo {
			if _, err := ins.ExecContext(ctx, s[0], lo-1); err != nil {
				return err
			}
		}
		if s[1] > hi {
			if _, err := ins.ExecContext(ctx, hi+1, s[1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// storedIDs returns the row ids of the batch's triples that are already
// stored. Sequence numbers are compared as the stored int64 bits: the
// range [min, max] of those covers every sequence of the group.
func (d *DB) storedIDs(ctx context.Context, tx *sql.Tx, evs []eventstore.Stored) (map[identity]int64, error) {
	type group struct {
		agent string
		epoch uint64
	}
	type span struct {
		lo, hi int64
		idx    []int
	}
	spans := map[group]*span{}
	for i := range evs {
		g := group{evs[i].AgentID, evs[i].BootEpoch}
		q := int64(evs[i].Seq)
		if sp := spans[g]; sp != nil {
			sp.lo, sp.hi, sp.idx = min(sp.lo, q), max(sp.hi, q), append(sp.idx, i)
		} else {
			spans[g] = &span{q, q, []int{i}}
		}
	}
	found := map[identity]int64{}
	readRuns := func(st *sql.Stmt, args ...any) ([]seqRun, error) {
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var runs []seqRun
		for rows.Next() {
			var r seqRun
			if err := rows.Scan(&r.lo, &r.hi, &r.firstID); err != nil {
				return nil, err
			}
			runs = append(runs, r)
		}
		return runs, rows.Err()
	}
	in := tx.StmtContext(ctx, d.ins.runsIn)
	at := tx.StmtContext(ctx, d.ins.runAt)
	for g, sp := range spans {
		// A dense range is one index scan; a sparse one (sequences far
		// apart) could read many runs between them, so look each up.
		if uint64(sp.hi-sp.lo) <= uint64(4*len(sp.idx)+1024) {
			runs, err := readRuns(in, g.agent, int64(g.epoch), sp.lo, sp.hi)
			if err != nil {
				return nil, err
			}
			if len(runs) == 0 {
				continue
			}
			for _, i := range sp.idx {
				q := int64(evs[i].Seq)
				k := sort.Search(len(runs), func(k int) bool { return runs[k].hi >= q })
				if k < len(runs) && runs[k].lo <= q {
					found[identity{g.agent, g.epoch, evs[i].Seq}] = runs[k].firstID + (q - runs[k].lo)
				}
			}
			continue
		}
		for _, i := range sp.idx {
			q := int64(evs[i].Seq)
			runs, err := readRuns(at, g.agent, int64(g.epoch), q)
			if err != nil {
				return nil, err
			}
			if len(runs) == 1 && runs[0].hi >= q {
				found[identity{g.agent, g.epoch, evs[i].Seq}] = runs[0].firstID + (q - runs[0].lo)
			}
		}
	}
	return found, nil
}

// addCounters adds to the event count, bytes and next id.
func addCounters(ctx context.Context, st *sql.Stmt, count, bytes, nextID int64) error {
	for _, c := range []struct {
		name string
		n    int64
	}{{"event_count", count}, {"event_bytes", bytes}, {"event_next_id", nextID}} {
		if c.n == 0 {
			continue
		}
		if _, err := st.ExecContext(ctx, c.n, c.name); err != nil {
			return err
		}
	}
	return nil
}

// MarkScanned records that detection finished for the events. Unknown ids are
// ignored. Runs of consecutive ids (a whole batch, usually) are cleared by
// range. It commits with synchronous=FULL: the WAL is one file written in
// order, so its fsync also puts the batch's Insert (committed with NORMAL)
// on disk before the detection worker acknowledges the bus. One fsync per
// handled batch group instead of one per write.
func (d *DB) MarkScanned(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	err := d.writeTx(ctx, true, func(tx *sql.Tx) error {
		for i := 0; i < len(sorted); {
			j := i + 1
			for j < len(sorted) && sorted[j] <= sorted[j-1]+1 {
				j++
			}
			if err := d.clearUnscanned(ctx, tx, sorted[i], sorted[j-1]); err != nil {
				return err
			}
			i = j
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: mark scanned: %w", err)
	}
	return nil
}

// blockRow is an event_blocks row without its payload.
type blockRow struct {
	id, lastID  int64
	agent, host string
	n           int64
	minT, maxT  int64
	bytes       int64
	cats        string
}

// event finds event id in the block holding it.
func (d *DB) event(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id int64) (blockEvent, blockRow, error) {
	var b blockRow
	var data []byte
	err := q.QueryRowContext(ctx, `SELECT id, last_id, agent_id, host, data FROM event_blocks WHERE id <= ? ORDER BY id DESC LIMIT 1`, id).
		Scan(&b.id, &b.lastID, &b.agent, &b.host, &data)
	if errors.Is(err, sql.ErrNoRows) || err == nil && b.lastID < id {
		return blockEvent{}, b, notFound("sqlite: event", id)
	}
	if err != nil {
		return blockEvent{}, b, err
	}
	r, err := decodeBlock(b.id, data)
	if err != nil {
		return blockEvent{}, b, err
	}
	var e blockEvent
	for r.next(&e) {
		if e.id == id {
			return e, b, nil
		}
	}
	if r.err != nil {
		return blockEvent{}, b, r.err
	}
	return blockEvent{}, b, notFound("sqlite: event", id)
}

// Get returns one event by row id.
func (d *DB) Get(ctx context.Context, id int64) (eventstore.Record, error) {
	e, b, err := d.event(ctx, d.r, id)
	if err != nil {
		return eventstore.Record{}, fmt.Errorf("sqlite: get event %d: %w", id, err)
	}
	return e.record(b.agent, b.host), nil
}

// Stats reports the stored event count and bytes (the sum of each event's
// retention size, kept in the counters table).
func (d *DB) Stats(ctx context.Context) (count, bytes int64, err error) {
	err = d.r.QueryRowContext(ctx,
		`SELECT (SELECT value FROM counters WHERE name = 'event_count'), (SELECT value FROM counters WHERE name = 'event_bytes')`).
		Scan(&count, &bytes)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: stats: %w", err)
	}
	return count, bytes, nil
}

// parseCats reads a block's categories column.
func parseCats(s string) ([]string, error) {
	var cats []string
	if err := json.Unmarshal([]byte(s), &cats); err != nil {
		return nil, fmt.Errorf("block categories: %w", err)
	}
	return cats, nil
}
