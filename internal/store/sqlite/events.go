package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
)

var _ eventstore.Store = (*DB)(nil)

// rowOverhead is added to each event's byte count for its integer columns
// and index entries, so that Retention.MaxBytes tracks the file size better.
const rowOverhead = 64

// eventStmts are the hot-path statements, prepared once on the writer.
type eventStmts struct {
	dupRange, unscanned, needsScan, counter, addCounter, setCounter, markScanned *sql.Stmt

	events, cats, fts multiInsert
}

// eventCols is the number of values per row of eventStmts.events.
const eventInsertCols = 11

func (s *eventStmts) prepare(ctx context.Context, w *sql.DB) error {
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{
		{&s.dupRange, `SELECT seq, id FROM events WHERE agent_id = ? AND boot_epoch = ? AND seq BETWEEN ? AND ?`},
		// New ids of one Insert are consecutive.
		{&s.unscanned, `WITH RECURSIVE ids(id) AS (SELECT ?1 UNION ALL SELECT id + 1 FROM ids WHERE id < ?2)
			INSERT INTO events_unscanned(id) SELECT id FROM ids`},
		{&s.needsScan, `SELECT EXISTS(SELECT 1 FROM events_unscanned WHERE id = ?)`},
		{&s.counter, `SELECT value FROM counters WHERE name = ?`},
		{&s.addCounter, `UPDATE counters SET value = value + ? WHERE name = ?`},
		{&s.setCounter, `UPDATE counters SET value = ? WHERE name = ?`},
		{&s.markScanned, `DELETE FROM events_unscanned WHERE id BETWEEN ? AND ?`},
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
		// No ON CONFLICT: Insert has already set duplicates aside, so a
		// violation of events_identity is an error, never a silent skip.
		{&s.events, `INSERT INTO events(id, agent_id, boot_epoch, seq, host, time, product, services, categories, fields, bytes)`, "", eventInsertCols},
		// An event may list a category twice.
		{&s.cats, `INSERT INTO event_categories(category, time, event_id)`, " ON CONFLICT DO NOTHING", 3},
		{&s.fts, `INSERT INTO events_fts(rowid, text)`, "", 2},
	} {
		if err := m.m.prepare(ctx, w, m.head, m.cols, m.tail); err != nil {
			s.close()
			return err
		}
	}
	return nil
}

func (s *eventStmts) close() {
	for _, st := range []*sql.Stmt{s.dupRange, s.unscanned, s.needsScan, s.counter, s.addCounter, s.setCounter, s.markScanned} {
		if st != nil {
			st.Close()
		}
	}
	s.events.close()
	s.cats.close()
	s.fts.close()
}

// encoder holds the buffers one Insert call reuses for every event.
type encoder struct {
	fields, services, categories []byte
}

func (e *encoder) encode(ev *event.Event) {
	e.fields = append(e.fields[:0], '[')
	for i, f := range ev.Fields {
		if i > 0 {
			e.fields = append(e.fields, ',')
		}
		e.fields = append(e.fields, '[')
		e.fields = appendJSONString(e.fields, f.Name)
		e.fields = append(e.fields, ',')
		e.fields = appendJSONString(e.fields, f.Value)
		e.fields = append(e.fields, ']')
	}
	e.fields = append(e.fields, ']')
	e.services = appendJSONList(e.services[:0], ev.Services)
	e.categories = appendJSONList(e.categories[:0], ev.Categories)
}

func appendJSONList(b []byte, list []string) []byte {
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendJSONString appends s as a JSON string. s must be valid UTF-8 (event
// values are); invalid bytes are replaced.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// identity is an event's delivery identity.
type identity struct {
	agent      string
	epoch, seq uint64
}

// Insert stores a batch in one transaction. See eventstore.Store.
//
// Duplicates are found before writing: within the batch with a map, and
// against stored events with one range query per (agent, boot epoch) of the
// batch. The new rows are then written with multi-row INSERTs; the unique
// index events_identity still guards the triple (a violation fails the
// transaction).
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
		needsScan := tx.StmtContext(ctx, d.ins.needsScan)
		first := make(map[identity]int, len(evs)) // index of a triple's first copy in the batch
		var enc encoder
		evArgs := make([]any, 0, min(len(evs), 1<<maxRowsLog2)*eventInsertCols)
		var catArgs []any
		flush := func() error {
			if err := d.ins.events.exec(ctx, tx, evArgs); err != nil {
				return err
			}
			if err := d.ins.cats.exec(ctx, tx, catArgs); err != nil {
				return err
			}
			evArgs, catArgs = evArgs[:0], catArgs[:0]
			return nil
		}
		start := next
		var addedBytes int64
		for i := range evs {
			s := &evs[i]
			k := identity{s.AgentID, s.BootEpoch, s.Seq}
			if j, ok := first[k]; ok {
				out[i] = out[j]
				out[i].Duplicate = true
				continue
			}
			first[k] = i
			if id, ok := stored[k]; ok {
				var needs bool
				if err := needsScan.QueryRowContext(ctx, id).Scan(&needs); err != nil {
					return fmt.Errorf("look up duplicate: %w", err)
				}
				out[i] = eventstore.Inserted{ID: id, NeedsScan: needs, Duplicate: true}
				continue
			}
			ev := s.Event
			enc.encode(ev)
			services, categories := string(enc.services), string(enc.categories)
			fields := string(enc.fields)
			bytes := int64(len(fields)+len(s.AgentID)+len(s.Host)+len(ev.Product)+
				len(services)+len(categories)) + rowOverhead
			t := ts(ev.Time)
			evArgs = append(evArgs, next, s.AgentID, int64(s.BootEpoch), int64(s.Seq), s.Host, t,
				ev.Product, services, categories, fields, bytes)
			for _, c := range ev.Categories {
				catArgs = append(catArgs, c, t, next)
			}
			out[i] = eventstore.Inserted{ID: next, NeedsScan: true}
			next++
			addedBytes += bytes
			if len(evArgs) == cap(evArgs) {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		added := next - start
		if added == 0 {
			return nil
		}
		if _, err := tx.StmtContext(ctx, d.ins.unscanned).ExecContext(ctx, start, next-1); err != nil {
			return err
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
		n      int
	}
	spans := map[group]*span{}
	for i := range evs {
		g := group{evs[i].AgentID, evs[i].BootEpoch}
		q := int64(evs[i].Seq)
		if sp := spans[g]; sp != nil {
			sp.lo, sp.hi, sp.n = min(sp.lo, q), max(sp.hi, q), sp.n+1
		} else {
			spans[g] = &span{q, q, 1}
		}
	}
	st := tx.StmtContext(ctx, d.ins.dupRange)
	found := map[identity]int64{}
	read := func(g group, lo, hi int64) error {
		rows, err := st.QueryContext(ctx, g.agent, int64(g.epoch), lo, hi)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var seq, id int64
			if err := rows.Scan(&seq, &id); err != nil {
				return err
			}
			found[identity{g.agent, g.epoch, uint64(seq)}] = id
		}
		return rows.Err()
	}
	for g, sp := range spans {
		// A dense range is one index scan; a sparse one (sequences far
		// apart) would read other stored rows, so look each up instead.
		if uint64(sp.hi-sp.lo) <= uint64(4*sp.n+1024) {
			if err := read(g, sp.lo, sp.hi); err != nil {
				return nil, err
			}
			continue
		}
		for i := range evs {
			if evs[i].AgentID == g.agent && evs[i].BootEpoch == g.epoch {
				q := int64(evs[i].Seq)
				if err := read(g, q, q); err != nil {
					return nil, err
				}
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
// ignored. Runs of consecutive ids (a whole batch, usually) are deleted by
// range.
func (d *DB) MarkScanned(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	err := d.writeTx(ctx, false, func(tx *sql.Tx) error {
		st := tx.StmtContext(ctx, d.ins.markScanned)
		for i := 0; i < len(sorted); {
			j := i + 1
			for j < len(sorted) && sorted[j] <= sorted[j-1]+1 {
				j++
			}
			if _, err := st.ExecContext(ctx, sorted[i], sorted[j-1]); err != nil {
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

const eventCols = `e.id, e.agent_id, e.boot_epoch, e.seq, e.host, e.time, e.product, e.services, e.categories, e.fields`

func scanRecord(sc interface{ Scan(...any) error }) (eventstore.Record, error) {
	var r eventstore.Record
	var epoch, seq, t int64
	var services, categories, fields string
	if err := sc.Scan(&r.ID, &r.AgentID, &epoch, &seq, &r.Host, &t, &r.Product, &services, &categories, &fields); err != nil {
		return r, err
	}
	r.BootEpoch, r.Seq, r.Time = uint64(epoch), uint64(seq), fromTS(t)
	if err := json.Unmarshal([]byte(services), &r.Services); err != nil {
		return r, fmt.Errorf("event %d services: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(categories), &r.Category); err != nil {
		return r, fmt.Errorf("event %d categories: %w", r.ID, err)
	}
	var pairs [][2]string
	if err := json.Unmarshal([]byte(fields), &pairs); err != nil {
		return r, fmt.Errorf("event %d fields: %w", r.ID, err)
	}
	r.Fields = make([]event.Field, len(pairs))
	for i, p := range pairs {
		r.Fields[i] = event.Field{Name: p[0], Value: p[1]}
	}
	return r, nil
}

// Get returns one event by row id.
func (d *DB) Get(ctx context.Context, id int64) (eventstore.Record, error) {
	r, err := scanRecord(d.r.QueryRowContext(ctx, `SELECT `+eventCols+` FROM events e WHERE e.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, notFound("sqlite: event", id)
	}
	if err != nil {
		return r, fmt.Errorf("sqlite: get event %d: %w", id, err)
	}
	return r, nil
}

// Search returns events matching q, newest (by event time, then row id)
// first. From is inclusive, To exclusive. Text matches events holding every
// token of it in some field value (see fts.go); FTS5 operators in it have no
// effect. Field filters compare names and values case-insensitively (ASCII).
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
	from, tcol, icol := "events e", "e.time", "e.id"
	if q.Category != "" {
		from, tcol, icol = "event_categories c JOIN events e ON e.id = c.event_id", "c.time", "c.event_id"
		add("c.category = ?", q.Category)
	}
	if q.Host != "" {
		add("e.host = ?", q.Host)
	}
	if q.AgentID != "" {
		add("e.agent_id = ?", q.AgentID)
	}
	if !q.From.IsZero() {
		add(tcol+" >= ?", ts(q.From))
	}
	if !q.To.IsZero() {
		add(tcol+" < ?", ts(q.To))
	}
	if q.Before != 0 {
		var bt int64
		err := d.r.QueryRowContext(ctx, `SELECT time FROM events WHERE id = ?`, q.Before).Scan(&bt)
		if errors.Is(err, sql.ErrNoRows) {
			// Expiry deletes in (time, id) order: nothing older is left.
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: search: %w", err)
		}
		add("("+tcol+", "+icol+") < (?, ?)", bt, q.Before)
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
	if q.Text != "" {
		m := ftsQuery(q.Text)
		if m == "" {
			return nil, nil // no token: nothing can match
		}
		match = append(match, m)
	}
	for _, f := range q.Fields {
		// The value's tokens narrow the candidates through the index;
		// json_each then checks the exact field.
		if m := ftsQuery(f.Value); m != "" {
			match = append(match, m)
		}
		add(`EXISTS (SELECT 1 FROM json_each(e.fields) j WHERE lower(j.value->>0) = lower(?) AND lower(j.value->>1) = lower(?))`,
			f.Name, f.Value)
	}
	if len(match) > 0 {
		add(icol+" IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?)", strings.Join(match, " "))
	}
	var b strings.Builder
	b.WriteString("SELECT " + eventCols + " FROM " + from)
	for i, w := range where {
		if i == 0 {
			b.WriteString(" WHERE ")
		} else {
			b.WriteString(" AND ")
		}
		b.WriteString(w)
	}
	b.WriteString(" ORDER BY " + tcol + " DESC, " + icol + " DESC LIMIT " + strconv.Itoa(limit))

	rows, err := d.r.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: search: %w", err)
	}
	defer rows.Close()
	var out []eventstore.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: search: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: search: %w", err)
	}
	return out, nil
}

// Stats reports the stored event count and bytes (the sum of each row's byte
// estimate, kept in the counters table).
func (d *DB) Stats(ctx context.Context) (count, bytes int64, err error) {
	err = d.r.QueryRowContext(ctx,
		`SELECT (SELECT value FROM counters WHERE name = 'event_count'), (SELECT value FROM counters WHERE name = 'event_bytes')`).
		Scan(&count, &bytes)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: stats: %w", err)
	}
	return count, bytes, nil
}

// expireChunk is how many events one Expire transaction deletes at most, so
// the writer is never held for long.
const expireChunk = 1000

// Expire deletes events older than r.MaxAge (by event time) and then the
// oldest events until the stored bytes are at most r.MaxBytes. Zero fields
// do not limit.
func (d *DB) Expire(ctx context.Context, r eventstore.Retention, now time.Time) (int64, error) {
	var total int64
	if r.MaxAge > 0 {
		cutoff := now.Add(-r.MaxAge).UnixNano()
		for {
			n, err := d.expireOldest(ctx, cutoff, -1)
			total += n
			if err != nil {
				return total, fmt.Errorf("sqlite: expire by age: %w", err)
			}
			if n < expireChunk {
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
			n, err := d.expireOldest(ctx, 0, bytes-r.MaxBytes)
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

// expireOldest deletes, in (time, id) order, up to expireChunk events: those
// older than before when before != 0, or else enough to free excess bytes.
func (d *DB) expireOldest(ctx context.Context, before int64, excess int64) (int64, error) {
	var n int64
	err := d.writeTx(ctx, false, func(tx *sql.Tx) error {
		q := `SELECT id, time, categories, bytes FROM events ORDER BY time, id LIMIT ?`
		args := []any{expireChunk}
		if before != 0 {
			q = `SELECT id, time, categories, bytes FROM events WHERE time < ? ORDER BY time, id LIMIT ?`
			args = []any{before, expireChunk}
		}
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		type victim struct {
			id, time   int64
			categories string
		}
		var vs []victim
		var freed int64
		for rows.Next() {
			var v victim
			var b int64
			if err := rows.Scan(&v.id, &v.time, &v.categories, &b); err != nil {
				rows.Close()
				return err
			}
			vs = append(vs, v)
			freed += b
			if excess > 0 && freed >= excess {
				break
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(vs) == 0 {
			return nil
		}
		delEv, err := tx.PrepareContext(ctx, `DELETE FROM events WHERE id = ?`)
		if err != nil {
			return err
		}
		delFTS, err := tx.PrepareContext(ctx, `DELETE FROM events_fts WHERE rowid = ?`)
		if err != nil {
			return err
		}
		delUns, err := tx.PrepareContext(ctx, `DELETE FROM events_unscanned WHERE id = ?`)
		if err != nil {
			return err
		}
		delCat, err := tx.PrepareContext(ctx, `DELETE FROM event_categories WHERE category = ? AND time = ? AND event_id = ?`)
		if err != nil {
			return err
		}
		// Events after the high-water mark are not in the index yet (and
		// the indexer skips ids that no longer exist).
		var indexed int64
		if err := tx.StmtContext(ctx, d.ins.counter).QueryRowContext(ctx, "fts_indexed").Scan(&indexed); err != nil {
			return err
		}
		for _, v := range vs {
			for _, st := range []*sql.Stmt{delEv, delUns} {
				if _, err := st.ExecContext(ctx, v.id); err != nil {
					return err
				}
			}
			if v.id <= indexed {
				if _, err := delFTS.ExecContext(ctx, v.id); err != nil {
					return err
				}
			}
			var cats []string
			if err := json.Unmarshal([]byte(v.categories), &cats); err != nil {
				return fmt.Errorf("event %d categories: %w", v.id, err)
			}
			for _, c := range cats {
				if _, err := delCat.ExecContext(ctx, c, v.time, v.id); err != nil {
					return err
				}
			}
		}
		n = int64(len(vs))
		return addCounters(ctx, tx.StmtContext(ctx, d.ins.addCounter), -n, -freed, 0)
	})
	return n, err
}
