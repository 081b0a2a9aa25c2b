package hunt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-edr/vigil/internal/detect/correlate"
	"github.com/vigil-edr/vigil/internal/detect/sigma"
	"github.com/vigil-edr/vigil/internal/event"
)

// Detection is one finding of a hunt: a rule (or correlation) and the event
// (or events) it matched.
type Detection struct {
	RuleID    string
	RuleTitle string
	Level     sigma.Level
	Tags      []string
	Time      time.Time
	Source    string // the file
	Record    uint64 // EVTX record id or line/object number
	Fields    []event.Field
	// Correlation is set for correlation hits: the group and the events.
	Correlation *correlate.Hit
}

// Sink receives detections. Run calls it from one goroutine at a time.
type Sink func(Detection) error

// Options configure a hunt.
type Options struct {
	Workers  int         // parallel files; default GOMAXPROCS
	MinLevel sigma.Level // detections below are not reported (correlation inputs still count)
	// Progress, when set, is called about every 200 ms with the bytes read so
	// far and the total.
	Progress func(done, total int64)
}

// Summary is what a hunt did.
type Summary struct {
	Files, Skipped     int // files hunted; files of no known format
	Events             uint64
	Bytes              int64
	Elapsed            time.Duration
	Detections         int
	ByLevel            map[sigma.Level]int
	ByRule             map[string]int // rule title → detections
	Warnings           int
	WarningMessages    []string // the first few, with the file
	Errors             []error  // files that could not be read at all
	CorrelationDropped uint64
}

// observation is a match kept for correlation: the event is cloned because
// readers reuse theirs.
type observation struct {
	rule *sigma.Rule
	ev   *event.Event
}

// Run hunts through files with the engine and reports detections to sink.
// It returns an error only when the sink fails or ctx is cancelled; unreadable
// files are listed in Summary.Errors and the hunt goes on.
func Run(ctx context.Context, eng *sigma.Engine, corr *correlate.Engine, files []File, opts Options, sink Sink) (*Summary, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	sum := &Summary{ByLevel: map[sigma.Level]int{}, ByRule: map[string]int{}}
	var total int64
	for _, f := range files {
		total += f.Size
	}
	start := time.Now()
	var done atomic.Int64
	var events atomic.Uint64

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex // guards sum, sink and obs
		sinkErr  error
		obs      []observation
		wg       sync.WaitGroup
		work     = make(chan File)
		progress = make(chan struct{})
	)
	emit := func(d Detection) {
		if d.Level < opts.MinLevel {
			return
		}
		sum.Detections++
		sum.ByLevel[d.Level]++
		sum.ByRule[d.RuleTitle]++
		if sinkErr == nil {
			if err := sink(d); err != nil {
				sinkErr = err
				cancel()
			}
		}
	}
	if opts.Progress != nil {
		go func() {
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-progress:
					return
				case <-t.C:
					opts.Progress(done.Load(), total)
				}
			}
		}()
	}
	for w := 0; w < opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := eng.NewMatcher()
			ev := &event.Event{}
			rs := &readers{}
			for f := range work {
				err := huntFile(ctx, rs, f, m, ev, &events, func(ms []sigma.Match, ev *event.Event) {
					mu.Lock()
					defer mu.Unlock()
					for _, x := range ms {
						r := x.Rule.Rule
						if corr != nil && (corr.Uses(r.ID) || corr.Uses(r.Name)) {
							obs = append(obs, observation{rule: r, ev: ev.Clone()})
						}
						if !x.Rule.Emit {
							continue
						}
						emit(Detection{RuleID: r.ID, RuleTitle: r.Title, Level: r.Level, Tags: r.Tags,
							Time: ev.Time, Source: ev.Source, Record: ev.Record, Fields: cloneFields(x.Fields)})
					}
				}, func(n int, msgs []string, err error) {
					mu.Lock()
					defer mu.Unlock()
					switch {
					case errors.Is(err, ErrUnknownFormat):
						sum.Skipped++
					case err != nil:
						sum.Errors = append(sum.Errors, fmt.Errorf("%s: %w", f.Path, err))
					default:
						sum.Files++
					}
					sum.Warnings += n
					for _, msg := range msgs {
						if len(sum.WarningMessages) < 50 {
							sum.WarningMessages = append(sum.WarningMessages, f.Path+": "+msg)
						}
					}
				})
				done.Add(f.Size)
				if err != nil && ctx.Err() != nil {
					return
				}
			}
		}()
	}
feed:
	for _, f := range files {
		select {
		case work <- f:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	close(progress)
	if opts.Progress != nil {
		opts.Progress(done.Load(), total)
	}

	if corr != nil && len(obs) > 0 {
		// Correlations need time order across all files.
		sort.SliceStable(obs, func(i, j int) bool { return obs[i].ev.Time.Before(obs[j].ev.Time) })
		for _, o := range obs {
			hits := corr.Observe(correlate.Observation{
				RuleID: o.rule.ID, RuleName: o.rule.Name, Time: o.ev.Time, Fields: correlate.WithAgent(o.ev, o.ev.Source),
				Ref: correlate.Ref{Source: o.ev.Source, Record: o.ev.Record, Time: o.ev.Time, Rule: o.rule.Ref()},
			})
			for i := range hits {
				h := &hits[i]
				var fields []event.Field
				for _, g := range h.GroupBy {
					fields = append(fields, event.Field{Name: g.Field, Value: g.Value})
				}
				emit(Detection{RuleID: h.Rule.ID, RuleTitle: h.Rule.Title, Level: h.Rule.Level, Tags: h.Rule.Tags,
					Time: h.Time, Source: o.ev.Source, Record: o.ev.Record, Fields: fields, Correlation: h})
			}
		}
		sum.CorrelationDropped = corr.Stats().DroppedGroups + corr.Stats().DroppedEntries
	}
	sum.Events = events.Load()
	sum.Bytes = done.Load()
	sum.Elapsed = time.Since(start)
	if sinkErr != nil {
		return sum, sinkErr
	}
	return sum, ctx.Err()
}

func cloneFields(fs []event.Field) []event.Field {
	out := make([]event.Field, len(fs))
	copy(out, fs)
	return out
}

// huntFile reads one file to the end, matching every event. report is called
// once at the end with the reader's warnings and the error that stopped it.
func huntFile(ctx context.Context, rs *readers, f File, m *sigma.Matcher, ev *event.Event,
	events *atomic.Uint64, onMatch func([]sigma.Match, *event.Event), report func(int, []string, error)) error {
	r, closer, _, err := rs.open(f)
	if err != nil {
		report(0, nil, err)
		return err
	}
	defer closer.Close()
	var n uint64
	for {
		err = r.Next(ev)
		if err != nil {
			break
		}
		n++
		if ms := m.Match(ev); len(ms) > 0 {
			onMatch(ms, ev)
		}
		if n&1023 == 0 {
			events.Add(1024)
			if ctx.Err() != nil {
				err = ctx.Err()
				break
			}
		}
	}
	events.Add(n & 1023)
	if err == io.EOF {
		err = nil
	}
	var count int
	var msgs []string
	if w, ok := r.(warner); ok {
		count, msgs = w.warnings()
	}
	report(count, msgs, err)
	return err
}
