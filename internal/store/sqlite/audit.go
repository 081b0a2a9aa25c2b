package sqlite

import (
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
// often. It scans the whole events table: for tests and benchmarks, not for
// the request path.
func (db *DB) SequenceAudit(ctx context.Context) (map[string]SeqAudit, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT agent_id, boot_epoch, seq FROM events ORDER BY agent_id, boot_epoch, seq`)
	if err != nil {
		return nil, fmt.Errorf("sequence audit: %w", err)
	}
	defer rows.Close()
	out := map[string]SeqAudit{}
	var lastAgent string
	var lastEpoch, lastSeq uint64
	first := true
	for rows.Next() {
		var agent string
		var e, s int64 // uint64 stored as the same bits (schema.md)
		if err := rows.Scan(&agent, &e, &s); err != nil {
			return nil, err
		}
		epoch, seq := uint64(e), uint64(s)
		a := out[agent]
		a.Rows++
		if first || agent != lastAgent || epoch != lastEpoch || seq != lastSeq {
			a.Distinct++
			if n := len(a.Seqs); n == 0 || a.Seqs[n-1] != seq {
				a.Seqs = append(a.Seqs, seq)
			}
		}
		out[agent] = a
		lastAgent, lastEpoch, lastSeq, first = agent, epoch, seq, false
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Rows come in stored (int64) order and restart with each boot epoch.
	for agent, a := range out {
		slices.Sort(a.Seqs)
		a.Seqs = slices.Compact(a.Seqs)
		out[agent] = a
	}
	return out, nil
}
