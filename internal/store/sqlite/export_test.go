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
