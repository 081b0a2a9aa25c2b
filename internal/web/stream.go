package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
)

// The alert stream (GET /api/v1/alerts/stream) is Server-Sent Events
// (text/event-stream) for the alert queue:
//
//	id: 42            ← only on "alert" events: the newest alert id sent
//	event: alert      ← a new alert matching the filter; data is the alert's JSON
//	event: update     ← an alert already sent or rendered changed (state, count, assignee)
//	event: gone       ← an alert no longer matches the filter (data: {"id":N})
//	: ping            ← a heartbeat comment every StreamHeartbeat
//
// The stream starts after the alert id in the Last-Event-ID header (sent
// by a reconnecting browser) or the after parameter, so nothing is missed
// across a reconnection. It looks for changes when woken (AlertsChanged)
// and every StreamPoll otherwise, with one ListAlerts of the newest
// streamWindow alerts matching the filter (the queue page's size); changes
// further down the queue are not streamed. An older page of the queue
// passes before (its window is then the alerts below that id, the ones it
// shows) and after (its newest alert): its alerts' changes are streamed,
// and new alerts, which are never below before, are not. A connection ends after StreamMax, and the browser
// reconnects: that re-checks the session, so a signed-out or expired one
// stops receiving within that time.

const (
	defaultHeartbeat = 15 * time.Second
	defaultStreamMax = 5 * time.Minute
	defaultPoll      = time.Second
	streamWindow     = 200
)

func (s *Server) streamAlerts(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Alerts == nil {
		return notConfigured("alerts")
	}
	_, f, e := parseAlertFilter(r.URL.Query())
	if e != nil {
		return e
	}
	after := int64(0)
	for _, v := range []string{r.URL.Query().Get("after"), r.Header.Get("Last-Event-ID")} {
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return errorf(CodeBadRequest, "after and Last-Event-ID must be alert ids")
		}
		after = n // the header, sent on reconnection, wins
	}
	if v := r.URL.Query().Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return errorf(CodeBadRequest, "before must be a positive alert id")
		}
		f.Before = n
	}
	f.Limit = streamWindow
	rc := http.NewResponseController(w)
	// The server's read timeout would cut a long-lived response.
	rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 1000\n: stream of alerts after %d\n\n", after)
	if err := rc.Flush(); err != nil {
		return nil
	}

	heartbeat, maxAge, poll := s.opts.StreamHeartbeat, s.opts.StreamMax, s.opts.StreamPoll
	if heartbeat <= 0 {
		heartbeat = defaultHeartbeat
	}
	if maxAge <= 0 {
		maxAge = defaultStreamMax
	}
	if poll <= 0 {
		poll = defaultPoll
	}
	ctx := r.Context()
	end := time.NewTimer(maxAge)
	defer end.Stop()
	beat := time.NewTicker(heartbeat)
	defer beat.Stop()
	tick := time.NewTicker(poll)
	defer tick.Stop()

	seen := map[int64]string{} // id → signature of what the client has
	first := true
	for {
		wake := s.alertWake.C()
		as, err := s.opts.Alerts.ListAlerts(ctx, f)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.Warn("alert stream query", "err", err)
		} else if !s.sendChanges(w, as, &after, seen, first) {
			return nil
		}
		first = false
		if err := rc.Flush(); err != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-end.C:
			return nil
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return nil
			}
		case <-wake:
		case <-tick.C:
		}
	}
}

func signature(a *alert.Alert) string {
	return fmt.Sprintf("%s|%d|%s|%d", a.State, a.Count, a.Assignee, a.LastSeen.UnixNano())
}

// sendChanges writes the events that bring the client from seen to as. On
// the first call, alerts at or below after are what the page rendered:
// remembered, not sent. It reports false when the client is gone.
func (s *Server) sendChanges(w http.ResponseWriter, as []alert.Alert, after *int64, seen map[int64]string, first bool) bool {
	present := make(map[int64]bool, len(as))
	oldest := int64(0)
	// Oldest first, so the client prepends in order.
	for i := len(as) - 1; i >= 0; i-- {
		a := &as[i]
		present[a.ID] = true
		if oldest == 0 {
			oldest = a.ID
		}
		sig := signature(a)
		switch {
		case a.ID > *after:
			if !writeEvent(w, "alert", strconv.FormatInt(a.ID, 10), toAlertJSON(a)) {
				return false
			}
			*after = a.ID
		case first:
		case seen[a.ID] != sig:
			if !writeEvent(w, "update", "", toAlertJSON(a)) {
				return false
			}
		}
		seen[a.ID] = sig
	}
	for id := range seen {
		if !present[id] && id >= oldest {
			delete(seen, id)
			if !writeEvent(w, "gone", "", map[string]int64{"id": id}) {
				return false
			}
		} else if !present[id] {
			delete(seen, id) // fell out of the window
		}
	}
	return true
}

func writeEvent(w http.ResponseWriter, name, id string, v any) bool {
	b, err := json.Marshal(v) // one line: JSON escapes newlines
	if err != nil {
		return true
	}
	if id != "" {
		if _, err := fmt.Fprintf(w, "id: %s\n", id); err != nil {
			return false
		}
	}
	_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b)
	return err == nil
}
