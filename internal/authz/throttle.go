package authz

import (
	"net/netip"
	"sync"
	"time"
)

// Throttle is a token bucket per key (here: per source address), bounded in
// the number of keys it tracks. It is safe for concurrent use.
type Throttle struct {
	mu      sync.Mutex
	rate    float64 // tokens per second
	burst   float64
	max     int
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// NewThrottle allows burst events at once per key and then one every
// interval; it tracks at most maxKeys keys.
func NewThrottle(burst int, interval time.Duration, maxKeys int) *Throttle {
	return &Throttle{rate: 1 / interval.Seconds(), burst: float64(burst), max: maxKeys, buckets: map[string]*bucket{}}
}

// Allow takes one token for key at now. When the table is full, buckets that
// have refilled completely (idle keys) are dropped; if none has, the new key
// is refused: under a flood from more addresses than the table holds, logins
// from new addresses wait rather than the limit being lifted.
func (t *Throttle) Allow(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buckets[key]
	if b == nil {
		if len(t.buckets) >= t.max {
			for k, o := range t.buckets {
				if o.refill(now, t.rate, t.burst) >= t.burst {
					delete(t.buckets, k)
				}
			}
			if len(t.buckets) >= t.max {
				return false
			}
		}
		b = &bucket{tokens: t.burst, at: now}
		t.buckets[key] = b
	}
	if b.refill(now, t.rate, t.burst) < 1 {
		return false
	}
	b.tokens--
	return true
}

func (b *bucket) refill(now time.Time, rate, burst float64) float64 {
	if d := now.Sub(b.at).Seconds(); d > 0 {
		b.tokens = min(burst, b.tokens+d*rate)
		b.at = now
	}
	return b.tokens
}

// AddrKey is the throttling key for a client address: the address itself for
// IPv4, its /64 for IPv6 (one host usually holds a whole /64). An unparsable
// address is its own key.
func AddrKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
