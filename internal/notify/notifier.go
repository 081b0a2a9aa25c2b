package notify

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/store"
)

// Options configure a Notifier. Only Store is required.
type Options struct {
	Store Store
	// Allow is the outbound allow-list (CIDRs, addresses, host names) for
	// on-premise receivers in otherwise blocked ranges; see Policy.
	Allow []string
	// RootCAs verifies receivers' TLS certificates (webhooks and SMTP);
	// nil means the system roots.
	RootCAs *x509.CertPool
	// Timeout bounds one delivery attempt. Default 10 s.
	Timeout time.Duration
	// Poll is how often the loop looks for work when not woken. Default 1 s.
	Poll time.Duration
	// Lease is how long a claimed delivery is reserved for its attempt;
	// after a crash it is retried when the lease ends. Default 2 min; at
	// least twice Timeout.
	Lease time.Duration
	// MaxAttempts before a delivery is given up. Default 12.
	MaxAttempts int
	// Backoff is the delay after the first failed attempt; it doubles per
	// attempt up to MaxBackoff, and each delay is drawn uniformly from its
	// upper half (jitter). Defaults 10 s and 1 h.
	Backoff, MaxBackoff time.Duration
	// Parallel bounds concurrent deliveries. Default 4.
	Parallel int
	// Keep is how long sent and failed deliveries are kept. Default 7 days.
	Keep time.Duration
	// HeloName is the name given in SMTP EHLO. Default "vigil".
	HeloName string
	Logger   *slog.Logger
	Now      func() time.Time
	// Jitter returns a number in [0, 1); default math/rand/v2.Float64.
	Jitter func() float64
}

func (o Options) withDefaults() (Options, error) {
	if o.Store == nil {
		return o, &ConfigError{Msg: "notify: Options.Store is required"}
	}
	for _, d := range []struct {
		v    *time.Duration
		def  time.Duration
		name string
	}{
		{&o.Timeout, 10 * time.Second, "Timeout"}, {&o.Poll, time.Second, "Poll"},
		{&o.Backoff, 10 * time.Second, "Backoff"}, {&o.MaxBackoff, time.Hour, "MaxBackoff"},
		{&o.Keep, 7 * 24 * time.Hour, "Keep"},
	} {
		if *d.v < 0 {
			return o, &ConfigError{Msg: fmt.Sprintf("notify: %s %v is negative", d.name, *d.v)}
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if o.Lease == 0 {
		o.Lease = max(2*time.Minute, 2*o.Timeout)
	}
	if o.Lease < 2*o.Timeout {
		return o, &ConfigError{Msg: fmt.Sprintf("notify: Lease %v must be at least twice Timeout %v", o.Lease, o.Timeout)}
	}
	if o.MaxBackoff < o.Backoff {
		return o, &ConfigError{Msg: "notify: MaxBackoff is below Backoff"}
	}
	if o.MaxAttempts < 0 || o.Parallel < 0 {
		return o, &ConfigError{Msg: "notify: MaxAttempts and Parallel must not be negative"}
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 12
	}
	if o.Parallel == 0 {
		o.Parallel = 4
	}
	if o.HeloName == "" {
		o.HeloName = "vigil"
	}
	if !validHostname(o.HeloName) {
		return o, &ConfigError{Msg: "notify: HeloName is not a host name"}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Jitter == nil {
		o.Jitter = rand.Float64
	}
	return o, nil
}

// Stats counts what a Notifier did since it started.
type Stats struct {
	Routed     uint64 // alert changes routed
	Enqueued   uint64 // deliveries enqueued (alerts and escalations)
	Escalated  uint64 // escalations that fired
	Sent       uint64 // deliveries sent
	Retried    uint64 // failed attempts that will be retried
	Failed     uint64 // deliveries given up
	Blocked    uint64 // attempts refused by the address policy
	LoopErrors uint64 // storage errors in the loop (retried on the next poll)
}

// Notifier routes alerts to channels and delivers them. Create one with New.
type Notifier struct {
	opts   Options
	store  Store
	policy *Policy
	http   *http.Client

	wake     chan struct{}
	slots    chan struct{} // one per running delivery
	inflight sync.WaitGroup

	routed, enqueued, escalated, sent, retried, failed, blocked, loopErrors atomic.Uint64
}

// New checks opts and returns a Notifier; call Run to start delivering.
func New(opts Options) (*Notifier, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	p, err := NewPolicy(opts.Allow)
	if err != nil {
		return nil, err
	}
	p.timeout = opts.Timeout
	n := &Notifier{opts: opts, store: opts.Store, policy: p, wake: make(chan struct{}, 1),
		slots: make(chan struct{}, opts.Parallel)}
	n.http = newHTTPClient(p, &n.opts)
	return n, nil
}

// Stats returns the counters.
func (n *Notifier) Stats() Stats {
	return Stats{Routed: n.routed.Load(), Enqueued: n.enqueued.Load(), Escalated: n.escalated.Load(),
		Sent: n.sent.Load(), Retried: n.retried.Load(), Failed: n.failed.Load(), Blocked: n.blocked.Load(),
		LoopErrors: n.loopErrors.Load()}
}

// Wake makes the loop look for work now instead of at the next poll (for
// example right after an alert was recorded). It never blocks.
func (n *Notifier) Wake() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run routes, escalates and delivers until ctx ends, then waits for the
// attempts in flight (they are cut short by ctx; an attempt cut short is
// not counted and its delivery is retried after its lease).
func (n *Notifier) Run(ctx context.Context) error {
	t := time.NewTicker(n.opts.Poll)
	defer t.Stop()
	lastPrune := time.Time{}
	for {
		n.step(ctx)
		if now := n.opts.Now(); now.Sub(lastPrune) > time.Hour {
			if _, err := n.store.PruneDeliveries(ctx, now.Add(-n.opts.Keep)); err != nil && ctx.Err() == nil {
				n.loopError("pruning deliveries", err)
			}
			lastPrune = now
		}
		select {
		case <-ctx.Done():
			n.inflight.Wait()
			return nil
		case <-t.C:
		case <-n.wake:
		}
	}
}

func (n *Notifier) loopError(what string, err error) {
	n.loopErrors.Add(1)
	n.opts.Logger.Warn("notify: "+what, "err", err)
}

// step does everything due now: route all pending changes, fire due
// escalations, and start as many due deliveries as there are free slots.
func (n *Notifier) step(ctx context.Context) {
	for ctx.Err() == nil {
		more, err := n.routeChanges(ctx)
		if err != nil {
			if ctx.Err() == nil {
				n.loopError("routing alert changes", err)
			}
			break
		}
		if !more {
			break
		}
	}
	for ctx.Err() == nil {
		more, err := n.escalate(ctx)
		if err != nil {
			if ctx.Err() == nil {
				n.loopError("escalating", err)
			}
			break
		}
		if !more {
			break
		}
	}
	n.startDeliveries(ctx)
}

// batchSize bounds the changes or escalations handled per transaction.
const batchSize = 100

func (n *Notifier) config(ctx context.Context) ([]Route, map[int64]*Channel, error) {
	routes, err := n.store.ListRoutes(ctx)
	if err != nil {
		return nil, nil, err
	}
	chans, err := n.store.ListChannels(ctx)
	if err != nil {
		return nil, nil, err
	}
	byID := make(map[int64]*Channel, len(chans))
	for i := range chans {
		byID[chans[i].ID] = &chans[i]
	}
	return routes, byID, nil
}

// routeChanges handles one batch of alert changes. more reports a full
// batch (there may be more waiting).
func (n *Notifier) routeChanges(ctx context.Context) (more bool, err error) {
	changes, err := n.store.PendingChanges(ctx, batchSize)
	if err != nil || len(changes) == 0 {
		return false, err
	}
	routes, chans, err := n.config(ctx)
	if err != nil {
		return false, err
	}
	b := &Batch{}
	for i := range changes {
		ch := &changes[i]
		b.Changes = append(b.Changes, ch.ID)
		if ch.Alert == nil {
			continue
		}
		seen := map[int64]bool{} // one message per channel per change, however many routes match
		for ri := range routes {
			r := &routes[ri]
			if !r.Enabled || !r.Matches(ch.Alert) {
				continue
			}
			var msg Message
			switch ch.Kind {
			case ChangeCreated:
				msg = Message{Event: EventCreated, Alert: alertInfo(ch.Alert), Route: r.Name}
				if r.EscalateAfter > 0 && len(r.EscalateTo) > 0 {
					b.Schedule = append(b.Schedule, Escalation{AlertID: ch.AlertID, RouteID: r.ID, DueAt: ch.At.Add(r.EscalateAfter)})
				}
			case ChangeState:
				if !r.OnStateChange {
					continue
				}
				msg = Message{Event: EventState, Alert: alertInfo(ch.Alert), Route: r.Name,
					Change: &StateChange{From: ch.From, To: ch.To, By: ch.By}}
			default:
				continue
			}
			for _, cid := range r.Channels {
				if c := chans[cid]; c != nil && c.Enabled && !seen[cid] {
					seen[cid] = true
					b.Deliveries = append(b.Deliveries, n.newDelivery(cid, msg))
				}
			}
		}
	}
	if err := n.commit(ctx, b); err != nil {
		return false, err
	}
	n.routed.Add(uint64(len(b.Changes)))
	return len(changes) == batchSize, nil
}

func (n *Notifier) newDelivery(channel int64, m Message) Delivery {
	now := n.opts.Now()
	return Delivery{ChannelID: channel, Message: m, State: DeliveryPending, NextAt: now, CreatedAt: now}
}

// commit applies a batch; losing the race to another process is not an
// error (the next step reads what is left).
func (n *Notifier) commit(ctx context.Context, b *Batch) error {
	err := n.store.Commit(ctx, b)
	if errors.Is(err, store.ErrConflict) {
		n.opts.Logger.Debug("notify: batch consumed elsewhere; rereading", "err", err)
		return nil
	}
	if err == nil {
		n.enqueued.Add(uint64(len(b.Deliveries)))
	}
	return err
}

// escalate fires one batch of due escalations whose alert is still new.
func (n *Notifier) escalate(ctx context.Context) (more bool, err error) {
	due, err := n.store.DueEscalations(ctx, n.opts.Now(), batchSize)
	if err != nil || len(due) == 0 {
		return false, err
	}
	routes, chans, err := n.config(ctx)
	if err != nil {
		return false, err
	}
	byID := map[int64]*Route{}
	for i := range routes {
		byID[routes[i].ID] = &routes[i]
	}
	b := &Batch{}
	fired := 0
	for _, e := range due {
		b.Escalations = append(b.Escalations, e.ID)
		r := byID[e.RouteID]
		if r == nil || !r.Enabled {
			continue
		}
		a, err := n.store.GetAlert(ctx, e.AlertID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if a.State != alert.StateNew {
			continue // someone is on it
		}
		fired++
		msg := Message{Event: EventEscalated, Alert: alertInfo(a), Route: r.Name,
			EscalatedAfterSeconds: int64(r.EscalateAfter / time.Second)}
		seen := map[int64]bool{}
		for _, cid := range r.EscalateTo {
			if c := chans[cid]; c != nil && c.Enabled && !seen[cid] {
				seen[cid] = true
				b.Deliveries = append(b.Deliveries, n.newDelivery(cid, msg))
			}
		}
	}
	if err := n.commit(ctx, b); err != nil {
		return false, err
	}
	n.escalated.Add(uint64(fired))
	return len(due) == batchSize, nil
}

// startDeliveries claims as many due deliveries as there are free slots and
// attempts each on its own goroutine.
func (n *Notifier) startDeliveries(ctx context.Context) {
	free := cap(n.slots) - len(n.slots)
	if free <= 0 || ctx.Err() != nil {
		return
	}
	ds, err := n.store.ClaimDeliveries(ctx, n.opts.Now(), n.opts.Lease, free)
	if err != nil {
		if ctx.Err() == nil {
			n.loopError("claiming deliveries", err)
		}
		return
	}
	for i := range ds {
		n.slots <- struct{}{}
		n.inflight.Add(1)
		go func(d Delivery) {
			defer func() {
				<-n.slots
				n.inflight.Done()
				n.Wake() // a slot is free; more may be due
			}()
			n.attempt(ctx, &d)
		}(ds[i])
	}
}

// attempt makes one delivery attempt and records its outcome.
func (n *Notifier) attempt(ctx context.Context, d *Delivery) {
	c, err := n.store.GetChannel(ctx, d.ChannelID)
	var serr error
	switch {
	case errors.Is(err, store.ErrNotFound):
		serr = permanent(err, "the channel was deleted")
	case err != nil:
		if ctx.Err() == nil {
			n.loopError("loading a channel", err)
		}
		return // the lease runs out and the delivery is retried
	case !c.Enabled:
		serr = permanent(nil, "the channel is disabled")
	default:
		serr = n.send(ctx, c, d)
	}
	if serr != nil && ctx.Err() != nil {
		return // shutting down: not this delivery's fault; retried after the lease
	}
	now := n.opts.Now()
	d.Attempts++
	d.LastError = ""
	var se *SendError
	switch {
	case serr == nil:
		d.State, d.DoneAt = DeliverySent, now
		n.sent.Add(1)
	default:
		errors.As(serr, &se)
		d.LastError = serr.Error()
		if errors.Is(serr, ErrBlocked) {
			n.blocked.Add(1)
		}
		if (se != nil && se.Permanent) || d.Attempts >= n.opts.MaxAttempts {
			d.State, d.DoneAt = DeliveryFailed, now
			n.failed.Add(1)
			n.opts.Logger.Warn("notify: delivery failed", "delivery", d.ID, "channel", d.ChannelID, "attempts", d.Attempts, "err", serr)
		} else {
			d.NextAt = now.Add(n.backoff(d.Attempts))
			n.retried.Add(1)
			n.opts.Logger.Info("notify: delivery will be retried", "delivery", d.ID, "channel", d.ChannelID, "attempts", d.Attempts, "next", d.NextAt, "err", serr)
		}
	}
	// Recorded even when ctx ends now: the attempt happened.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := n.store.FinishAttempt(fctx, d); err != nil {
		n.loopError("recording a delivery attempt", err)
	}
}

// backoff is the delay after the given number of failed attempts:
// Backoff·2^(attempts-1), capped at MaxBackoff, drawn uniformly from the
// upper half of that so retries from many deliveries spread out.
func (n *Notifier) backoff(attempts int) time.Duration {
	d := n.opts.Backoff
	for i := 1; i < attempts && d < n.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, n.opts.MaxBackoff)
	return d/2 + time.Duration(n.opts.Jitter()*float64(d/2))
}

// SendTest sends a test message to channel id now, outside the outbox, and
// returns the attempt's error (a *SendError, safe to show an
// administrator). Disabled channels can be tested too.
func (n *Notifier) SendTest(ctx context.Context, id int64) error {
	c, err := n.store.GetChannel(ctx, id)
	if err != nil {
		return err
	}
	now := n.opts.Now()
	d := &Delivery{ChannelID: id, CreatedAt: now, Message: Message{Event: EventTest, Alert: AlertInfo{
		RuleTitle: "channel " + c.Name + " works", Level: "informational", Tags: []string{},
		State: alert.StateNew, FirstSeen: now,
	}}}
	err = n.send(ctx, c, d)
	if errors.Is(err, ErrBlocked) {
		n.blocked.Add(1)
	}
	return err
}
