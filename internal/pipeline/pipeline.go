// Package pipeline is the server's detection worker: it takes event batches
// from the bus, stores the events (exactly once, by agent, boot epoch and
// sequence), runs the live rule set over the events that still need it, turns
// matches and correlation hits into alerts, and only then acknowledges the
// batch. A crash at any point means redelivery; the event store's NeedsScan
// flag makes sure a redelivered event is neither stored twice nor detected
// twice, nor skipped.
//
// Only cmd/vigil imports pipeline.
//
// # Concurrency
//
// Run may be called from several goroutines (or processes) with the same
// durable consumer name: the bus spreads batches among them. Each call keeps
// its own sigma.Matcher. Correlation state belongs to the rule set and is
// shared under the set's lock; partitioning it by group key across
// processes is a later step (see DESIGN.md).
package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/detect/correlate"
	"github.com/vigil-edr/vigil/internal/detect/sigma"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/ruleset"
)

// Message is one batch taken from the bus.
type Message struct {
	AgentID  string // from the message header set by ingest (the certificate's identity)
	Data     []byte
	Encoding string
}

// Source delivers batches. handle returning nil acknowledges the messages;
// an error makes the bus deliver them again later.
type Source interface {
	Consume(ctx context.Context, durable string, max int, handle func(context.Context, []Message) error) error
}

// Decoder reads one batch message and calls fn for every event in it. The
// event passed to fn is fresh for each call and may be kept.
type Decoder func(m Message, fn func(bootEpoch, seq uint64, ev *event.Event)) error

// Hosts names the host an agent runs on.
type Hosts interface {
	AgentHost(ctx context.Context, agentID string) (string, error)
}

// Options wire a Worker.
type Options struct {
	Source  Source
	Decode  Decoder
	Events  eventstore.Store
	Alerts  *alert.Processor
	Rules   *ruleset.Manager
	Hosts   Hosts
	Durable string // consumer name; default "detect"
	Fetch   int    // batches per fetch; default 16
	Logger  *slog.Logger
	// OnAlert, when set, is called for each rule match's alert occurrence
	// (not suppressed, not a correlation hit) once the batch group's alerts are stored; created reports
	// that it opened a new alert rather than joining an open one.
	OnAlert func(f alert.Finding, created bool, at time.Time)
	// AfterStore, when set, is called with a batch's events once they are
	// stored, before detection. An error makes the bus deliver the batch
	// again, so it must be idempotent (inventory.Recorder.AfterStore).
	AfterStore func(ctx context.Context, evs []eventstore.Stored) error
}

// Stats counts what the worker did.
type Stats struct {
	Batches, Events, Duplicates, Scanned, Matches, Alerts, Correlations uint64
}

// Worker is the detection stage.
type Worker struct {
	opts  Options
	stats struct {
		batches, events, duplicates, scanned, matches, alerts, correlations atomic.Uint64
	}
	hostMu sync.Mutex
	hosts  map[string]string
}

// DefaultDurable is the bus consumer detection workers share.
const DefaultDurable = "detect"

// New returns a Worker.
func New(opts Options) *Worker {
	if opts.Durable == "" {
		opts.Durable = DefaultDurable
	}
	if opts.Fetch <= 0 {
		opts.Fetch = 16
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Worker{opts: opts, hosts: map[string]string{}}
}

// Stats returns the counters.
func (w *Worker) Stats() Stats {
	return Stats{
		Batches: w.stats.batches.Load(), Events: w.stats.events.Load(), Duplicates: w.stats.duplicates.Load(),
		Scanned: w.stats.scanned.Load(), Matches: w.stats.matches.Load(), Alerts: w.stats.alerts.Load(),
		Correlations: w.stats.correlations.Load(),
	}
}

// Run consumes until ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	var (
		set     *ruleset.Set
		matcher *sigma.Matcher
	)
	return w.opts.Source.Consume(ctx, w.opts.Durable, w.opts.Fetch, func(ctx context.Context, msgs []Message) error {
		if cur := w.opts.Rules.Current(); cur != set {
			set, matcher = cur, cur.Engine.NewMatcher()
		}
		return w.handle(ctx, set, matcher, msgs)
	})
}

func (w *Worker) host(ctx context.Context, agentID string) string {
	w.hostMu.Lock()
	h, ok := w.hosts[agentID]
	w.hostMu.Unlock()
	if ok {
		return h
	}
	h, err := w.opts.Hosts.AgentHost(ctx, agentID)
	if err != nil {
		h = agentID // still attributable; retried on the next batch
		return h
	}
	w.hostMu.Lock()
	w.hosts[agentID] = h
	w.hostMu.Unlock()
	return h
}

func (w *Worker) handle(ctx context.Context, set *ruleset.Set, m *sigma.Matcher, msgs []Message) error {
	var stored []eventstore.Stored
	for _, msg := range msgs {
		host := w.host(ctx, msg.AgentID)
		err := w.opts.Decode(msg, func(epoch, seq uint64, ev *event.Event) {
			ev.Source = msg.AgentID
			ev.Record = seq
			stored = append(stored, eventstore.Stored{AgentID: msg.AgentID, BootEpoch: epoch, Seq: seq, Host: host, Event: ev})
		})
		if err != nil {
			// Ingest validated the batch before publishing it, so this is a
			// bug or corruption: log it and acknowledge, rather than redeliver
			// a poison message forever.
			w.opts.Logger.Error("undecodable batch dropped", "agent", msg.AgentID, "err", err)
			continue
		}
	}
	w.stats.batches.Add(uint64(len(msgs)))
	if len(stored) == 0 {
		return nil
	}
	// Store and match at the same time: SQLite works in its own goroutine
	// while this one runs the rules; the matches are kept only for events
	// the store reports as still needing detection.
	type insertResult struct {
		ins []eventstore.Inserted
		err error
	}
	done := make(chan insertResult, 1)
	go func() {
		ins, err := w.opts.Events.Insert(ctx, stored)
		done <- insertResult{ins, err}
	}()
	matches := make([][]found, len(stored))
	for i := range stored {
		for _, match := range m.Match(stored[i].Event) {
			matches[i] = append(matches[i], found1(match))
		}
	}
	res := <-done
	if res.err != nil {
		return fmt.Errorf("storing events: %w", res.err)
	}
	if w.opts.AfterStore != nil {
		if err := w.opts.AfterStore(ctx, stored); err != nil {
			return err
		}
	}
	w.stats.events.Add(uint64(len(stored)))
	scanned := make([]int64, 0, len(res.ins))
	var findings []alert.Finding
	for i, in := range res.ins {
		if in.Duplicate {
			w.stats.duplicates.Add(1)
		}
		if !in.NeedsScan {
			continue
		}
		findings = w.detect(set, &stored[i], in.ID, matches[i], findings)
		scanned = append(scanned, in.ID)
	}
	// Every alert occurrence of the batch group in one transaction.
	if len(findings) > 0 {
		recs, err := w.opts.Alerts.RecordAll(ctx, findings)
		if err != nil {
			return fmt.Errorf("recording alerts: %w", err)
		}
		now := time.Now()
		for i, r := range recs {
			switch {
			case findings[i].Correlation:
				w.stats.correlations.Add(1)
			case !r.Suppressed:
				w.stats.alerts.Add(1)
				if w.opts.OnAlert != nil {
					w.opts.OnAlert(findings[i], r.Created, now)
				}
			}
		}
	}
	if err := w.opts.Events.MarkScanned(ctx, scanned); err != nil {
		return fmt.Errorf("marking events scanned: %w", err)
	}
	w.stats.scanned.Add(uint64(len(scanned)))
	return nil
}

// found is one rule match kept until the store says the event is new.
type found struct {
	rule   *sigma.Compiled
	fields []event.Field
}

func found1(m sigma.Match) found {
	return found{rule: m.Rule, fields: append([]event.Field(nil), m.Fields...)}
}

// detect appends the findings of one new event's matches (and of the
// correlation hits they complete) to fs.
func (w *Worker) detect(set *ruleset.Set, s *eventstore.Stored, id int64, matches []found, fs []alert.Finding) []alert.Finding {
	ev := s.Event
	for _, match := range matches {
		w.stats.matches.Add(1)
		r := match.rule.Rule
		if set.Corr.Uses(r.ID) || set.Corr.Uses(r.Name) {
			set.CorrMu.Lock()
			hits := set.Corr.Observe(correlate.Observation{
				RuleID: r.ID, RuleName: r.Name, Time: ev.Time, Fields: correlate.WithAgent(ev, s.AgentID),
				Ref: correlate.Ref{Source: s.AgentID, Record: uint64(id), Time: ev.Time, Rule: r.Ref()},
			})
			set.CorrMu.Unlock()
			for i := range hits {
				fs = append(fs, hitFinding(s, &hits[i]))
			}
		}
		if !match.rule.Emit {
			continue
		}
		fs = append(fs, alert.Finding{
			RuleID: r.ID, RuleTitle: r.Title, Level: r.Level.String(), Tags: r.Tags,
			Host: s.Host, AgentID: s.AgentID, Time: eventTime(ev),
			Fields: match.fields, EventIDs: []int64{id},
		})
	}
	return fs
}

func hitFinding(s *eventstore.Stored, h *correlate.Hit) alert.Finding {
	var fields []event.Field
	for _, g := range h.GroupBy {
		fields = append(fields, event.Field{Name: g.Field, Value: g.Value})
	}
	var ids []int64
	for _, r := range h.Refs {
		ids = append(ids, int64(r.Record))
	}
	return alert.Finding{
		RuleID: h.Rule.ID, RuleTitle: h.Rule.Title, Level: h.Rule.Level.String(), Tags: h.Rule.Tags,
		Host: s.Host, AgentID: s.AgentID, Time: h.Time, Fields: fields, EventIDs: ids, Correlation: true,
	}
}

func eventTime(ev *event.Event) time.Time {
	if ev.Time.IsZero() {
		return time.Now().UTC()
	}
	return ev.Time
}
