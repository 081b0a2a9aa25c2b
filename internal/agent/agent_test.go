package agent

import (
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vigil-edr/vigil/internal/agent/spool"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/wire"
)

func testSpool(t testing.TB) *spool.Spool {
	t.Helper()
	sp, err := spool.Open(spool.Options{Dir: filepath.Join(t.TempDir(), "spool"), MaxBytes: 64 << 20, SegmentBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp
}

var testCats = []string{"process_creation"}

func execEvent(i int) *event.Event {
	ev := &event.Event{Time: time.Date(2026, 12, 1, 8, 0, 0, i, time.UTC), Product: "linux", Categories: testCats}
	ev.Add("Image", "/usr/bin/true")
	ev.Add("CommandLine", "/usr/bin/true "+strconv.Itoa(i))
	ev.Add("ProcessId", strconv.Itoa(1000+i))
	return ev
}

// What Record spools, batch sends: every event, in order, with its spool
// sequence number, as the server's own decoder reads it; also records left
// by an agent that spooled whole wire events, an event too big for the
// server (truncated, counted) and one the server would refuse (not spooled,
// counted).
func TestRecordToBatch(t *testing.T) {
	sp := testSpool(t)
	a := New(Options{Spool: sp, Logger: slog.New(slog.DiscardHandler)})
	a.Record(execEvent(0))
	// An older agent's record.
	if _, err := sp.Append([]byte(`{"seq":0,"time":"2026-12-01T08:00:00.000000001Z","product":"linux","categories":["process_creation"],"fields":[["Image","/usr/bin/true"],["CommandLine","/usr/bin/true 1"],["ProcessId","1001"]]}`)); err != nil {
		t.Fatal(err)
	}
	a.Record(execEvent(2))
	big := execEvent(3)
	big.Add("CommandLine", strings.Repeat("é", 200_000)) // 400 KB of UTF-8
	a.Record(big)
	a.Record(&event.Event{Product: "linux"}) // no time: the server would refuse it
	a.Record(execEvent(4))
	if err := sp.Sync(); err != nil {
		t.Fatal(err)
	}
	st := a.Stats()
	if st.Appended != 4 || st.AppendErrors != 1 || st.Truncated != 1 {
		t.Fatalf("stats %+v", st)
	}
	recs, err := sp.Read(0, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	body, last, err := a.batch(recs)
	if err != nil || last != 5 {
		t.Fatalf("batch: last %d, %v", last, err)
	}
	b, err := wire.Decode(body, "zstd", wire.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if b.BootEpoch != sp.BootEpoch() || len(b.Events) != 5 {
		t.Fatalf("epoch %d, %d events", b.BootEpoch, len(b.Events))
	}
	for i, e := range b.Events {
		if e.Seq != uint64(i+1) {
			t.Errorf("event %d: seq %d", i, e.Seq)
		}
		if i == 3 {
			v := e.Fields[len(e.Fields)-1].Value
			if len(v) >= 400_000 || len(v) < 1000 || !utf8.ValidString(v) {
				t.Errorf("the big value is %d bytes, valid UTF-8 %v", len(v), utf8.ValidString(v))
			}
			continue
		}
		want := execEvent(i)
		if !e.Time.Equal(want.Time) || e.Product != "linux" || len(e.Categories) != 1 || len(e.Fields) != 3 {
			t.Fatalf("event %d: %+v", i, e)
		}
		for j, f := range want.Fields {
			if e.Fields[j] != f {
				t.Errorf("event %d field %d: %v, want %v", i, j, e.Fields[j], f)
			}
		}
	}
}

// A record that is not an event (a bug, never a sensor's input) is left
// out of the batch; the others still go.
func TestBatchSkipsUnusable(t *testing.T) {
	sp := testSpool(t)
	a := New(Options{Spool: sp, Logger: slog.New(slog.DiscardHandler)})
	a.Record(execEvent(0))
	sp.Append([]byte("not an event"))
	a.Record(execEvent(2))
	sp.Sync()
	recs, _ := sp.Read(0, 100, 0)
	body, last, err := a.batch(recs)
	if err != nil || last != 3 {
		t.Fatal(last, err)
	}
	b, err := wire.Decode(body, "zstd", wire.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 2 || b.Events[1].Seq != 3 || a.Stats().Unusable != 1 {
		t.Fatalf("%d events, unusable %d", len(b.Events), a.Stats().Unusable)
	}
	sp.Append([]byte("{}"))
	sp.Sync()
	recs, _ = sp.Read(3, 100, 0)
	if _, last, err := a.batch(recs); err == nil || last != 4 {
		t.Fatalf("a batch of nothing usable: last %d, %v", last, err)
	}
}
