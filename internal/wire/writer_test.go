package wire_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/wire"
	"github.com/vigil-edr/vigil/internal/wire/wiretest"
)

// toEvent is the sensor's view of a wire event.
func toEvent(e *wire.Event) *event.Event {
	ev := &event.Event{Time: e.Time, Product: e.Product, Services: e.Services, Categories: e.Categories}
	ev.Fields = append(ev.Fields, e.Fields...)
	return ev
}

// A batch written object by object is byte for byte the batch Encode
// writes, so the server reads it exactly as before.
func TestBatchWriterMatchesEncode(t *testing.T) {
	b := wiretest.Batch(40, 9, 1000)
	b.Events[2].Fields = append(b.Events[2].Fields, event.Field{Name: "CommandLine", Value: "q\"uote \\ \t\n\x01 \u2028 é 😀"})
	b.Events[3].Services, b.Events[4].Categories = nil, nil
	b.Events[5].Fields = wire.Fields{}
	b.Events[6].Time = time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	var w wire.BatchWriter
	for _, enc := range []string{"identity", "zstd", "gzip"} {
		w.Reset(b.BootEpoch)
		var obj []byte
		for i := range b.Events {
			var err error
			obj, err = wire.AppendEventObject(obj[:0], toEvent(&b.Events[i]))
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Add(b.Events[i].Seq, obj); err != nil {
				t.Fatal(err)
			}
		}
		if w.Len() != len(b.Events) {
			t.Fatalf("Len = %d", w.Len())
		}
		got, err := w.Encode(enc)
		if err != nil {
			t.Fatal(err)
		}
		if enc == "identity" {
			want, _ := wire.Encode(b, enc)
			if !bytes.Equal(got, want) {
				t.Fatalf("BatchWriter wrote\n%s\nEncode writes\n%s", got, want)
			}
			if w.Size() != len(got) {
				t.Errorf("Size = %d, body is %d bytes", w.Size(), len(got))
			}
		}
		back, err := wire.Decode(got, enc, wire.Limits{})
		if err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		if len(back.Events) != len(b.Events) || back.LastSeq() != b.LastSeq() {
			t.Fatalf("%s: decoded %d events, last seq %d", enc, len(back.Events), back.LastSeq())
		}
	}
	// The identity body is the caller's: adding more does not change it.
	w.Reset(1)
	obj, _ := wire.AppendEventObject(nil, toEvent(&b.Events[0]))
	w.Add(1, obj)
	body, _ := w.Encode("identity")
	keep := string(body)
	w.Add(2, obj)
	if string(body) != keep {
		t.Fatal("Encode's identity body shares the writer's buffer")
	}
}

func TestAppendEventObject(t *testing.T) {
	at := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	good := func() *event.Event {
		ev := &event.Event{Time: at, Product: "linux", Categories: []string{"process_creation"}}
		ev.Add("CommandLine", "ls")
		return ev
	}
	bad := map[string]func(*event.Event){
		"time is missing":    func(ev *event.Event) { ev.Time = time.Time{} },
		"product is missing": func(ev *event.Event) { ev.Product = "" },
		"empty service":      func(ev *event.Event) { ev.Services = []string{""} },
		"empty category":     func(ev *event.Event) { ev.Categories = []string{"x", ""} },
		"empty name":         func(ev *event.Event) { ev.Add("", "v") },
	}
	for want, spoil := range bad {
		ev := good()
		spoil(ev)
		out, err := wire.AppendEventObject([]byte("keep"), ev)
		if err == nil || !strings.Contains(err.Error(), want) || string(out) != "keep" {
			t.Errorf("%s: got %q, %v", want, out, err)
		}
	}
	// Invalid UTF-8 is replaced, everywhere, and the batch decodes.
	ev := good()
	ev.Product = "li\xffnux"
	ev.Services = []string{"a\xc3"}
	ev.Add("Name\xfe", "val\xffue")
	obj, err := wire.AppendEventObject(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	var w wire.BatchWriter
	w.Reset(3)
	if err := w.Add(7, obj); err != nil {
		t.Fatal(err)
	}
	body, _ := w.Encode("zstd")
	b, err := wire.Decode(body, "zstd", wire.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	e := b.Events[0]
	if e.Product != "li\uFFFDnux" || e.Services[0] != "a\uFFFD" || e.Fields[1] != (event.Field{Name: "Name\uFFFD", Value: "val\uFFFDue"}) || e.Seq != 7 {
		t.Fatalf("decoded %+v", e)
	}
}

func TestBatchWriterRefuses(t *testing.T) {
	var w wire.BatchWriter
	w.Reset(1)
	if _, err := w.Encode("zstd"); err == nil {
		t.Error("an empty batch encoded")
	}
	obj := []byte(`{"time":"2025-03-14T09:26:53Z","product":"linux","fields":[]}`)
	if err := w.Add(0, obj); err == nil {
		t.Error("seq 0 accepted")
	}
	if err := w.Add(5, obj); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(5, obj); err == nil {
		t.Error("a repeated seq accepted")
	}
	for _, o := range []string{``, `{}`, `[1]`, `{"seq":0,"time":"x"}`, `{"time":"x"`, `{"product":"linux","time":"2025-03-14T09:26:53Z","fields":[]}`} {
		if err := w.Add(9, []byte(o)); !errors.Is(err, wire.ErrNotObject) {
			t.Errorf("%q: %v, want ErrNotObject", o, err)
		}
	}
	if w.Len() != 1 {
		t.Fatalf("refused objects were added: Len %d", w.Len())
	}
}

func BenchmarkBatchWriter(b *testing.B) {
	batch := wiretest.Batch(1000, 1, 1)
	objs := make([][]byte, len(batch.Events))
	for i := range batch.Events {
		objs[i], _ = wire.AppendEventObject(nil, toEvent(&batch.Events[i]))
	}
	b.Run("object", func(b *testing.B) {
		ev := toEvent(&batch.Events[0])
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = wire.AppendEventObject(buf[:0], ev)
		}
	})
	for _, enc := range []string{"zstd", "identity"} {
		b.Run("batch/"+enc, func(b *testing.B) {
			var w wire.BatchWriter
			b.ReportAllocs()
			for b.Loop() {
				w.Reset(1)
				for i, o := range objs {
					if err := w.Add(uint64(i+1), o); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := w.Encode(enc); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
