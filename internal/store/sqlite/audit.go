package sqlite

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
)

// SeqAudit is what is stored for one agent: every row's sequence number, to
// check delivery against what the agent had acknowledged.
type SeqAudit struct {
	Rows     int64    // stored rows
	Distinct int64    // distinct (boot epoch, sequence) pairs
	Seqs     []uint64 // distinct sequence numbers, sorted
}

// DistinctUpTo counts the distinct stored sequence numbers in 1..n.
func (a SeqAudit) DistinctUpTo(n uint64) int64 {
	return int64(sort.Search(len(a.Seqs), func(i int) bool { return a.Seqs[i] > n }))
}

// SequenceAudit reads, per agent, which sequence numbers are stored and how
// often. It decodes every stored block: for tests and benchmarks, not for
// the request path.
func (db *DB) SequenceAudit(ctx context.Context) (map[string]SeqAudit, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, agent_id, data FROM event_blocks`)
	if err != nil {
		return nil, fmt.Errorf("sequence audit: %w", err)
	}
	defer rows.Close()
	type key struct{ epoch, seq uint64 }
	all := map[string][]key{}
	for rows.Next() {
		var id int64
		var agent string
		var data []byte
		if err := rows.Scan(&id, &agent, &data); err != nil {
			return nil, fmt.Errorf("sequence audit: %w", err)
		}
		r, err := decodeBlock(id, data)
		if err != nil {
			return nil, fmt.Errorf("sequence audit: %w", err)
		}
		ks := all[agent]
		var e blockEvent
		for r.next(&e) {
			ks = append(ks, key{e.bootEpoch, e.seq})
		}
		if r.err != nil {
			return nil, fmt.Errorf("sequence audit: %w", r.err)
		}
		all[agent] = ks
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sequence audit: %w", err)
	}
	out := map[string]SeqAudit{}
	for agent, ks := range all {
		slices.SortFunc(ks, func(a, b key) int {
			if a.epoch != b.epoch {
				return cmp.Compare(a.epoch, b.epoch)
			}
			return cmp.Compare(a.seq, b.seq)
		})
		a := SeqAudit{Rows: int64(len(ks))}
		for i, k := range ks {
			if i == 0 || k != ks[i-1] {
				a.Distinct++
				a.Seqs = append(a.Seqs, k.seq)
			}
		}
		slices.Sort(a.Seqs)
		a.Seqs = slices.Compact(a.Seqs)
		out[agent] = a
	}
	return out, nil
}
