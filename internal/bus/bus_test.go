package bus

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func open(t testing.TB, dir string, opts Options) *Bus {
	t.Helper()
	opts.DataDir = dir
	if opts.Durables == nil {
		opts.Durables = []string{"test"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkFor polls f until it returns nil or the deadline passes.
func checkFor(t testing.TB, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// collect consumes durable until want distinct messages arrived, and returns
// them by stream sequence.
func collect(t testing.TB, b *Bus, durable string, want int) map[uint64]Msg {
	t.Helper()
	var mu sync.Mutex
	got := map[uint64]Msg{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- b.Consume(ctx, durable, 64, func(_ context.Context, ms []Msg) error {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range ms {
				m.Data = append([]byte(nil), m.Data...)
				got[m.Seq] = m
			}
			return nil
		})
	}()
	checkFor(t, 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) < want {
			return fmt.Errorf("%d of %d messages consumed", len(got), want)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Consume: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return got
}

func payload(i int) []byte { return []byte(fmt.Sprintf("batch %d %s", i, strings.Repeat("x", i%300))) }

// checkExactlyOnce checks that got holds each published batch 0..n-1 under
// exactly one stream sequence.
func checkExactlyOnce(t *testing.T, got map[uint64]Msg, n int) {
	t.Helper()
	seen := map[string]uint64{}
	for seq, m := range got {
		if prev, dup := seen[string(m.Data)]; dup {
			t.Errorf("batch %q stored twice: sequences %d and %d", m.Data, prev, seq)
		}
		seen[string(m.Data)] = seq
	}
	for i := range n {
		if _, ok := seen[string(payload(i))]; !ok {
			t.Errorf("acknowledged batch %d is missing", i)
		}
	}
}

func TestPublishConsume(t *testing.T) {
	b := open(t, t.TempDir(), Options{})
	defer b.Close()
	ctx := context.Background()
	const n = 100
	for i := range n {
		if err := b.Publish(ctx, "agent-1", "id-"+strconv.Itoa(i), payload(i), map[string]string{"K": "v", HeaderAgent: "forged"}); err != nil {
			t.Fatal(err)
		}
	}
	// A retry inside the duplicate window is not stored again.
	if err := b.Publish(ctx, "agent-1", "id-7", payload(7), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "odd id/with.dots *", "odd", payload(n), nil); err != nil {
		t.Fatal(err)
	}
	if lag, err := b.Lag(ctx); err != nil || lag != n+1 {
		t.Fatalf("Lag = %d, %v; want %d", lag, err, n+1)
	}
	got := collect(t, b, "test", n+1)
	if len(got) != n+1 {
		t.Fatalf("%d messages, want %d (a duplicate msg id was stored)", len(got), n+1)
	}
	checkExactlyOnce(t, got, n+1)
	for _, m := range got {
		want := "agent-1"
		if string(m.Data) == string(payload(n)) {
			want = "odd id/with.dots *"
		}
		if m.AgentID != want || m.Headers[HeaderAgent] != want {
			t.Fatalf("agent = %q, header %q; want %q", m.AgentID, m.Headers[HeaderAgent], want)
		}
		if want == "agent-1" && m.Headers["K"] != "v" {
			t.Fatalf("headers = %v", m.Headers)
		}
	}
	// Acked by the only durable: interest retention removes them.
	checkFor(t, 10*time.Second, func() error {
		if lag, err := b.Lag(ctx); err != nil || lag != 0 {
			return fmt.Errorf("Lag = %d, %v after all acked", lag, err)
		}
		return nil
	})
}

// The brief's crash: the embedded server stops without the client draining.
func TestShutdownWithoutDrain(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir, Options{})
	ctx := context.Background()
	const n = 300
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				if err := b.Publish(ctx, "agent-"+strconv.Itoa(w), "id-"+strconv.Itoa(i), payload(i), nil); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	b.srv.Shutdown() // abrupt for the client: nothing drained
	b.srv.WaitForShutdown()
	b.nc.Close()
	b.srv = nil

	b2 := open(t, dir, Options{})
	defer b2.Close()
	got := collect(t, b2, "test", n)
	if len(got) != n {
		t.Fatalf("%d messages after restart, want %d", len(got), n)
	}
	checkExactlyOnce(t, got, n)
}

// A harsher crash: a child process publishes and reports each acked batch,
// and is killed with SIGKILL mid-stream. Every batch it reported as acked
// must be in the stream when the directory is opened again.
func TestKilledPublisher(t *testing.T) {
	if os.Getenv("VIGIL_BUS_CHILD") != "" {
		t.Skip("child helper")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildPublisher$", "-test.count=1")
	cmd.Env = append(os.Environ(), "VIGIL_BUS_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if i, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "acked ")); err == nil && i == acked {
			acked++
		}
		if acked == 200 {
			_ = cmd.Process.Kill()
			break
		}
	}
	_ = cmd.Wait()
	if acked < 200 {
		t.Fatalf("child acked only %d batches", acked)
	}
	b := open(t, dir, Options{})
	defer b.Close()
	got := collect(t, b, "test", acked)
	checkExactlyOnce(t, got, acked)
	t.Logf("killed after %d acked batches; %d stored", acked, len(got))
}

func TestChildPublisher(t *testing.T) {
	dir := os.Getenv("VIGIL_BUS_CHILD")
	if dir == "" {
		t.Skip("run by TestKilledPublisher")
	}
	b := open(t, dir, Options{})
	for i := 0; ; i++ {
		if err := b.Publish(context.Background(), "agent-1", "id-"+strconv.Itoa(i), payload(i), nil); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("acked %d\n", i)
	}
}

func TestFullStreamRefuses(t *testing.T) {
	b := open(t, t.TempDir(), Options{StreamMaxBytes: 64 << 10})
	defer b.Close()
	ctx := context.Background()
	data := make([]byte, 4<<10)
	n := 0
	for ; ; n++ {
		err := b.Publish(ctx, "a", "id-"+strconv.Itoa(n), data, nil)
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n > 100 {
			t.Fatal("a 64 KiB stream took 100 messages of 4 KiB")
		}
	}
	// Consuming frees the space; publishing works again.
	collect(t, b, "test", n)
	checkFor(t, 10*time.Second, func() error {
		return b.Publish(ctx, "a", "after", data, nil)
	})
}

func TestTooLarge(t *testing.T) {
	b := open(t, t.TempDir(), Options{})
	defer b.Close()
	if err := b.Publish(context.Background(), "a", "big", make([]byte, MaxPayload+1), nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestNakRedelivers(t *testing.T) {
	b := open(t, t.TempDir(), Options{})
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := b.Publish(ctx, "a", "one", []byte("one"), nil); err != nil {
		t.Fatal(err)
	}
	deliveries := make(chan Msg, 4)
	done := make(chan error, 1)
	go func() {
		calls := 0
		done <- b.Consume(ctx, "test", 10, func(_ context.Context, ms []Msg) error {
			calls++
			deliveries <- ms[0]
			if calls == 1 {
				return errors.New("transient")
			}
			return nil
		})
	}()
	first, second := <-deliveries, <-deliveries
	if first.Seq != second.Seq || first.Delivered != 1 || second.Delivered != 2 {
		t.Fatalf("deliveries %+v then %+v; want the same sequence delivered twice", first, second)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSharedDurable(t *testing.T) {
	b := open(t, t.TempDir(), Options{})
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	const n = 400
	for i := range n {
		if err := b.Publish(ctx, "a", "id-"+strconv.Itoa(i), payload(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	perWorker := [2]int{}
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			_ = b.Consume(ctx, "test", 8, func(_ context.Context, ms []Msg) error {
				mu.Lock()
				defer mu.Unlock()
				for _, m := range ms {
					seen[m.Seq] = true
				}
				perWorker[w] += len(ms)
				time.Sleep(time.Millisecond) // let the other worker fetch too
				return nil
			})
		})
	}
	checkFor(t, 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) < n {
			return fmt.Errorf("%d of %d consumed", len(seen), n)
		}
		return nil
	})
	cancel()
	wg.Wait()
	if perWorker[0] == 0 || perWorker[1] == 0 {
		t.Errorf("work not shared: %v", perWorker)
	}
}

func TestOptionsRejected(t *testing.T) {
	ctx := context.Background()
	for name, o := range map[string]Options{
		"neither":          {Durables: []string{"d"}},
		"no durables":      {DataDir: t.TempDir()},
		"both":             {DataDir: t.TempDir(), URL: "nats://127.0.0.1:1", Durables: []string{"d"}},
		"embedded R3":      {DataDir: t.TempDir(), Replicas: 3, Durables: []string{"d"}},
		"bad durable name": {DataDir: t.TempDir(), Durables: []string{"a.b"}},
	} {
		if b, err := Open(ctx, o); err == nil {
			b.Close()
			t.Errorf("%s: Open succeeded", name)
		}
	}
}

func BenchmarkPublish(b *testing.B) {
	for _, size := range []int{1 << 10, 100 << 10} {
		b.Run(strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
			bus := open(b, b.TempDir(), Options{Durables: []string{"none"}})
			defer bus.Close()
			data := make([]byte, size)
			b.SetBytes(int64(size))
			var i int64
			var mu sync.Mutex
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					mu.Lock()
					i++
					id := strconv.FormatInt(i, 10)
					mu.Unlock()
					if err := bus.Publish(context.Background(), "a", id, data, nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
