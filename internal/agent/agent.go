// Package agent is the endpoint agent's core: it runs the sensors, writes
// every event to the on-disk spool, and sends what the spool holds to the
// server in batches, acknowledging the spool only when the server answered
// that the batch is stored. It keeps working offline: events wait in the
// spool (bounded, drop-oldest with an exact gap count) until the server is
// back.
//
// Only cmd/vigil-agent and cmd/vigil (for `vigil up`'s in-process agent)
// import agent. It must never import server packages; a test in
// cmd/vigil-agent enforces that for the agent binary.
//
// # Spool records
//
// Each spool record is one event as the JSON object of a wire event
// without its "seq" key (wire.AppendEventObject), written once by Record.
// The sender builds a batch by putting each record's sequence number in
// front of it (wire.BatchWriter); nothing is decoded on the way out.
// Records written by agents before this format, whole wire events with
// "seq":0 first, are still read.
//
// # Self-protection
//
// With Options.Limits set, a watchdog goroutine samples the agent's CPU time
// and resident memory from /proc/self/stat every Limits.SampleEvery. Over the
// CPU budget (averaged over Limits.CPUWindow) it turns Options.Throttle on,
// which the sensors read to back off, until the average is under half the
// budget; each change is an agent_health event (EventType throttle_on,
// throttle_off). When the resident memory stays above Limits.RSSHardBytes
// for two samples, it records an agent_health event (EventType restart) and
// Run stops everything and returns ErrRestart after the final spool sync;
// the caller waits RestartWait and starts the agent again. docs/agent.md
// describes the limits.
//
// # Concurrency
//
// Each sensor runs in its own goroutine and appends to the spool (safe for
// concurrent use). One sender goroutine reads, sends and acknowledges in
// sequence order. Health is reported as an event of category agent_health
// every HealthEvery, through the same spool, so it is delivered like any
// other event; Health returns the same state for heartbeats and is safe to
// call from any goroutine.
package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/vigil-edr/vigil/internal/agent/spool"
	"github.com/vigil-edr/vigil/internal/agent/throttle"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/transport/client"
	"github.com/vigil-edr/vigil/internal/wire"
)

// Sensor produces events until its context ends.
type Sensor interface {
	Name() string
	Run(ctx context.Context, out func(*event.Event)) error
	// Health says what the sensor uses and whether it works. Name and
	// State may be left empty: the agent fills them in.
	Health() wire.SensorHealth
}

// Sender is what the agent needs from the transport client.
type Sender interface {
	SendBatch(ctx context.Context, body []byte, contentEncoding string) (status int, resp []byte, retryAfter time.Duration, err error)
}

// Options configure an Agent.
type Options struct {
	Spool       *spool.Spool
	Sender      Sender
	Sensors     []Sensor
	Hostname    string
	BatchEvents int           // default 1,000
	BatchBytes  int           // default 3 MiB of payload
	HealthEvery time.Duration // default 60 s
	MaxBackoff  time.Duration // longest wait between failed sends; default 30 s
	// SendEvery is how long the sender waits after sending a batch that was
	// not full before it sends the next one (default 1 s), so a steady
	// trickle of events costs one request and one acknowledgement fsync a
	// second rather than one per group commit.
	SendEvery time.Duration
	Logger    *slog.Logger
	// Limits turn the watchdog on (nil: off, for an agent inside another
	// program, whose process use is not the agent's alone).
	Limits *Limits
	// Throttle is the back-off signal the watchdog sets and the sensors
	// read; New makes one when nil.
	Throttle *throttle.Signal
	// Restarts is how many times the agent restarted itself in the last
	// hour, for health.
	Restarts int
	// Version is reported in health.
	Version string
	// Durable, when set, is called with the spool's boot epoch and highest
	// durable sequence number each time that advances (polled every 10 ms;
	// for tests that must know what the spool acknowledged).
	Durable func(bootEpoch, seq uint64)
}

// ErrRestart is returned by Run when the agent stopped itself because its
// resident memory stayed over Limits.RSSHardBytes: start it again after
// RestartWait.
var ErrRestart = errors.New("agent restarting: resident memory over the hard limit")

// Agent runs sensors and delivery.
type Agent struct {
	opts          Options
	appended      atomic.Uint64
	appendErrs    atomic.Uint64
	sent, batches atomic.Uint64
	sendErrs      atomic.Uint64
	truncated     atomic.Uint64 // events recorded with values cut to fit
	unusable      atomic.Uint64 // spool records skipped because they are not events
	lastDropped   uint64
	bw            wire.BatchWriter // the sender's

	mu      sync.Mutex
	sensErr map[string]string

	// The watchdog's last figures, for health.
	cpuPercent atomic.Uint64 // math.Float64bits
	rss        atomic.Int64
}

// New returns an Agent with defaults filled in.
func New(opts Options) *Agent {
	if opts.BatchEvents <= 0 {
		opts.BatchEvents = 1000
	}
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = 3 << 20
	}
	if opts.HealthEvery <= 0 {
		opts.HealthEvery = time.Minute
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.SendEvery <= 0 {
		opts.SendEvery = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Throttle == nil {
		opts.Throttle = new(throttle.Signal)
	}
	return &Agent{opts: opts, sensErr: map[string]string{}}
}

// Stats is the agent's own counters.
type Stats struct {
	Appended, AppendErrors, Sent, Batches, SendErrors uint64
	Truncated, Unusable                               uint64
	Spool                                             spool.Stats
}

// Stats returns the counters.
func (a *Agent) Stats() Stats {
	return Stats{Appended: a.appended.Load(), AppendErrors: a.appendErrs.Load(), Sent: a.sent.Load(),
		Batches: a.batches.Load(), SendErrors: a.sendErrs.Load(), Truncated: a.truncated.Load(),
		Unusable: a.unusable.Load(), Spool: a.opts.Spool.Stats()}
}

// Run starts the sensors, the sender, the health reporter and the watchdog,
// and returns when ctx ends (after a final spool sync), or with ErrRestart
// when the watchdog stopped the agent.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, s := range a.opts.Sensors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Run(ctx, a.Record)
			if err != nil && ctx.Err() == nil {
				a.opts.Logger.Warn("sensor stopped", "sensor", s.Name(), "err", err)
				a.mu.Lock()
				a.sensErr[s.Name()] = err.Error()
				a.mu.Unlock()
			}
		}()
	}
	wg.Add(2)
	go func() { defer wg.Done(); a.send(ctx) }()
	go func() { defer wg.Done(); a.health(ctx) }()
	if a.opts.Limits != nil {
		wg.Go(func() { a.watch(ctx, cancel) })
	}
	if a.opts.Durable != nil {
		wg.Go(func() { a.reportDurable(ctx) })
	}
	wg.Wait()
	err := a.opts.Spool.Sync()
	if errors.Is(context.Cause(ctx), ErrRestart) {
		return errors.Join(ErrRestart, err)
	}
	return err
}

// reportDurable calls Options.Durable when the durable sequence advances.
func (a *Agent) reportDurable(ctx context.Context) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	epoch, last := a.opts.Spool.BootEpoch(), uint64(0)
	for {
		if d := a.opts.Spool.Durable(); d > last {
			last = d
			a.opts.Durable(epoch, d)
		}
		select {
		case <-ctx.Done():
			if d := a.opts.Spool.Durable(); d > last {
				a.opts.Durable(epoch, d)
			}
			return
		case <-t.C:
		}
	}
}

// Record appends one event to the spool. It is the sensors' output function
// and safe for concurrent use; it does not keep ev.
//
// The spool record is the event's wire object without its sequence number
// (wire.AppendEventObject), so that the sender builds a batch by
// concatenating records. An event whose object would exceed the server's
// per-event limit has its longest values truncated (counted in
// Stats.Truncated) rather than making its whole batch refused.
func (a *Agent) Record(ev *event.Event) {
	bp := objBufs.Get().(*[]byte)
	obj, err := wire.AppendEventObject((*bp)[:0], ev)
	if err == nil && len(obj) > maxObject {
		obj, err = truncated(obj[:0], ev)
		if err == nil {
			a.truncated.Add(1)
		}
	}
	if err == nil {
		_, err = a.opts.Spool.Append(obj)
	}
	if cap(obj) <= 64<<10 {
		*bp = obj[:0]
		objBufs.Put(bp)
	}
	if err != nil {
		a.appendErrs.Add(1)
		return
	}
	a.appended.Add(1)
}

// objBufs holds Record's encoding buffers.
var objBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxObject is the largest object Record spools: the server's default
// per-event limit, less room for the sequence number BatchWriter adds.
const maxObject = wire.DefaultMaxEventBytes - len(`"seq":18446744073709551615,`)

// errOversize is Record's error for an event that stays too big with every
// value truncated (thousands of fields).
var errOversize = errors.New("event too large for the server even with its values truncated")

// truncated encodes ev with every value cut to a bound that makes the
// object fit maxObject, trying smaller bounds in turn.
func truncated(dst []byte, ev *event.Event) ([]byte, error) {
	cut := *ev
	cut.Fields = make([]event.Field, len(ev.Fields))
	for limit := 32 << 10; limit >= 256; limit /= 4 {
		for i, f := range ev.Fields {
			if len(f.Value) > limit {
				v := f.Value[:limit]
				for len(v) > 0 && !utf8.RuneStart(f.Value[len(v)]) {
					v = v[:len(v)-1]
				}
				f.Value = v
			}
			cut.Fields[i] = f
		}
		obj, err := wire.AppendEventObject(dst[:0], &cut)
		if err != nil || len(obj) <= maxObject {
			return obj, err
		}
		dst = obj
	}
	return dst[:0], errOversize
}

// send delivers the spool's durable records in order, forever.
func (a *Agent) send(ctx context.Context) {
	backoff := 100 * time.Millisecond
	var after uint64
	for ctx.Err() == nil {
		recs, err := a.opts.Spool.Read(after, a.opts.BatchEvents, a.opts.BatchBytes)
		if err != nil {
			a.opts.Logger.Error("spool read", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		if len(recs) == 0 {
			sleep(ctx, min(100*time.Millisecond, a.opts.SendEvery))
			continue
		}
		body, last, err := a.batch(recs)
		if err != nil {
			// Records that are not events can never be sent: skip them
			// rather than block delivery forever.
			a.opts.Logger.Error("spool records unusable, skipped", "err", err)
			a.opts.Spool.Ack(last)
			after = last
			continue
		}
		status, resp, retry, err := a.opts.Sender.SendBatch(ctx, body, "zstd")
		switch {
		case err == nil && status == http.StatusOK:
			if err := a.opts.Spool.Ack(last); err != nil {
				a.opts.Logger.Error("spool ack", "err", err)
			}
			after = last
			a.sent.Add(uint64(len(recs)))
			a.batches.Add(1)
			backoff = 100 * time.Millisecond
			if len(recs) < a.opts.BatchEvents && len(body) < a.opts.BatchBytes/2 {
				// Not a backlog: let the next batch gather.
				sleep(ctx, a.opts.SendEvery)
			}
			continue
		case err == nil && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable):
			if retry <= 0 {
				retry = backoff
			}
			sleep(ctx, retry)
			continue
		case err == nil && refusedForGood(status):
			// The server refuses this batch's content for good (a bug on
			// our side); log it and move on so one bad event cannot stop
			// delivery. Authentication problems (401, 403) are not the
			// batch's fault: they are retried below and never drop events.
			a.opts.Logger.Error("batch refused", "status", status, "resp", string(resp), "first", recs[0].Seq, "last", last)
			a.opts.Spool.Ack(last)
			after = last
			continue
		case err == nil:
			a.opts.Logger.Warn("server refused delivery; will retry", "status", status, "resp", string(resp))
		}
		a.sendErrs.Add(1)
		sleep(ctx, backoff)
		backoff = min(backoff*2, a.opts.MaxBackoff)
	}
}

// refusedForGood reports statuses that mean "this batch can never be
// accepted": malformed, too large, unsupported encoding.
func refusedForGood(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return true
	}
	return false
}

// legacyPrefix starts the spool records of agents before 2026-12: the whole
// wire event, with "seq":0 in front.
var legacyPrefix = []byte(`{"seq":0,`)

// batch builds the request body for recs. A record that is not an event
// object (it can only come from a bug) is logged and left out rather than
// blocking delivery; the error is returned only when none is usable.
func (a *Agent) batch(recs []spool.Record) ([]byte, uint64, error) {
	w := &a.bw
	w.Reset(a.opts.Spool.BootEpoch())
	last := recs[len(recs)-1].Seq
	for _, r := range recs {
		obj := r.Payload
		if bytes.HasPrefix(obj, legacyPrefix) {
			obj = obj[len(legacyPrefix)-1:]
			obj[0] = '{'
		}
		if err := w.Add(r.Seq, obj); err != nil {
			a.unusable.Add(1)
			a.opts.Logger.Error("spool record unusable, skipped", "seq", r.Seq, "err", err)
		}
	}
	if w.Len() == 0 {
		return nil, last, fmt.Errorf("records %d to %d: none is an event", recs[0].Seq, last)
	}
	body, err := w.Encode("zstd")
	return body, last, err
}

// health records an agent_health event now and every HealthEvery: sensor
// status, spool depth and drops (with a gap event when the bound dropped
// records), CPU time and RSS of the agent process.
func (a *Agent) health(ctx context.Context) {
	t := time.NewTicker(a.opts.HealthEvery)
	defer t.Stop()
	for {
		a.recordHealth()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

var healthCats = []string{"agent_health"}

func (a *Agent) recordHealth() {
	st := a.Stats()
	ev := &event.Event{Time: time.Now().UTC(), Product: runtime.GOOS, Categories: healthCats}
	ev.Add("Hostname", a.opts.Hostname)
	ev.Add("SpoolDepth", strconv.FormatUint(st.Spool.Depth, 10))
	ev.Add("SpoolBytes", strconv.FormatInt(st.Spool.Bytes, 10))
	ev.Add("SpoolDropped", strconv.FormatUint(st.Spool.Dropped, 10))
	ev.Add("EventsRecorded", strconv.FormatUint(st.Appended, 10))
	ev.Add("EventsSent", strconv.FormatUint(st.Sent, 10))
	ev.Add("SendErrors", strconv.FormatUint(st.SendErrors, 10))
	ev.Add("EventsTruncated", strconv.FormatUint(st.Truncated, 10))
	if cpu, rss, err := selfUsage(); err == nil {
		ev.Add("CPUSeconds", strconv.FormatFloat(cpu, 'f', 3, 64))
		ev.Add("RSSBytes", strconv.FormatInt(rss, 10))
	}
	if a.opts.Limits != nil {
		ev.Add("CPUPercent", strconv.FormatFloat(a.cpu(), 'f', 2, 64))
		ev.Add("Throttled", strconv.FormatBool(a.opts.Throttle.On()))
	}
	for _, s := range a.sensorHealth() {
		ev.Add("Sensor."+s.Name, s.State+" "+s.Mechanism+": "+s.Detail)
	}
	if d := st.Spool.Dropped; d > a.lastDropped {
		gap := &event.Event{Time: ev.Time, Product: runtime.GOOS, Categories: healthCats}
		gap.Add("Hostname", a.opts.Hostname)
		gap.Add("EventType", "spool_gap")
		gap.Add("DroppedEvents", strconv.FormatUint(d-a.lastDropped, 10))
		a.Record(gap)
		a.lastDropped = d
	}
	a.Record(ev)
}

// selfUsage reads this process's CPU seconds and resident bytes from /proc
// (Linux); elsewhere it returns an error.
func selfUsage() (cpuSeconds float64, rssBytes int64, err error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name (which may hold spaces) start after ')'.
	i := len(b) - 1
	for i >= 0 && b[i] != ')' {
		i--
	}
	if i < 0 {
		return 0, 0, errors.New("unexpected /proc/self/stat")
	}
	var f []string
	start := -1
	for j := i + 2; j <= len(b); j++ {
		if j == len(b) || b[j] == ' ' {
			if start >= 0 {
				f = append(f, string(b[start:j]))
			}
			start = -1
		} else if start < 0 {
			start = j
		}
	}
	// f[0] is field 3 (state): utime is field 14, stime 15, rss 24.
	if len(f) < 22 {
		return 0, 0, errors.New("short /proc/self/stat")
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	rssPages, _ := strconv.ParseInt(f[21], 10, 64)
	const ticks = 100 // USER_HZ on every Linux architecture Go supports
	return (ut + st) / ticks, rssPages * int64(os.Getpagesize()), nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// ErrNotEnrolled is returned when the agent has no identity yet.
var ErrNotEnrolled = errors.New("agent is not enrolled: run `vigil-agent enroll --server URL --token TOKEN` first")

// LoadIdentity reads the agent identity saved by enrolment.
func LoadIdentity(dir string) (*client.Identity, error) {
	id, err := client.LoadIdentity(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotEnrolled
	}
	return id, err
}
