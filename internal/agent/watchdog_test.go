package agent

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/wire"
)

// The watchdog's decisions over a sequence of samples: CPU averaged over
// the window with hysteresis (on above the budget, off under half), a
// restart after two samples in a row over the RSS limit.
func TestWatchdogDecisions(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	lim := Limits{CPUPercent: 10, CPUWindow: 20 * time.Second, SampleEvery: 5 * time.Second, RSSHardBytes: 100}
	steps := []struct {
		at        time.Duration
		cpu       float64 // cumulative seconds
		rss       int64
		wantCPU   float64 // -1: no figure yet
		throttled bool
		restart   bool
	}{
		{0, 0, 10, -1, false, false},
		{5 * time.Second, 1, 10, -1, false, false},               // 5 s: under half the window
		{10 * time.Second, 2, 10, 20, true, false},               // 20 % over 10 s: over the budget
		{15 * time.Second, 2.2, 10, 2.2 / 15 * 100, true, false}, // 14.7 %
		{20 * time.Second, 2.3, 10, 11.5, true, false},
		{25 * time.Second, 2.4, 10, 1.4 / 20 * 100, true, false},     // 7 %: between half and the budget, stays on
		{30 * time.Second, 2.45, 200, 0.45 / 20 * 100, false, false}, // 2.25 %: under half, off; RSS over once
		{35 * time.Second, 2.5, 200, 0.3 / 20 * 100, false, true},    // RSS over twice: restart
		{40 * time.Second, 2.5, 50, 0.2 / 20 * 100, false, false},
	}
	w := &watchdog{limits: lim}
	throttled := false
	for i, s := range steps {
		d := w.add(sample{at: t0.Add(s.at), cpu: s.cpu, rss: s.rss}, throttled)
		throttled = d.throttle
		if s.wantCPU < 0 && d.cpuPercent >= 0 || s.wantCPU >= 0 && (d.cpuPercent-s.wantCPU > 0.01 || s.wantCPU-d.cpuPercent > 0.01) {
			t.Errorf("step %d: cpu %.2f %%, want %.2f", i, d.cpuPercent, s.wantCPU)
		}
		if d.throttle != s.throttled || d.restart != s.restart {
			t.Errorf("step %d: throttle %v restart %v, want %v %v", i, d.throttle, d.restart, s.throttled, s.restart)
		}
	}
}

// RestartWait doubles the wait with each restart of the last hour, caps it,
// and forgets restarts older than an hour.
func TestRestartWait(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Unix(1_700_000_000, 0)
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		got, recent, err := RestartWait(dir, t0.Add(time.Duration(i)*time.Minute), 10*time.Second)
		if err != nil || got != w || recent != i {
			t.Errorf("restart %d: wait %v after %d recent (%v), want %v after %d", i, got, recent, err, w, i)
		}
	}
	if n := RecentRestarts(dir, t0.Add(10*time.Minute)); n != len(want) {
		t.Errorf("RecentRestarts = %d, want %d", n, len(want))
	}
	// An hour after the last: a fresh start.
	if got, recent, _ := RestartWait(dir, t0.Add(6*time.Minute+time.Hour), 10*time.Second); got != time.Second || recent != 0 {
		t.Errorf("after an hour: wait %v after %d", got, recent)
	}
	// A damaged file is read as far as it makes sense.
	os.WriteFile(filepath.Join(dir, restartsFile), []byte("junk\n\xff\n"), 0o600)
	if got, recent, _ := RestartWait(dir, t0, time.Minute); got != time.Second || recent != 0 {
		t.Errorf("damaged file: wait %v after %d", got, recent)
	}
}

// The real watchdog on this process: a CPU budget nobody can meet turns the
// throttle on (an agent_health event says so); an RSS limit of one byte
// stops Run with ErrRestart after a restart event. Every limit event is in
// the spool.
func TestWatchdogThrottlesAndRestarts(t *testing.T) {
	sp := testSpool(t)
	lim := Limits{CPUPercent: 1e-9, CPUWindow: 40 * time.Millisecond, SampleEvery: 10 * time.Millisecond}
	a := New(Options{Spool: sp, Sender: refuser{}, Hostname: "h", HealthEvery: time.Hour, Limits: &lim, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !a.opts.Throttle.On() {
		if time.Now().After(deadline) {
			t.Fatal("the throttle did not turn on over a budget of 1e-9 %")
		}
		for spin := time.Now(); time.Since(spin) < 5*time.Millisecond; {
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	lim.RSSHardBytes = 1
	a = New(Options{Spool: sp, Sender: refuser{}, Hostname: "h", HealthEvery: time.Hour, Limits: &lim, Logger: slog.New(slog.DiscardHandler)})
	go func() { done <- a.Run(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrRestart) {
			t.Fatalf("Run = %v, want ErrRestart", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop over the RSS limit")
	}
	recs, err := sp.Read(0, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, r := range recs {
		for _, k := range []string{"throttle_on", "throttle_off", "restart"} {
			if strings.Contains(string(r.Payload), `["EventType","`+k+`"]`) {
				kinds = append(kinds, k)
			}
		}
	}
	// The second run may turn the throttle on again before its second
	// sample on a loaded machine; the restart is always last.
	if got := strings.Join(kinds, " "); got != "throttle_on restart" && got != "throttle_on throttle_on restart" {
		t.Errorf("limit events %q, want \"throttle_on restart\"", got)
	}
	if h := a.Health(); h.RSSBytes <= 0 || h.Time.IsZero() {
		t.Errorf("health %+v", h)
	}
}

// refuser answers every batch with 503, so the spool keeps everything.
type refuser struct{}

func (refuser) SendBatch(context.Context, []byte, string) (int, []byte, time.Duration, error) {
	return 503, nil, time.Hour, nil
}

// Health: every sensor with its name and a state, the spool and counters,
// and a body the server's decoder accepts.
func TestHealth(t *testing.T) {
	sp := testSpool(t)
	s := sensorFunc{name: "fake", run: func(ctx context.Context, _ func(*event.Event)) error { <-ctx.Done(); return nil },
		health: func() wire.SensorHealth {
			return wire.SensorHealth{Mechanism: "poll", Fallback: true, Detail: "events=0"}
		}}
	a := New(Options{Spool: sp, Sensors: []Sensor{s}, Version: "test", Logger: slog.New(slog.DiscardHandler)})
	a.Record(execEvent(1))
	sp.Sync()
	h := a.Health()
	if len(h.Sensors) != 1 || h.Sensors[0].Name != "fake" || h.Sensors[0].State != wire.SensorRunning || !h.Sensors[0].Fallback ||
		h.Spool.Records != 1 || h.EventsRecorded != 1 || h.Version != "test" || h.RSSBytes <= 0 {
		t.Errorf("health %+v", h)
	}
	a.sensErr["fake"] = "boom\nrpm: database locked\x00\xff"
	if h := a.Health(); h.Sensors[0].State != wire.SensorStopped || !strings.Contains(h.Sensors[0].Detail, "boom") {
		t.Errorf("stopped sensor: %+v", h.Sensors[0])
	}
	body, err := json.Marshal(a.Health())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := wire.DecodeHealth(body); !ok || err != nil {
		t.Errorf("the server refuses the agent's health: %v\n%s", err, body)
	}
}
