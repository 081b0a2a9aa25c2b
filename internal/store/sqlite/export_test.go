package sqlite

import "context"

// PauseIndexer stops (true) or resumes (false) full-text indexing rounds, so
// tests can act on events that are committed but not yet indexed.
func (d *DB) PauseIndexer(p bool) {
	d.idx.mu.Lock()
	d.idx.paused = p
	d.idx.mu.Unlock()
	if !p {
		d.idx.poke()
	}
}

// FTSMatch returns the block ids in blocks_fts matching the FTS5 expression.
func (d *DB) FTSMatch(ctx context.Context, match string) ([]int64, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT rowid FROM blocks_fts WHERE blocks_fts MATCH ? ORDER BY rowid`, match)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// Plan returns the details of EXPLAIN QUERY PLAN for q, one line each.
func (d *DB) Plan(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := d.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			return nil, err
		}
		out = append(out, detail)
	}
	return out, rows.Err()
}
