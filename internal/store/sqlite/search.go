package sqlite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/store"
)

// Search returns events matching q, newest (by event time, then row id)
// first. From is inclusive, To exclusive. Text matches events holding every
// token of it in some field value (see fts.go); FTS5 operators in it have no
// effect. Field filters compare names and values case-insensitively (ASCII).
//
// SQL selects the candidate blocks (by host, agent, category, time bounds
// and, for text and field filters, the block-level full-text index), newest
// block end first; each candidate is decoded and every event checked
// against the whole query. The walk stops once a full page is held and the
// next block ends before the page's oldest event.
func (d *DB) Search(ctx context.Context, q eventstore.Query) ([]eventstore.Record, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)

	var where []string
	var args []any
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	from, order := "event_blocks b", "b.max_time DESC, b.id DESC"
	maxCol := "b.max_time"
	if q.Category != "" {
		from, order, maxCol = "block_categories c JOIN event_blocks b ON b.id = c.block_id", "c.max_time DESC, c.block_id DESC", "c.max_time"
		add("c.category = ?", q.Category)
	}
	if q.Host != "" {
		add("b.host = ?", q.Host)
	}
	if q.AgentID != "" {
		add("b.agent_id = ?", q.AgentID)
	}
	var fromT, toT int64
	if !q.From.IsZero() {
		fromT = ts(q.From)
		add(maxCol+" >= ?", fromT)
	}
	if !q.To.IsZero() {
		toT = ts(q.To)
		add("b.min_time < ?", toT)
	}
	var beforeT int64
	if q.Before != 0 {
		e, _, err := d.event(ctx, d.r, q.Before)
		if errors.Is(err, store.ErrNotFound) {
			// Expiry deletes in (time, id) order: nothing older is left.
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: search: %w", err)
		}
		beforeT = e.time
		add("b.min_time <= ?", beforeT)
	}
	if q.Text != "" || len(q.Fields) > 0 {
		// Both use the full-text index: let it catch up with what was
		// committed before this call (bounded; see index.go).
		wctx, cancel := context.WithTimeout(ctx, searchIndexWait)
		err := d.WaitIndexed(wctx)
		cancel()
		if err != nil && ctx.Err() != nil {
			return nil, fmt.Errorf("sqlite: search: %w", ctx.Err())
		}
	}
	var match []string
	var textToks []string
	if q.Text != "" {
		m := ftsQuery(q.Text)
		if m == "" {
			return nil, nil // no token: nothing can match
		}
		match = append(match, m)
		textToks = queryTokens(q.Text)
	}
	for _, f := range q.Fields {
		// The value's tokens narrow the candidate blocks through the
		// index; each event is then checked for the exact field.
		if m := ftsQuery(f.Value); m != "" {
			match = append(match, m)
		}
	}
	if len(match) > 0 {
		add("b.id IN (SELECT rowid FROM blocks_fts WHERE blocks_fts MATCH ?)", strings.Join(match, " "))
	}
	var sb strings.Builder
	// With the full-text index, SQLite finds the candidate blocks by id
	// and sorts them by time in a temporary b-tree; the payloads are then
	// read one block at a time as the walk reaches them, on the same
	// connection (so in the same read snapshot), instead of copying every
	// candidate's payload into the sorter.
	lazy := len(match) > 0
	cols := "b.id, b.agent_id, b.host, " + maxCol
	if !lazy {
		cols += ", b.data"
	}
	sb.WriteString("SELECT " + cols + " FROM " + from)
	for i, w := range where {
		if i == 0 {
			sb.WriteString(" WHERE ")
		} else {
			sb.WriteString(" AND ")
		}
		sb.WriteString(w)
	}
	sb.WriteString(" ORDER BY " + order)

	conn, err := d.r.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: search: %w", err)
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: search: %w", err)
	}
	defer rows.Close()
	var out []eventstore.Record                  // newest first, at most limit
	older := func(a, b eventstore.Record) bool { // a sorts after b
		at, bt := a.Time.UnixNano(), b.Time.UnixNano()
		return at < bt || at == bt && a.ID < b.ID
	}
	var z tokenizer
	found := make([]bool, len(textToks))
	var raw []byte   // the payload buffer, reused block to block
	var e blockEvent // the event being checked, reused
	for rows.Next() {
		var id, maxT int64
		var agent, host string
		var data []byte
		dest := []any{&id, &agent, &host, &maxT, &data}
		if lazy {
			dest = dest[:4]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("sqlite: search: %w", err)
		}
		if len(out) == limit && maxT < ts(out[limit-1].Time) {
			break // every later block ends before the page's oldest event
		}
		if lazy {
			if err := conn.QueryRowContext(ctx, `SELECT data FROM event_blocks WHERE id = ?`, id).Scan(&data); err != nil {
				return nil, fmt.Errorf("sqlite: search: block %d: %w", id, err)
			}
		}
		// One payload buffer and one event for the whole walk: the few
		// events kept are copied out (clone), the rest cost no allocation.
		r, buf, err := decodeBlockInto(id, data, raw)
		raw = buf
		if err != nil {
			return nil, fmt.Errorf("sqlite: search: %w", err)
		}
		for r.nextReuse(&e) {
			switch {
			case q.Category != "" && !slices.Contains(e.cats, q.Category),
				fromT != 0 && e.time < fromT,
				toT != 0 && e.time >= toT,
				q.Before != 0 && (e.time > beforeT || e.time == beforeT && e.id >= q.Before),
				!fieldsMatch(&e, q.Fields),
				len(textToks) > 0 && !hasTokens(&z, &e, textToks, found):
				continue
			}
			rec := e.record(agent, host)
			if len(out) == limit && !older(out[limit-1], rec) {
				continue
			}
			k := sort.Search(len(out), func(k int) bool { return older(out[k], rec) })
			out = slices.Insert(out, k, clone(rec))
			if len(out) > limit {
				out = out[:limit]
			}
		}
		if r.err != nil {
			return nil, fmt.Errorf("sqlite: search: %w", r.err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: search: %w", err)
	}
	return out, nil
}

// fieldsMatch reports whether e has, for every filter, a field with that name
// and value (ASCII case-insensitive).
func fieldsMatch(e *blockEvent, fs []eventstore.FieldFilter) bool {
	for _, f := range fs {
		ok := false
		for _, ef := range e.fields {
			if asciiEqualFold(ef.Name, f.Name) && asciiEqualFold(ef.Value, f.Value) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// queryTokens returns the distinct tokens of s.
func queryTokens(s string) []string {
	var z tokenizer
	var out []string
	z.each(s, func(tok []byte) {
		if !slices.Contains(out, string(tok)) {
			out = append(out, string(tok))
		}
	})
	return out
}

// hasTokens reports whether e's field values hold every token of toks.
func hasTokens(z *tokenizer, e *blockEvent, toks []string, found []bool) bool {
	// A cheap pass first: an ASCII token (letters and digits) can only be a
	// token of a value that holds it as a substring, ignoring ASCII case.
	// Most events of a candidate block fail here without being tokenized.
	for _, t := range toks {
		if asciiToken(t) && !anyHasFold(e.fields, t) {
			return false
		}
	}
	clear(found)
	left := len(toks)
	for _, f := range e.fields {
		z.each(f.Value, func(tok []byte) {
			for i, t := range toks {
				if !found[i] && string(tok) == t {
					found[i] = true
					left--
				}
			}
		})
		if left == 0 {
			return true
		}
	}
	return false
}

// asciiToken reports whether tok is all ASCII (a token's ASCII bytes are
// lower-case letters and digits).
func asciiToken(tok string) bool {
	for i := 0; i < len(tok); i++ {
		if tok[i] >= 0x80 {
			return false
		}
	}
	return tok != ""
}

// anyHasFold reports whether some field value may hold tok, an ASCII token.
// It compares bytes with bit 5 set (lower-casing ASCII letters), so it never
// misses an ASCII occurrence, and answers yes for any value with non-ASCII
// bytes (unicode.ToLower maps some of them to ASCII: K, İ); its false
// positives are settled by tokenizing.
func anyHasFold(fs []event.Field, tok string) bool {
	t0 := tok[0]
	for _, f := range fs {
		v := f.Value
		for i := 0; i < len(v); i++ {
			c := v[i]
			if c >= 0x80 {
				return true
			}
			if c|0x20 != t0 || i+len(tok) > len(v) {
				continue
			}
			j := 1
			for j < len(tok) && v[i+j]|0x20 == tok[j] {
				j++
			}
			if j == len(tok) {
				return true
			}
		}
	}
	return false
}
