package posture

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
)

// collector keeps the events a sensor sends.
type collector struct {
	mu  sync.Mutex
	evs []*event.Event
}

func (c *collector) out(ev *event.Event) { c.mu.Lock(); c.evs = append(c.evs, ev); c.mu.Unlock() }

func (c *collector) summaries() []*event.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*event.Event
	for _, ev := range c.evs {
		if ev.HasCategory(CategorySummary) {
			out = append(out, ev)
		}
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(ev *event.Event, name string) string { v, _ := ev.Get(name); return v }

// The sensor scans at start (one sca_result per check, then the summary)
// and again when a file the policy reads changes.
func TestSensorStartAndWatch(t *testing.T) {
	root := fakeRoot(t)
	p := loadTest(t, "syntax.yml")
	s := NewSensor(SensorOptions{Policies: []*Policy{p}, WatchEvery: 20 * time.Millisecond, Eval: Options{Root: root}})
	var c collector
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, c.out) }()
	defer func() { cancel(); <-done }()

	waitFor(t, 10*time.Second, "the start scan", func() bool { return len(c.summaries()) == 1 })
	c.mu.Lock()
	first := append([]*event.Event(nil), c.evs...)
	c.mu.Unlock()
	if len(first) != len(p.Checks)+1 {
		t.Fatalf("%d events for %d checks", len(first), len(p.Checks))
	}
	sum := first[len(first)-1]
	if get(sum, "Trigger") != TriggerStart || get(sum, "PolicyId") != "test_syntax" || get(sum, "Total") != "47" || get(sum, "Applicable") != "true" {
		t.Errorf("summary %+v", sum.Fields)
	}
	r0 := first[0]
	if !r0.HasCategory(CategoryResult) || get(r0, "CheckId") != "1" || get(r0, "Status") != "passed" || get(r0, "Reason") == "" ||
		get(r0, "ScanId") != get(sum, "ScanId") || !r0.Time.Equal(sum.Time) {
		t.Errorf("first result %+v", r0.Fields)
	}
	// Check 4 reads /etc/ssh/sshd_config: make it fail.
	if err := os.WriteFile(filepath.Join(root, "etc/ssh/sshd_config"), []byte("PermitRootLogin yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a scan after the change", func() bool { return len(c.summaries()) == 2 })
	second := c.summaries()[1]
	if get(second, "Trigger") != TriggerWatch || get(second, "ScanId") == get(sum, "ScanId") {
		t.Errorf("second summary %+v", second.Fields)
	}
	c.mu.Lock()
	var check4 string
	for _, ev := range c.evs[len(first):] {
		if get(ev, "CheckId") == "4" {
			check4 = get(ev, "Status")
		}
	}
	c.mu.Unlock()
	if check4 != "failed" {
		t.Errorf("check 4 after the change: %q", check4)
	}
	if st := s.Status(); st.Scans != 2 || st.Watched == 0 {
		t.Errorf("status %s", st)
	}
}

func TestWatchedPaths(t *testing.T) {
	p := loadTest(t, "syntax.yml")
	got := WatchedPaths(p, "/")
	want := map[string]bool{"/etc/ssh/sshd_config": true, "/etc/sysctl.d": true, "/etc/debian_version": true, "/run/sysctl.d": true}
	seen := map[string]bool{}
	for _, g := range got {
		seen[g] = true
		if g == "/proc/sys/kernel/ostype" || filepath.Base(g) == "*.conf" {
			t.Errorf("watches %s", g)
		}
	}
	for w := range want {
		if !seen[w] {
			t.Errorf("does not watch %s (got %v)", w, got)
		}
	}
}
