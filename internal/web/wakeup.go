package web

import "sync"

// wakeup is a broadcast: every waiter's channel closes at the next Wake.
type wakeup struct {
	mu sync.Mutex
	ch chan struct{}
}

func newWakeup() *wakeup { return &wakeup{ch: make(chan struct{})} }

// C returns a channel closed at the next Wake.
func (w *wakeup) C() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch
}

// Wake releases every current waiter.
func (w *wakeup) Wake() {
	w.mu.Lock()
	close(w.ch)
	w.ch = make(chan struct{})
	w.mu.Unlock()
}

// AlertsChanged tells open alert streams to look for new and changed alerts
// now instead of at their next poll. The server calls it when a detection
// worker recorded an alert; the API calls it after each triage change.
func (s *Server) AlertsChanged() { s.alertWake.Wake() }
