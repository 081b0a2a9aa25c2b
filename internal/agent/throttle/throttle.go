// Package throttle is the agent's back-off signal. The watchdog in package
// agent turns it on while the agent is over its CPU budget and off once it
// is well under; sensors read it on their hot paths and defer what can wait
// (hashing, inventory comparisons) or do their work in slower rounds.
//
// It imports only the standard library, so every sensor may import it.
//
// # Concurrency
//
// A Signal is safe for concurrent use. A nil *Signal is never on, so a
// sensor built without one behaves as before.
package throttle

import "sync/atomic"

// Signal says whether the agent is backing off.
type Signal struct {
	on atomic.Bool
}

// Set turns the signal on or off and reports whether that changed it.
func (s *Signal) Set(on bool) bool {
	return s.on.Swap(on) != on
}

// On reports whether sensors should back off now.
func (s *Signal) On() bool {
	return s != nil && s.on.Load()
}
