package fdwait

import (
	"context"
	"time"
)

// A Pauser sleeps between a sensor's read rounds on one reused timer. The
// zero value is ready; it is used by one goroutine.
type Pauser struct{ t *time.Timer }

// Pause sleeps for d (nothing when d ≤ 0) and reports false if ctx ended
// first.
func (p *Pauser) Pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	if p.t == nil {
		p.t = time.NewTimer(d)
	} else {
		p.t.Reset(d)
	}
	select {
	case <-ctx.Done():
		p.t.Stop()
		return false
	case <-p.t.C:
		return true
	}
}
