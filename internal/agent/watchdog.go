package agent

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/wire"
)

// sample is one reading of the agent's own use of the host.
type sample struct {
	at  time.Time
	cpu float64 // seconds of CPU (user + system) since the process started
	rss int64
}

// watchdog turns samples into the throttle and restart decisions. It is
// used by the watch goroutine only.
type watchdog struct {
	limits  Limits
	samples []sample // within CPUWindow, oldest first
	overRSS int      // consecutive samples over RSSHardBytes
}

// decision is what one sample asks for.
type decision struct {
	cpuPercent float64 // over the window; -1 until two samples
	throttle   bool    // the throttle's new state
	restart    bool
}

// add takes a sample; throttled is the current state of the throttle.
func (w *watchdog) add(s sample, throttled bool) decision {
	w.samples = append(w.samples, s)
	for len(w.samples) > 2 && s.at.Sub(w.samples[1].at) >= w.limits.CPUWindow {
		w.samples = w.samples[1:]
	}
	d := decision{cpuPercent: -1, throttle: throttled}
	// Decide once the samples span half the window at least (the first
	// seconds after start, with the file baseline, are not the steady state).
	if first := w.samples[0]; len(w.samples) >= 2 && s.at.Sub(first.at) >= w.limits.CPUWindow/2 {
		d.cpuPercent = 100 * (s.cpu - first.cpu) / s.at.Sub(first.at).Seconds()
		switch {
		case d.cpuPercent > w.limits.CPUPercent:
			d.throttle = true
		case d.cpuPercent < w.limits.CPUPercent/2:
			d.throttle = false
		}
	}
	if w.limits.RSSHardBytes > 0 && s.rss > w.limits.RSSHardBytes {
		w.overRSS++
	} else {
		w.overRSS = 0
	}
	d.restart = w.overRSS >= 2
	return d
}

// watch samples the process every Limits.SampleEvery and acts on the
// watchdog's decisions until ctx ends or it asks for a restart.
func (a *Agent) watch(ctx context.Context, stop context.CancelCauseFunc) {
	w := &watchdog{limits: *a.opts.Limits}
	t := time.NewTicker(w.limits.SampleEvery)
	defer t.Stop()
	for {
		cpu, rss, err := selfUsage()
		if err != nil {
			a.opts.Logger.Warn("watchdog: cannot read the agent's own usage; limits not enforced", "err", err)
			return
		}
		d := w.add(sample{at: time.Now(), cpu: cpu, rss: rss}, a.opts.Throttle.On())
		a.rss.Store(rss)
		if d.cpuPercent >= 0 {
			a.cpuPercent.Store(math.Float64bits(d.cpuPercent))
		}
		if a.opts.Throttle.Set(d.throttle) {
			kind, msg := "throttle_off", "agent back under half its CPU budget; sensors resume"
			if d.throttle {
				kind, msg = "throttle_on", "agent over its CPU budget; sensors back off (hashing deferred, inventory postponed, audit read in slower rounds)"
			}
			a.opts.Logger.Warn(msg, "cpu_percent", d.cpuPercent, "budget_percent", w.limits.CPUPercent)
			a.limitEvent(kind, msg, d.cpuPercent, rss)
		}
		if d.restart {
			msg := fmt.Sprintf("resident memory %d bytes over the hard limit %d for two samples: restarting", rss, w.limits.RSSHardBytes)
			a.opts.Logger.Error(msg)
			a.limitEvent("restart", msg, d.cpuPercent, rss)
			stop(ErrRestart)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// limitEvent records an agent_health event about a limit.
func (a *Agent) limitEvent(kind, msg string, cpuPercent float64, rss int64) {
	ev := &event.Event{Time: time.Now().UTC(), Product: runtime.GOOS, Categories: healthCats}
	ev.Add("Hostname", a.opts.Hostname)
	ev.Add("EventType", kind)
	ev.Add("Message", msg)
	if cpuPercent >= 0 {
		ev.Add("CPUPercent", strconv.FormatFloat(cpuPercent, 'f', 2, 64))
	}
	ev.Add("CPUBudgetPercent", strconv.FormatFloat(a.opts.Limits.CPUPercent, 'f', 2, 64))
	ev.Add("RSSBytes", strconv.FormatInt(rss, 10))
	ev.Add("RSSHardBytes", strconv.FormatInt(a.opts.Limits.RSSHardBytes, 10))
	a.Record(ev)
}

// cpu is the watchdog's last CPU figure (percent of one core).
func (a *Agent) cpu() float64 { return math.Float64frombits(a.cpuPercent.Load()) }

// sensorHealth returns each sensor's health with its name and state filled
// in: stopped when Run returned an error, else what the sensor says.
func (a *Agent) sensorHealth() []wire.SensorHealth {
	out := make([]wire.SensorHealth, 0, len(a.opts.Sensors))
	for _, s := range a.opts.Sensors {
		h := s.Health()
		h.Name = s.Name()
		a.mu.Lock()
		if e := a.sensErr[s.Name()]; e != "" {
			if h.State != wire.SensorUnavailable {
				h.State = wire.SensorStopped
			}
			if !strings.Contains(h.Detail, e) {
				h.Detail += "; stopped: " + e
			}
		}
		a.mu.Unlock()
		if h.State == "" {
			h.State = wire.SensorRunning
		}
		// The server refuses control characters and long strings (an
		// error text from a tool may hold newlines).
		h.Name, h.Mechanism, h.Detail = printable(h.Name, 64), printable(h.Mechanism, 64), printable(h.Detail, 2000)
		out = append(out, h)
	}
	return out
}

// Health is the agent's state for a heartbeat (wire.Health).
func (a *Agent) Health() wire.Health {
	st := a.Stats()
	h := wire.Health{
		Time: time.Now().UTC(), Version: printable(a.opts.Version, 64), Restarts: a.opts.Restarts,
		Spool:          wire.SpoolHealth{Records: st.Spool.Depth, Bytes: st.Spool.Bytes, Dropped: st.Spool.Dropped},
		EventsRecorded: st.Appended, EventsSent: st.Sent, Sensors: a.sensorHealth(),
		CPUPercent: max(a.cpu(), 0), RSSBytes: a.rss.Load(), Throttled: a.opts.Throttle.On(),
	}
	if a.opts.Limits == nil {
		// No watchdog: figures from /proc now (the CPU as an average since
		// the process started).
		if cpu, rss, err := selfUsage(); err == nil {
			h.RSSBytes = rss
			if up := time.Since(processStart); up > 0 {
				h.CPUPercent = 100 * cpu / up.Seconds()
			}
		}
	}
	if h.Throttled {
		h.Throttle = "over the CPU budget: hashing deferred, inventory postponed, audit read in slower rounds"
	}
	return h
}

var processStart = time.Now()

// printable returns s as valid UTF-8 with control characters other than
// tab replaced by spaces, cut to at most n bytes.
func printable(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return clip(s, n)
}

// clip cuts s to at most n bytes on a UTF-8 boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}

// restartsFile, in the data directory, lists the agent's own restarts of
// the last hour, one Unix time in seconds per line.
const restartsFile = "restarts"

// RestartWait records a restart at now in dir and returns how long to wait
// before starting again: 1 s after the first restart in an hour, doubling
// with each further one, at most maxWait; and how many restarts the hour
// held before this one. A restart loop therefore slows down instead of
// spinning.
func RestartWait(dir string, now time.Time, maxWait time.Duration) (wait time.Duration, recent int, err error) {
	times := recentRestarts(dir, now)
	recent = len(times)
	wait = maxWait
	if recent < 40 {
		wait = min(time.Second<<recent, maxWait)
	}
	times = append(times, now.Unix())
	var b strings.Builder
	for _, t := range times {
		b.WriteString(strconv.FormatInt(t, 10))
		b.WriteByte('\n')
	}
	tmp := filepath.Join(dir, restartsFile+".tmp")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return wait, recent, err
	}
	return wait, recent, os.Rename(tmp, filepath.Join(dir, restartsFile))
}

// RecentRestarts returns how many restarts dir records in the hour before
// now.
func RecentRestarts(dir string, now time.Time) int { return len(recentRestarts(dir, now)) }

func recentRestarts(dir string, now time.Time) []int64 {
	b, err := os.ReadFile(filepath.Join(dir, restartsFile))
	if err != nil {
		return nil
	}
	var out []int64
	for line := range strings.SplitSeq(string(b), "\n") {
		t, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
		if err != nil {
			continue
		}
		if d := now.Sub(time.Unix(t, 0)); d >= 0 && d < time.Hour {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	if len(out) > 100 {
		out = out[len(out)-100:]
	}
	return out
}
