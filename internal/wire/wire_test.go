package wire_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/wire"
	"github.com/vigil-edr/vigil/internal/wire/wiretest"
)

func TestRoundTrip(t *testing.T) {
	b := wiretest.Batch(50, 7, 100)
	b.Events[3].Fields = append(b.Events[3].Fields,
		event.Field{Name: "CommandLine", Value: "second value, \"quoted\" \\ tab\t nl\n <html> & \u2028 é 😀 \x01"},
		event.Field{Name: "Empty", Value: ""})
	b.Events[4].Services = nil
	b.Events[4].Categories = nil
	for _, enc := range []string{"zstd", "gzip", "identity", "", "ZSTD"} {
		body, err := wire.Encode(b, enc)
		if err != nil {
			t.Fatalf("Encode(%q): %v", enc, err)
		}
		got, err := wire.Decode(body, enc, wire.Limits{})
		if err != nil {
			t.Fatalf("Decode(%q): %v", enc, err)
		}
		if !reflect.DeepEqual(got, b) {
			t.Fatalf("Decode(%q) differs from what was encoded:\n got %+v\nwant %+v", enc, got.Events[3], b.Events[3])
		}
	}
}

func TestToEvent(t *testing.T) {
	b := wiretest.Batch(1, 1, 42)
	b.Events[0].Time = time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	var ev event.Event
	ev.Add("stale", "x")
	b.Events[0].ToEvent(&ev)
	if ev.Record != 42 || ev.Product != "linux" || !ev.HasService("auditd") || !ev.HasCategory("process_creation") {
		t.Fatalf("log source/record wrong: %+v", ev)
	}
	if ev.Time.Location() != time.UTC || !ev.Time.Equal(b.Events[0].Time) {
		t.Fatalf("time = %v, want %v in UTC", ev.Time, b.Events[0].Time)
	}
	if v, _ := ev.Get("image"); v != "/usr/bin/curl" {
		t.Fatalf("Image = %q", v)
	}
	if _, ok := ev.Get("stale"); ok || len(ev.Fields) != len(b.Events[0].Fields) {
		t.Fatalf("ToEvent did not reset the event: %d fields", len(ev.Fields))
	}
}

func TestFromEvent(t *testing.T) {
	var ev event.Event
	ev.Time = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	ev.Product, ev.Services = "linux", []string{"sshd", "auth"}
	e := wire.FromEvent(5, &ev) // no fields at all is still a valid event
	var back event.Event
	e.ToEvent(&back)
	if _, err := wire.Encode(&wire.Batch{Version: wire.Version, BootEpoch: 1, Events: []wire.Event{e}}, "zstd"); err != nil {
		t.Fatal(err)
	}
	ev.Add("User", "root")
	e = wire.FromEvent(5, &ev)
	e.ToEvent(&back)
	if back.Record != 5 || !back.Time.Equal(ev.Time) || !reflect.DeepEqual(back.Fields, ev.Fields) || !back.HasService("auth") {
		t.Fatalf("FromEvent/ToEvent: %+v", back)
	}
}

const good = `{"v":1,"boot_epoch":3,"events":[{"seq":1,"time":"2025-03-14T09:26:53.5Z","product":"linux","services":["auditd"],"categories":["process_creation"],"fields":[["Image","/usr/bin/id"]]}]}`

// ev builds a one-event batch body from the event object's JSON.
func ev(event string) string {
	return `{"v":1,"boot_epoch":3,"events":[` + event + `]}`
}

func TestDecodeRejects(t *testing.T) {
	if _, err := wire.Decode([]byte(good), "", wire.Limits{}); err != nil {
		t.Fatalf("the good body is refused: %v", err)
	}
	deep := `{"v":1,"boot_epoch":3,"events":[{"seq":1,"time":"2025-03-14T09:26:53Z","product":"linux","fields":[],"x":` +
		strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}]}`
	manyEvents := func(n int) string {
		var sb strings.Builder
		sb.WriteString(`{"v":1,"boot_epoch":3,"events":[`)
		for i := range n {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(`{"seq":` + strconv.Itoa(i+1) + `,"time":"2025-03-14T09:26:53Z","product":"linux","fields":[]}`)
		}
		sb.WriteString(`]}`)
		return sb.String()
	}
	tests := []struct {
		name, body, enc string
		lim             wire.Limits
		code            wire.Code
	}{
		{"unknown encoding", good, "br", wire.Limits{}, wire.CodeBadEncoding},
		{"corrupt zstd", "not zstd at all", "zstd", wire.Limits{}, wire.CodeBadCompression},
		{"corrupt gzip", "not gzip at all", "gzip", wire.Limits{}, wire.CodeBadCompression},
		{"body too large", good, "", wire.Limits{MaxBytes: 100}, wire.CodeTooLarge},
		{"too many events", manyEvents(11), "", wire.Limits{MaxEvents: 10}, wire.CodeTooManyEvents},
		{"event too large", ev(`{"seq":1,"time":"2025-03-14T09:26:53Z","product":"linux","fields":[["a","` + strings.Repeat("x", 300) + `"]]}`), "", wire.Limits{MaxEventBytes: 256}, wire.CodeEventTooLarge},
		{"too deep", deep, "", wire.Limits{}, wire.CodeTooDeep},
		{"invalid utf8 in value", strings.Replace(good, "/usr/bin/id", "/usr/bin/\xff", 1), "", wire.Limits{}, wire.CodeInvalidUTF8},
		{"invalid utf8 in key", strings.Replace(good, `"seq"`, "\"s\xc3q\"", 1), "", wire.Limits{}, wire.CodeInvalidUTF8},
		{"lone high surrogate", strings.Replace(good, "/usr/bin/id", `\ud83d`, 1), "", wire.Limits{}, wire.CodeInvalidUTF8},
		{"lone low surrogate", strings.Replace(good, "/usr/bin/id", `\ude00x`, 1), "", wire.Limits{}, wire.CodeInvalidUTF8},
		{"high then non-low", strings.Replace(good, "/usr/bin/id", `\ud83d\u0041`, 1), "", wire.Limits{}, wire.CodeInvalidUTF8},
		{"not json", "hello", "", wire.Limits{}, wire.CodeBadJSON},
		{"truncated", good[:len(good)-3], "", wire.Limits{}, wire.CodeBadJSON},
		{"null", strings.Replace(good, `"boot_epoch":3`, `"boot_epoch":null`, 1), "", wire.Limits{}, wire.CodeBadJSON},
		{"array body", `[1,2]`, "", wire.Limits{}, wire.CodeBadJSON},
		{"events not array", `{"v":1,"boot_epoch":3,"events":{}}`, "", wire.Limits{}, wire.CodeBadJSON},
		{"event not object", `{"v":1,"boot_epoch":3,"events":[[1]]}`, "", wire.Limits{}, wire.CodeBadJSON},
		{"seq negative", strings.Replace(good, `"seq":1`, `"seq":-1`, 1), "", wire.Limits{}, wire.CodeBadJSON},
		{"seq fraction", strings.Replace(good, `"seq":1`, `"seq":1.5`, 1), "", wire.Limits{}, wire.CodeBadJSON},
		{"bad time", strings.Replace(good, `2025-03-14T09:26:53.5Z`, `14/03/2025`, 1), "", wire.Limits{}, wire.CodeBadEvent},
		{"version 2", strings.Replace(good, `"v":1`, `"v":2`, 1), "", wire.Limits{}, wire.CodeBadVersion},
		{"version missing", strings.Replace(good, `"v":1,`, ``, 1), "", wire.Limits{}, wire.CodeBadVersion},
		{"boot_epoch missing", strings.Replace(good, `"boot_epoch":3,`, ``, 1), "", wire.Limits{}, wire.CodeBadBatch},
		{"no events", `{"v":1,"boot_epoch":3,"events":[]}`, "", wire.Limits{}, wire.CodeBadBatch},
		{"events missing", `{"v":1,"boot_epoch":3}`, "", wire.Limits{}, wire.CodeBadBatch},
		{"seq not increasing", `{"v":1,"boot_epoch":3,"events":[` +
			`{"seq":5,"time":"2025-03-14T09:26:53Z","product":"linux","fields":[]},` +
			`{"seq":5,"time":"2025-03-14T09:26:53Z","product":"linux","fields":[]}]}`, "", wire.Limits{}, wire.CodeBadBatch},
		{"seq missing", ev(`{"time":"2025-03-14T09:26:53Z","product":"linux","fields":[]}`), "", wire.Limits{}, wire.CodeBadEvent},
		{"seq zero", ev(`{"seq":0,"time":"2025-03-14T09:26:53Z","product":"linux","fields":[]}`), "", wire.Limits{}, wire.CodeBadEvent},
		{"time missing", ev(`{"seq":1,"product":"linux","fields":[]}`), "", wire.Limits{}, wire.CodeBadEvent},
		{"product missing", ev(`{"seq":1,"time":"2025-03-14T09:26:53Z","fields":[]}`), "", wire.Limits{}, wire.CodeBadEvent},
		{"fields missing", ev(`{"seq":1,"time":"2025-03-14T09:26:53Z","product":"linux"}`), "", wire.Limits{}, wire.CodeBadEvent},
		{"fields object", ev(`{"seq":1,"time":"2025-03-14T09:26:53Z","product":"linux","fields":{"a":"b"}}`), "", wire.Limits{}, wire.CodeBadJSON},
		{"field triple", ev(`{"seq":1,"time":"2025-03-14T09:26:53Z","product":"linux","fields":[["a","b","c"]]}`), "", wire.Limits{}, wire.CodeBadEvent},
		{"field single", ev(`{"seq":1,"time":"2025-03-14T09:26:53Z","product":"linux","fields":[["a"]]}`), "", wire.Limits{}, wire.CodeBadEvent},
		{"field number", ev(`{"seq":1,"time":"2025-03-14T09:26:53Z","product":"linux","fields":[["a",1]]}`), "", wire.Limits{}, wire.CodeBadEvent},
		{"field not array", ev(`{"seq":1,"time":"2025-03-14T09:26:53Z","product":"linux","fields":["a"]}`), "", wire.Limits{}, wire.CodeBadEvent},
		{"empty field name", ev(`{"seq":1,"time":"2025-03-14T09:26:53Z","product":"linux","fields":[["","b"]]}`), "", wire.Limits{}, wire.CodeBadEvent},
		{"empty category", ev(`{"seq":1,"time":"2025-03-14T09:26:53Z","product":"linux","categories":[""],"fields":[]}`), "", wire.Limits{}, wire.CodeBadEvent},
		{"repeated key", ev(`{"seq":1,"seq":2,"time":"2025-03-14T09:26:53Z","product":"linux","fields":[]}`), "", wire.Limits{}, wire.CodeBadJSON},
		{"trailing garbage", good + "x", "", wire.Limits{}, wire.CodeBadJSON},
		{"control char", strings.Replace(good, "/usr/bin/id", "a\tb\x01", 1), "", wire.Limits{}, wire.CodeBadJSON},
		{"bad escape", strings.Replace(good, "/usr/bin/id", `\x41`, 1), "", wire.Limits{}, wire.CodeBadJSON},
		{"bad number", strings.Replace(good, `"seq":1`, `"seq":01`, 1), "", wire.Limits{}, wire.CodeBadJSON},
		{"seq overflow", strings.Replace(good, `"seq":1`, `"seq":18446744073709551616`, 1), "", wire.Limits{}, wire.CodeBadJSON},
		{"unknown key bad value", strings.Replace(good, `"v":1`, `"v":1,"x":tru`, 1), "", wire.Limits{}, wire.CodeBadJSON},
		{"services not strings", ev(`{"seq":1,"time":"2025-03-14T09:26:53Z","product":"linux","services":[1],"fields":[]}`), "", wire.Limits{}, wire.CodeBadJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := wire.Decode([]byte(tt.body), tt.enc, tt.lim)
			if err == nil {
				t.Fatalf("accepted: %+v", b)
			}
			var we *wire.Error
			if !errors.As(err, &we) {
				t.Fatalf("error %T %v is not a *wire.Error", err, err)
			}
			if we.Code != tt.code {
				t.Fatalf("code = %s (%s), want %s", we.Code, we.Message, tt.code)
			}
			if we.Status() < 400 {
				t.Fatalf("status %d for %s", we.Status(), we.Code)
			}
			if _, cerr := wire.Check([]byte(tt.body), tt.enc, tt.lim); cerr == nil || cerr.Error() != err.Error() {
				t.Fatalf("Check error %v, Decode error %v", cerr, err)
			}
		})
	}
}

func TestDecodeAccepts(t *testing.T) {
	for name, body := range map[string]string{
		"surrogate pair":  strings.Replace(good, "/usr/bin/id", `\ud83d\ude00`, 1),
		"escapes":         strings.Replace(good, "/usr/bin/id", `a\"b\\c\/d\n\u00e9`, 1),
		"unknown keys":    strings.Replace(good, `"v":1`, `"v":1,"agent_version":"1.2.3","extra":{"k":[true,false,1.5]}`, 1),
		"whitespace":      strings.ReplaceAll(strings.ReplaceAll(good, ",", " ,\n\t"), "[", "[ "),
		"no log source":   ev(`{"seq":1,"time":"2025-03-14T09:26:53+02:00","product":"linux","fields":[]}`),
		"repeated fields": ev(`{"seq":9,"time":"2025-03-14T09:26:53Z","product":"windows","fields":[["Data","a"],["Data","b"]]}`),
		"depth 32":        `{"v":1,"boot_epoch":3,"events":[{"seq":1,"time":"2025-03-14T09:26:53Z","product":"linux","fields":[],"x":` + strings.Repeat("[", 29) + strings.Repeat("]", 29) + `}]}`,
	} {
		b, err := wire.Decode([]byte(body), "identity", wire.Limits{})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		want := wire.Summary{BootEpoch: b.BootEpoch, Events: len(b.Events), FirstSeq: b.FirstSeq(), LastSeq: b.LastSeq()}
		if sum, err := wire.Check([]byte(body), "identity", wire.Limits{}); err != nil || sum != want {
			t.Errorf("%s: Check = %+v, %v; want %+v", name, sum, err, want)
		}
	}
	b, err := wire.Decode([]byte(strings.Replace(good, "/usr/bin/id", `\ud83d\ude00 \u00e9`, 1)), "", wire.Limits{})
	if err != nil || b.Events[0].Fields[0].Value != "😀 é" {
		t.Fatalf("escaped value = %+v, %v", b, err)
	}
}

func TestEncodeValidates(t *testing.T) {
	b := wiretest.Batch(2, 1, 1)
	b.Events[1].Fields[0].Value = "bad \xff"
	if _, err := wire.Encode(b, "zstd"); err == nil || err.(*wire.Error).Code != wire.CodeInvalidUTF8 {
		t.Fatalf("Encode of invalid UTF-8: %v", err)
	}
	b = wiretest.Batch(2, 1, 1)
	b.Events[1].Seq = 1
	if _, err := wire.Encode(b, "zstd"); err == nil || err.(*wire.Error).Code != wire.CodeBadBatch {
		t.Fatalf("Encode of repeated seq: %v", err)
	}
	if _, err := wire.Encode(wiretest.Batch(1, 1, 1), "br"); err == nil {
		t.Fatal("Encode with br succeeded")
	}
}

func TestCodeTable(t *testing.T) {
	seen := map[wire.Code]bool{}
	for _, c := range wire.Codes {
		if seen[c] {
			t.Errorf("%s listed twice", c)
		}
		seen[c] = true
		if s := c.Status(); s < 400 || s > 599 {
			t.Errorf("%s has status %d", c, s)
		}
	}
	if wire.Code("nope").Status() != 500 {
		t.Error("unknown code is not 500")
	}
}

// Zip bombs: each inflates far past the limit and must be refused having
// allocated about the limit, not the inflated size.
func TestDecompressionBombs(t *testing.T) {
	const limit = 1 << 20
	zeros := func(n int64) io.Reader { return io.LimitReader(zeroReader{}, n) }
	zstdStream := func(n int64, frames int) []byte { // streaming frames: no content size in the header
		var buf bytes.Buffer
		for range frames {
			w, _ := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest))
			if _, err := io.Copy(w, zeros(n)); err != nil {
				t.Fatal(err)
			}
			w.Close()
		}
		return buf.Bytes()
	}
	enc, _ := zstd.NewWriter(nil)
	big := make([]byte, 64<<20)
	zstdSized := enc.EncodeAll(big, nil) // content size 64 MiB in the header
	big = nil
	var gz bytes.Buffer
	gw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if _, err := io.Copy(gw, zeros(256<<20)); err != nil {
		t.Fatal(err)
	}
	gw.Close()

	bombs := []struct {
		name, enc string
		body      []byte
	}{
		{"zstd stream 256MiB", "zstd", zstdStream(256<<20, 1)},
		{"zstd 40 frames of 512KiB", "zstd", zstdStream(512<<10, 40)},
		{"zstd sized 64MiB", "zstd", zstdSized},
		{"gzip 256MiB", "gzip", gz.Bytes()},
	}
	for _, bomb := range bombs {
		t.Run(bomb.name, func(t *testing.T) {
			// Warm the pools so the measurement shows per-call allocation.
			_, _ = wire.Decode(bomb.body, bomb.enc, wire.Limits{MaxBytes: limit})
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := wire.Decode(bomb.body, bomb.enc, wire.Limits{MaxBytes: limit})
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			var we *wire.Error
			if !errors.As(err, &we) || we.Code != wire.CodeTooLarge {
				t.Fatalf("err = %v, want too_large", err)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d-byte body: refused in %v, %d bytes allocated", len(bomb.body), elapsed, alloc)
			if alloc > 3*limit {
				t.Errorf("allocated %d bytes refusing a %d-byte bomb (limit %d)", alloc, len(bomb.body), limit)
			}
			if elapsed > time.Second {
				t.Errorf("took %v: the bomb was not refused early", elapsed)
			}
		})
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func BenchmarkDecode(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		batch := wiretest.Batch(n, 1, 1)
		for _, enc := range []string{"zstd", "gzip", "identity"} {
			body, err := wire.Encode(batch, enc)
			if err != nil {
				b.Fatal(err)
			}
			js, _ := wire.Encode(batch, "identity")
			b.Run(enc+"/"+strconv.Itoa(n), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(js)))
				for b.Loop() {
					if _, err := wire.Decode(body, enc, wire.Limits{}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
			})
			if enc != "zstd" {
				continue
			}
			b.Run("check/"+enc+"/"+strconv.Itoa(n), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(js)))
				for b.Loop() {
					if _, err := wire.Check(body, enc, wire.Limits{}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	batch := wiretest.Batch(1000, 1, 1)
	for _, enc := range []string{"zstd", "identity"} {
		b.Run(enc, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := wire.Encode(batch, enc); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
