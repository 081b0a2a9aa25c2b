package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/vigil-edr/vigil/internal/event"
)

// convertRowEvents is the Go half of migration 7: it moves the events of
// schema versions 3 to 6 (one row per event in events, with event_categories,
// events_unscanned and events_fts beside it) into blocks, keeping every row
// id, and drops the old tables. Consecutive rows (by id) of one agent and
// host form a block, so block id ranges do not overlap. The new full-text
// mark is 0: the indexer indexes the converted blocks after Open.
func convertRowEvents(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, agent_id, boot_epoch, seq, host, time, product, services, categories, fields, bytes FROM events ORDER BY id`)
	if err != nil {
		return err
	}
	var b blockBuild
	var cur []blockEvent
	var agent, host string
	flush := func() error {
		if len(cur) == 0 {
			return nil
		}
		b.start(cur[0].id, agent, host)
		for i := range cur {
			b.addEvent(&cur[i])
		}
		b.finish()
		if _, err := tx.ExecContext(ctx, `INSERT INTO event_blocks(id, last_id, agent_id, host, n, min_time, max_time, bytes, categories, data)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, b.id, b.lastID, agent, host, len(cur), b.minT, b.maxT, b.bytes, string(b.catsJS), b.data); err != nil {
			return err
		}
		for _, r := range b.runs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO event_seqs(agent_id, boot_epoch, lo, hi, first_id, block_id) VALUES (?, ?, ?, ?, ?, ?)`,
				agent, int64(r.epoch), r.lo, r.hi, r.firstID, b.id); err != nil {
				return err
			}
		}
		for _, c := range b.cats {
			if _, err := tx.ExecContext(ctx, `INSERT INTO block_categories(category, max_time, block_id) VALUES (?, ?, ?)`, c, b.maxT, b.id); err != nil {
				return err
			}
		}
		cur = cur[:0]
		return nil
	}
	for rows.Next() {
		var e blockEvent
		var a, h, services, categories, fields string
		var epoch, seq int64
		if err := rows.Scan(&e.id, &a, &epoch, &seq, &h, &e.time, &e.product, &services, &categories, &fields, &e.bytes); err != nil {
			rows.Close()
			return err
		}
		e.bootEpoch, e.seq = uint64(epoch), uint64(seq)
		var pairs [][2]string
		if json.Unmarshal([]byte(services), &e.services) != nil || json.Unmarshal([]byte(categories), &e.cats) != nil ||
			json.Unmarshal([]byte(fields), &pairs) != nil {
			rows.Close()
			return fmt.Errorf("event %d: undecodable columns", e.id)
		}
		for _, p := range pairs {
			e.fields = append(e.fields, event.Field{Name: p[0], Value: p[1]})
		}
		if len(cur) > 0 && (a != agent || h != host || len(cur) == maxBlockEvents) {
			if err := flush(); err != nil {
				rows.Close()
				return err
			}
		}
		agent, host = a, h
		cur = append(cur, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	// Unscanned ids become ranges.
	_, err = tx.ExecContext(ctx, `
INSERT INTO unscanned(lo, hi)
	SELECT min(id), max(id) FROM (SELECT id, id - row_number() OVER (ORDER BY id) AS grp FROM events_unscanned) GROUP BY grp;
DROP TABLE events_fts;
DROP TABLE event_categories;
DROP TABLE events_unscanned;
DROP TABLE events;
`)
	return err
}
