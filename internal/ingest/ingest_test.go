package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/vigil-edr/vigil/internal/bus"
	"github.com/vigil-edr/vigil/internal/ingest"
	"github.com/vigil-edr/vigil/internal/transport"
	"github.com/vigil-edr/vigil/internal/wire"
	"github.com/vigil-edr/vigil/internal/wire/wiretest"
)

var _ transport.Ingester = (*ingest.Ingester)(nil)

func openBus(t testing.TB, maxBytes int64) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Options{DataDir: t.TempDir(), Durables: []string{"test"}, StreamMaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func lag(t testing.TB, b *bus.Bus) uint64 {
	t.Helper()
	n, err := b.Lag(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func encode(t testing.TB, b *wire.Batch, enc string) []byte {
	t.Helper()
	body, err := wire.Encode(b, enc)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func TestRefusedBatchesPublishNothing(t *testing.T) {
	b := openBus(t, 0)
	in := ingest.New(ingest.Options{Bus: b, Limits: wire.Limits{MaxBytes: 1 << 20}})
	var bomb bytes.Buffer
	zw, _ := zstd.NewWriter(&bomb)
	if _, err := io.Copy(zw, io.LimitReader(zeros{}, 64<<20)); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	good := string(encode(t, wiretest.Batch(2, 1, 1), "identity"))
	tests := []struct {
		name, body, enc string
		code            wire.Code
	}{
		{"malformed", `{"v":1,"boot_epoch":1,"events":[{`, "", wire.CodeBadJSON},
		{"oversized", good + strings.Repeat(" ", 1<<20), "", wire.CodeTooLarge},
		{"deep", `{"v":1,"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, "", wire.CodeTooDeep},
		{"invalid utf8", strings.Replace(good, "alice", "al\xffce", 1), "", wire.CodeInvalidUTF8},
		{"zip bomb", bomb.String(), "zstd", wire.CodeTooLarge},
		{"unknown encoding", good, "br", wire.CodeBadEncoding},
		{"old version", strings.Replace(good, `"v":1`, `"v":0`, 1), "", wire.CodeBadVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, resp, _ := in.IngestBatch(context.Background(), "agent-1", []byte(tt.body), tt.enc)
			var e wire.Error
			if err := json.Unmarshal(resp, &e); err != nil {
				t.Fatalf("response %q: %v", resp, err)
			}
			if e.Code != tt.code || status != tt.code.Status() || e.Message == "" {
				t.Fatalf("got %d %+v, want %d %s", status, e, tt.code.Status(), tt.code)
			}
		})
	}
	if n := lag(t, b); n != 0 {
		t.Fatalf("the bus got %d messages from refused batches", n)
	}
	m := in.Metrics()
	if m.Batches != 0 || m.Rejected[wire.CodeTooLarge] != 2 || m.Rejected[wire.CodeBadJSON] != 1 {
		t.Fatalf("metrics %+v", m)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestGoodBatchReachesTheBus(t *testing.T) {
	b := openBus(t, 0)
	in := ingest.New(ingest.Options{Bus: b})
	ctx := context.Background()
	sent := wiretest.Batch(1000, 4, 501)
	for i, enc := range []string{"zstd", "gzip"} {
		batch := wiretest.Batch(1000, 4, 501+uint64(i)*1000)
		status, resp, _ := in.IngestBatch(ctx, "agent-"+enc, encode(t, batch, enc), enc)
		if status != http.StatusOK || string(resp) != fmt.Sprintf(`{"accepted":1000,"max_seq":%d}`, batch.LastSeq()) {
			t.Fatalf("%s: %d %s", enc, status, resp)
		}
	}
	// A retry of the same batch is answered 200 again and stored once.
	if status, _, _ := in.IngestBatch(ctx, "agent-zstd", encode(t, sent, "zstd"), "zstd"); status != http.StatusOK {
		t.Fatalf("retry: %d", status)
	}
	if n := lag(t, b); n != 2 {
		t.Fatalf("stream holds %d messages, want 2", n)
	}

	got := map[string]bus.Msg{}
	cctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	done := make(chan error, 1)
	go func() {
		done <- b.Consume(cctx, "test", 10, func(_ context.Context, ms []bus.Msg) error {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range ms {
				m.Data = bytes.Clone(m.Data)
				got[m.AgentID] = m
			}
			if len(got) == 2 {
				cancel()
			}
			return nil
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("batches not consumed")
	}
	for i, agent := range []string{"agent-zstd", "agent-gzip"} {
		m, ok := got[agent]
		if !ok {
			t.Fatalf("no message with agent %s: %v", agent, got)
		}
		if m.Headers[ingest.HeaderEncoding] != "zstd" || m.Headers[ingest.HeaderEvents] != "1000" ||
			m.Headers[ingest.HeaderBootEpoch] != "4" || m.Headers[ingest.HeaderFirstSeq] != strconv.Itoa(501+i*1000) {
			t.Fatalf("headers %v", m.Headers)
		}
		back, err := wire.Decode(m.Data, m.Headers[ingest.HeaderEncoding], wire.Limits{})
		if err != nil {
			t.Fatalf("%s: stored batch does not decode: %v", agent, err)
		}
		if back.FirstSeq() != 501+uint64(i)*1000 || len(back.Events) != 1000 {
			t.Fatalf("%s: stored batch %d events from %d", agent, len(back.Events), back.FirstSeq())
		}
	}
	if m := in.Metrics(); m.Batches != 3 || m.Events != 3000 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestRateLimit(t *testing.T) {
	b := openBus(t, 0)
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	in := ingest.New(ingest.Options{Bus: b, RatePerAgent: 100, Burst: 150, Now: clock})
	ctx := context.Background()
	send := func(agent string, first uint64, n int) (int, map[string]string) {
		status, _, h := in.IngestBatch(ctx, agent, encode(t, wiretest.Batch(n, 1, first), "zstd"), "zstd")
		return status, h
	}
	if s, _ := send("a", 1, 100); s != 200 {
		t.Fatalf("first batch: %d", s)
	}
	s, h := send("a", 101, 100) // 50 tokens left, 100 needed: 0.5 s → 1 s
	if s != http.StatusTooManyRequests || h["Retry-After"] != "1" {
		t.Fatalf("over the rate: %d %v", s, h)
	}
	if s, _ := send("b", 1, 100); s != 200 {
		t.Fatalf("another agent is limited too: %d", s)
	}
	advance(500 * time.Millisecond)
	if s, _ := send("a", 101, 100); s != 200 {
		t.Fatalf("after refill: %d", s)
	}
	// Empty bucket: refused before decoding, even a garbage body.
	status, _, h := in.IngestBatch(ctx, "a", []byte("garbage"), "")
	if status != http.StatusTooManyRequests || h["Retry-After"] == "" {
		t.Fatalf("empty bucket: %d %v", status, h)
	}
	if m := in.Metrics(); m.RateLimited != 2 || m.Rejected[wire.CodeRateLimited] != 2 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestBusTroubleIs503(t *testing.T) {
	b := openBus(t, 64<<10)
	in := ingest.New(ingest.Options{Bus: b, RatePerAgent: -1})
	ctx := context.Background()
	var full bool
	for i := range 200 {
		batch := wiretest.Batch(100, 1, uint64(1+i*100))
		for j := range batch.Events { // incompressible, so the stream fills
			batch.Events[j].Fields[0].Value = fmt.Sprintf("%x", j*7919+i*104729)
		}
		status, resp, h := in.IngestBatch(ctx, "a", encode(t, batch, "zstd"), "zstd")
		if status == http.StatusOK {
			continue
		}
		if status != http.StatusServiceUnavailable || h["Retry-After"] == "" || !strings.Contains(string(resp), "full") {
			t.Fatalf("full stream: %d %s %v", status, resp, h)
		}
		full = true
		break
	}
	if !full {
		t.Fatal("a 64 KiB stream never filled")
	}
	b.Close()
	status, _, h := in.IngestBatch(ctx, "a", encode(t, wiretest.Batch(1, 1, 1<<40), "zstd"), "zstd")
	if status != http.StatusServiceUnavailable || h["Retry-After"] == "" {
		t.Fatalf("closed bus: %d %v", status, h)
	}
	if m := in.Metrics(); m.PublishErrors != 2 || m.Rejected[wire.CodeUnavailable] != 2 {
		t.Fatalf("metrics %+v", m)
	}
}

// BenchmarkIngestBatch measures IngestBatch end to end (decode, rate
// check, publish with sync always) with realistic 1,000-event zstd batches,
// from 16 concurrent senders as many agents would be.
func BenchmarkIngestBatch(b *testing.B) {
	bs := openBus(b, 0)
	in := ingest.New(ingest.Options{Bus: bs, RatePerAgent: -1})
	const n = 1000
	body, err := wire.Encode(wiretest.Batch(n, 1, 1), "zstd")
	if err != nil {
		b.Fatal(err)
	}
	var agent atomic.Int64
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := "agent-" + strconv.FormatInt(agent.Add(1), 10) // distinct message ids
			if status, resp, _ := in.IngestBatch(context.Background(), id, body, "zstd"); status != 200 {
				b.Errorf("%d %s", status, resp)
				return
			}
		}
	})
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(len(body)), "body-bytes")
}
