package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/vigil-edr/vigil/internal/eventstore"
)

// expireBlocks is how many blocks one Expire transaction handles at most, so
// the writer is never held for long.
const expireBlocks = 64

// Expire deletes events older than r.MaxAge (by event time) and then the
// oldest events until the stored bytes are at most r.MaxBytes. Zero fields
// do not limit.
//
// Whole blocks go without being read; a block holding both expired and kept
// events is rewritten with the kept ones (same block id, same row ids).
func (d *DB) Expire(ctx context.Context, r eventstore.Retention, now time.Time) (int64, error) {
	var total int64
	if r.MaxAge > 0 {
		cutoff := now.Add(-r.MaxAge).UnixNano()
		for {
			n, more, err := d.expireAge(ctx, cutoff)
			total += n
			if err != nil {
				return total, fmt.Errorf("sqlite: expire by age: %w", err)
			}
			if !more {
				break
			}
		}
	}
	if r.MaxBytes > 0 {
		for {
			_, bytes, err := d.Stats(ctx)
			if err != nil {
				return total, err
			}
			if bytes <= r.MaxBytes {
				break
			}
			n, err := d.expireOldest(ctx, bytes-r.MaxBytes)
			total += n
			if err != nil {
				return total, fmt.Errorf("sqlite: expire by size: %w", err)
			}
			if n == 0 {
				break
			}
		}
	}
	return total, nil
}

func scanBlockRow(rows *sql.Rows) (blockRow, error) {
	var b blockRow
	err := rows.Scan(&b.id, &b.lastID, &b.agent, &b.host, &b.n, &b.minT, &b.maxT, &b.bytes, &b.cats)
	return b, err
}

const blockRowCols = `id, last_id, agent_id, host, n, min_time, max_time, bytes, categories`

// expireAge deletes, in one transaction, the events older than cutoff from
// up to expireBlocks blocks. more reports that further blocks may hold some.
func (d *DB) expireAge(ctx context.Context, cutoff int64) (n int64, more bool, err error) {
	err = d.writeTx(ctx, false, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+blockRowCols+` FROM event_blocks WHERE min_time < ? ORDER BY min_time, id LIMIT ?`, cutoff, expireBlocks)
		if err != nil {
			return err
		}
		var bs []blockRow
		for rows.Next() {
			b, err := scanBlockRow(rows)
			if err != nil {
				rows.Close()
				return err
			}
			bs = append(bs, b)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		more = len(bs) == expireBlocks
		indexed, err := d.indexedMark(ctx, tx)
		if err != nil {
			return err
		}
		for _, b := range bs {
			if b.maxT < cutoff {
				if err := d.deleteBlock(ctx, tx, b, indexed); err != nil {
					return err
				}
				n += b.n
				continue
			}
			evs, err := d.readBlock(ctx, tx, b.id)
			if err != nil {
				return err
			}
			keep := slices.DeleteFunc(slices.Clone(evs), func(e blockEvent) bool { return e.time < cutoff })
			gone, err := d.rewriteBlock(ctx, tx, b, evs, keep, indexed)
			if err != nil {
				return err
			}
			n += gone
		}
		return nil
	})
	return n, more, err
}

// expireOldest deletes at least one event, oldest (time, id) first, and
// stops once excess bytes are freed or the oldest block has nothing older
// than the next block's start.
func (d *DB) expireOldest(ctx context.Context, excess int64) (int64, error) {
	var n int64
	err := d.writeTx(ctx, false, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+blockRowCols+` FROM event_blocks ORDER BY min_time, id LIMIT 2`)
		if err != nil {
			return err
		}
		var bs []blockRow
		for rows.Next() {
			b, err := scanBlockRow(rows)
			if err != nil {
				rows.Close()
				return err
			}
			bs = append(bs, b)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(bs) == 0 {
			return nil
		}
		a := bs[0]
		// Events of a sort before every event of the other blocks while
		// (time, id) < bound: the next block starts at (min_time, id) or
		// later, and block id ranges do not overlap.
		boundT, boundID := int64(1<<63-1), int64(1<<63-1)
		if len(bs) == 2 {
			boundT, boundID = bs[1].minT, bs[1].id
		}
		indexed, err := d.indexedMark(ctx, tx)
		if err != nil {
			return err
		}
		if a.maxT < boundT && a.bytes <= excess {
			n = a.n
			return d.deleteBlock(ctx, tx, a, indexed)
		}
		evs, err := d.readBlock(ctx, tx, a.id)
		if err != nil {
			return err
		}
		byAge := slices.Clone(evs)
		slices.SortFunc(byAge, func(x, y blockEvent) int {
			if x.time != y.time {
				return cmpInt(x.time, y.time)
			}
			return cmpInt(x.id, y.id)
		})
		var freed int64
		drop := map[int64]bool{}
		for _, e := range byAge {
			if freed >= excess || len(drop) > 0 && (e.time > boundT || e.time == boundT && e.id > boundID) {
				break
			}
			drop[e.id] = true
			freed += e.bytes
		}
		keep := slices.DeleteFunc(slices.Clone(evs), func(e blockEvent) bool { return drop[e.id] })
		n, err = d.rewriteBlock(ctx, tx, a, evs, keep, indexed)
		return err
	})
	return n, err
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// indexedMark reads the full-text high-water mark in tx.
func (d *DB) indexedMark(ctx context.Context, tx *sql.Tx) (int64, error) {
	var indexed int64
	err := tx.StmtContext(ctx, d.ins.counter).QueryRowContext(ctx, "fts_indexed").Scan(&indexed)
	return indexed, err
}

// readBlock decodes every event of block id.
func (d *DB) readBlock(ctx context.Context, tx *sql.Tx, id int64) ([]blockEvent, error) {
	var data []byte
	if err := tx.QueryRowContext(ctx, `SELECT data FROM event_blocks WHERE id = ?`, id).Scan(&data); err != nil {
		return nil, err
	}
	r, err := decodeBlock(id, data)
	if err != nil {
		return nil, err
	}
	return r.all()
}

// deleteBlock removes a block with everything pointing at it: its category
// and sequence rows, its unscanned ids, its full-text row (when indexed:
// block id ≤ the mark) and its share of the counters.
func (d *DB) deleteBlock(ctx context.Context, tx *sql.Tx, b blockRow, indexed int64) error {
	if err := d.dropIndexRows(ctx, tx, b); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM event_blocks WHERE id = ?`, b.id); err != nil {
		return err
	}
	if b.id <= indexed {
		if _, err := tx.ExecContext(ctx, `DELETE FROM blocks_fts WHERE rowid = ?`, b.id); err != nil {
			return err
		}
	}
	if err := d.clearUnscanned(ctx, tx, b.id, b.lastID); err != nil {
		return err
	}
	return addCounters(ctx, tx.StmtContext(ctx, d.ins.addCounter), -b.n, -b.bytes, 0)
}

// dropIndexRows deletes the block's category and sequence rows.
func (d *DB) dropIndexRows(ctx context.Context, tx *sql.Tx, b blockRow) error {
	cats, err := parseCats(b.cats)
	if err != nil {
		return fmt.Errorf("block %d: %w", b.id, err)
	}
	for _, c := range cats {
		if _, err := tx.ExecContext(ctx, `DELETE FROM block_categories WHERE category = ? AND max_time = ? AND block_id = ?`, c, b.maxT, b.id); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM event_seqs WHERE block_id = ?`, b.id)
	return err
}

// rewriteBlock replaces block b (whose events are all) by the events keep,
// a subsequence of all; with none kept the block is deleted. It returns how
// many events went. The full-text row stays as it is: it may then list
// tokens of removed events, which Search's per-event check ignores.
func (d *DB) rewriteBlock(ctx context.Context, tx *sql.Tx, b blockRow, all, keep []blockEvent, indexed int64) (int64, error) {
	gone := int64(len(all) - len(keep))
	if gone == 0 {
		return 0, nil
	}
	if len(keep) == 0 {
		return gone, d.deleteBlock(ctx, tx, b, indexed)
	}
	if err := d.dropIndexRows(ctx, tx, b); err != nil {
		return 0, err
	}
	var nb blockBuild
	nb.start(b.id, b.agent, b.host)
	for i := range keep {
		nb.addEvent(&keep[i])
	}
	nb.lastID = b.lastID // the id range stays reserved
	nb.finish()
	if _, err := tx.ExecContext(ctx, `UPDATE event_blocks SET n = ?, min_time = ?, max_time = ?, bytes = ?, categories = ?, data = ? WHERE id = ?`,
		len(keep), nb.minT, nb.maxT, nb.bytes, string(nb.catsJS), nb.data, b.id); err != nil {
		return 0, err
	}
	if _, err := d.putIndexRows(ctx, tx, &nb, nil); err != nil {
		return 0, err
	}
	// Clear the removed ids from the unscanned ranges, run by run.
	kept := map[int64]bool{}
	for _, e := range keep {
		kept[e.id] = true
	}
	for i := 0; i < len(all); {
		if kept[all[i].id] {
			i++
			continue
		}
		j := i + 1
		for j < len(all) && !kept[all[j].id] {
			j++
		}
		if err := d.clearUnscanned(ctx, tx, all[i].id, all[j-1].id); err != nil {
			return 0, err
		}
		i = j
	}
	return gone, addCounters(ctx, tx.StmtContext(ctx, d.ins.addCounter), -gone, -(b.bytes - nb.bytes), 0)
}
