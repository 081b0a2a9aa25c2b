package ingest

import (
	"math"
	"time"
)

// bucket is one agent's token bucket, in events.
type bucket struct {
	tokens float64
	last   time.Time
}

// take charges n events to agent's bucket. It returns 0 when they fit (and
// are taken), or the whole seconds to wait until they would. take(agent, 0)
// only checks that the bucket is not empty.
func (in *Ingester) take(agent string, n int) int {
	rate := in.opts.RatePerAgent
	if rate < 0 {
		return 0
	}
	now := in.opts.Now()
	in.mu.Lock()
	defer in.mu.Unlock()
	in.sweep(now)
	b := in.buckets[agent]
	if b == nil {
		b = &bucket{tokens: in.opts.Burst, last: now}
		in.buckets[agent] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(in.opts.Burst, b.tokens+dt*rate)
		b.last = now
	}
	need := float64(n)
	if n == 0 {
		need = 1
	}
	if need > in.opts.Burst {
		need = in.opts.Burst // a batch bigger than the bucket waits for a full bucket
	}
	if b.tokens >= need {
		b.tokens -= float64(n)
		return 0
	}
	return max(1, int(math.Ceil((need-b.tokens)/rate)))
}

// refund gives back n events charged for a batch that was not stored.
func (in *Ingester) refund(agent string, n int) {
	if in.opts.RatePerAgent < 0 {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if b := in.buckets[agent]; b != nil {
		b.tokens = math.Min(in.opts.Burst, b.tokens+float64(n))
	}
}

// sweep drops, once a minute, the buckets that have refilled: they hold no
// state a new bucket would not.
func (in *Ingester) sweep(now time.Time) {
	if now.Sub(in.lastSweep) < time.Minute {
		return
	}
	in.lastSweep = now
	full := time.Duration(in.opts.Burst / in.opts.RatePerAgent * float64(time.Second))
	for id, b := range in.buckets {
		if now.Sub(b.last) > full {
			delete(in.buckets, id)
		}
	}
}
