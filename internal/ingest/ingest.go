package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-edr/vigil/internal/wire"
)

// Publisher stores one message durably and returns once it is stored.
// *bus.Bus implements it.
type Publisher interface {
	Publish(ctx context.Context, agentID, msgID string, data []byte, hdr map[string]string) error
}

// A Publisher's error that has a method StreamFull() bool returning true
// means the bus is full (answered 503 with a "full" message); one with
// TooLarge() bool returning true, that the message is over the bus's size
// limit (413). Package bus's ErrFull and ErrTooLarge are such errors. Every
// other error is answered 503.
type (
	fullError interface {
		error
		StreamFull() bool
	}
	tooLargeError interface {
		error
		TooLarge() bool
	}
)

// Headers set on every published message.
const (
	HeaderEncoding  = "Content-Encoding" // always "zstd": the message is a zstd wire batch
	HeaderBootEpoch = "Vigil-Boot-Epoch"
	HeaderFirstSeq  = "Vigil-First-Seq"
	HeaderLastSeq   = "Vigil-Last-Seq"
	HeaderEvents    = "Vigil-Events"
)

// Defaults for Options.
const (
	DefaultRatePerAgent   = 20000
	DefaultPublishTimeout = 10 * time.Second
	// RetryAfterUnavailable is the Retry-After, in seconds, of a 503.
	RetryAfterUnavailable = 5
)

// Options configure New.
type Options struct {
	// Bus stores accepted batches. Required.
	Bus Publisher
	// Limits for wire.Decode; zero fields take wire's defaults.
	Limits wire.Limits
	// RatePerAgent is each agent's sustained rate in events per second;
	// 0 means DefaultRatePerAgent, negative means unlimited.
	RatePerAgent float64
	// Burst is the token bucket's size in events; 0 means the larger of
	// RatePerAgent and Limits.MaxEvents, so one full batch always fits.
	Burst float64
	// PublishTimeout bounds one Publish; 0 means DefaultPublishTimeout.
	PublishTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Ingester implements transport.Ingester.
type Ingester struct {
	opts Options

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time

	batches, events, rateLimited, publishErrors atomic.Uint64
	rejected                                    []atomic.Uint64 // by index in wire.Codes
}

// New returns an Ingester. It panics if opts.Bus is nil, a wiring bug.
func New(opts Options) *Ingester {
	if opts.Bus == nil {
		panic("ingest: Options.Bus is nil")
	}
	opts.Limits = opts.Limits.WithDefaults()
	if opts.RatePerAgent == 0 {
		opts.RatePerAgent = DefaultRatePerAgent
	}
	if opts.Burst <= 0 {
		opts.Burst = math.Max(opts.RatePerAgent, float64(opts.Limits.MaxEvents))
	}
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = DefaultPublishTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Ingester{opts: opts, buckets: map[string]*bucket{}, rejected: make([]atomic.Uint64, len(wire.Codes))}
}

type accepted struct {
	Accepted int    `json:"accepted"`
	MaxSeq   uint64 `json:"max_seq"`
}

// IngestBatch checks, rate-limits and publishes one batch. agentID is the
// verified certificate's identity. See the package documentation for the
// answers.
func (in *Ingester) IngestBatch(ctx context.Context, agentID string, body []byte, contentEncoding string) (int, []byte, map[string]string) {
	if agentID == "" {
		return in.refuse(&wire.Error{Code: wire.CodeInternal, Message: "no agent identity"}, 0)
	}
	// An agent already over its rate is refused before its body costs a decode.
	if wait := in.take(agentID, 0); wait > 0 {
		in.rateLimited.Add(1)
		return in.refuse(&wire.Error{Code: wire.CodeRateLimited, Message: "event rate over the agent's limit"}, wait)
	}
	// A zstd body is published as it came, so checking it is enough (the
	// detection worker decodes it); anything else is decoded and re-encoded
	// as zstd, the one encoding of bus messages.
	var (
		sum wire.Summary
		err error
	)
	data := body
	if strings.EqualFold(strings.TrimSpace(contentEncoding), "zstd") {
		sum, err = wire.Check(body, contentEncoding, in.opts.Limits)
	} else {
		var b *wire.Batch
		if b, err = wire.Decode(body, contentEncoding, in.opts.Limits); err == nil {
			sum = wire.Summary{BootEpoch: b.BootEpoch, Events: len(b.Events), FirstSeq: b.FirstSeq(), LastSeq: b.LastSeq()}
			if data, err = wire.Encode(b, "zstd"); err != nil {
				return in.refuse(&wire.Error{Code: wire.CodeInternal, Message: "re-encoding failed"}, 0)
			}
		}
	}
	if err != nil {
		var we *wire.Error
		if !errors.As(err, &we) {
			we = &wire.Error{Code: wire.CodeInternal, Message: "decode failed"}
		}
		return in.refuse(we, 0)
	}
	n := sum.Events
	if wait := in.take(agentID, n); wait > 0 {
		in.rateLimited.Add(1)
		return in.refuse(&wire.Error{Code: wire.CodeRateLimited, Message: "event rate over the agent's limit of " +
			strconv.FormatFloat(in.opts.RatePerAgent, 'f', -1, 64) + " events/s"}, wait)
	}
	first, last := sum.FirstSeq, sum.LastSeq
	hash := sha256.Sum256(body)
	epoch := strconv.FormatUint(sum.BootEpoch, 10)
	firstS, lastS := strconv.FormatUint(first, 10), strconv.FormatUint(last, 10)
	msgID := agentID + ":" + epoch + ":" + firstS + ":" + lastS + ":" + hex.EncodeToString(hash[:8])
	hdr := map[string]string{
		HeaderEncoding:  "zstd",
		HeaderBootEpoch: epoch,
		HeaderFirstSeq:  firstS,
		HeaderLastSeq:   lastS,
		HeaderEvents:    strconv.Itoa(n),
	}
	pctx, cancel := context.WithTimeout(ctx, in.opts.PublishTimeout)
	err = in.opts.Bus.Publish(pctx, agentID, msgID, data, hdr)
	cancel()
	if err != nil {
		in.publishErrors.Add(1)
		in.refund(agentID, n)
		msg := "the event bus is unavailable; retry later"
		if fe, ok := errors.AsType[fullError](err); ok && fe.StreamFull() {
			msg = "the event stream is full; retry later"
		}
		if te, ok := errors.AsType[tooLargeError](err); ok && te.TooLarge() {
			return in.refuse(&wire.Error{Code: wire.CodeTooLarge, Message: "the batch is too large for the event bus; send smaller batches"}, 0)
		}
		return in.refuse(&wire.Error{Code: wire.CodeUnavailable, Message: msg}, RetryAfterUnavailable)
	}
	in.batches.Add(1)
	in.events.Add(uint64(n))
	resp, _ := json.Marshal(accepted{Accepted: n, MaxSeq: last})
	return http.StatusOK, resp, nil
}

func (in *Ingester) refuse(e *wire.Error, retryAfter int) (int, []byte, map[string]string) {
	if i, ok := codeIndex()[e.Code]; ok {
		in.rejected[i].Add(1)
	}
	resp, _ := json.Marshal(e)
	var h map[string]string
	if retryAfter > 0 {
		h = map[string]string{"Retry-After": strconv.Itoa(retryAfter)}
	}
	return e.Status(), resp, h
}

var codeIndex = sync.OnceValue(func() map[wire.Code]int {
	m := make(map[wire.Code]int, len(wire.Codes))
	for i, c := range wire.Codes {
		m[c] = i
	}
	return m
})

// Metrics is a snapshot of the counters.
type Metrics struct {
	Batches       uint64               // batches published
	Events        uint64               // events in them
	RateLimited   uint64               // batches refused with 429 (also counted in Rejected)
	PublishErrors uint64               // publishes that failed (answered 503 or 413)
	Rejected      map[wire.Code]uint64 // refused batches by code
}

// Metrics returns the counters since New.
func (in *Ingester) Metrics() Metrics {
	m := Metrics{
		Batches:       in.batches.Load(),
		Events:        in.events.Load(),
		RateLimited:   in.rateLimited.Load(),
		PublishErrors: in.publishErrors.Load(),
		Rejected:      make(map[wire.Code]uint64, len(wire.Codes)),
	}
	for i, c := range wire.Codes {
		m.Rejected[c] = in.rejected[i].Load()
	}
	return m
}
