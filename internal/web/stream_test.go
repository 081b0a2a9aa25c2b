package web

import (
	"bufio"
	"context"
	"fmt"
	"html"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
)

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct{ id, name, data string }

// readEvents parses the stream into ch until it ends; comments are sent
// as name ":".
func readEvents(sc *bufio.Scanner, ch chan<- sseEvent) {
	defer close(ch)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.name != "" || ev.data != "" {
				ch <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
			ch <- sseEvent{name: ":", data: line}
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = strings.TrimPrefix(line, "data: ")
		}
	}
}

func (h *harness) openStream(t *testing.T, sess testSession, query, lastID string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", h.http.URL+"/api/v1/alerts/stream"+query, nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: sess.cookie})
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := h.http.Client().Do(req)
	must(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	checkSecurityHeaders(t, "stream", resp.Header)
	ch := make(chan sseEvent, 100)
	go readEvents(bufio.NewScanner(resp.Body), ch)
	return ch
}

func next(t *testing.T, ch <-chan sseEvent, name string, within time.Duration) sseEvent {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended waiting for %q", name)
			}
			if ev.name == name {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %q event within %v", name, within)
		}
	}
}

// TestAlertStream: a new alert arrives at once when the server is woken,
// changes and departures are sent, heartbeats flow, and a reconnection
// with Last-Event-ID resumes after the last alert seen.
func TestAlertStream(t *testing.T) {
	h := newHarness(t, newMemStore(), func(o *Options) {
		o.StreamMax, o.StreamPoll, o.StreamHeartbeat = 10*time.Second, time.Hour, 50*time.Millisecond
	})
	sess := h.newSession("analyst", false)
	ch := h.openStream(t, sess, fmt.Sprintf("?after=%d", h.alertHigh), "")
	next(t, ch, ":", 2*time.Second) // the opening comment

	id, _, err := h.proc.Record(context.Background(), alert.Finding{RuleID: "rule-new", RuleTitle: "<img src=x onerror=alert(1)>", Level: "critical",
		Host: "h3", AgentID: h.agentID, Time: time.Now()})
	must(t, err)
	start := time.Now()
	h.srv.AlertsChanged()
	ev := next(t, ch, "alert", 2*time.Second)
	if ev.id != fmt.Sprint(id) || !strings.Contains(ev.data, `\u003cimg src=x`) {
		t.Fatalf("alert event: %+v", ev)
	}
	t.Logf("alert streamed %v after the wake-up", time.Since(start))

	// A change by another analyst is an update; leaving the open states is gone.
	if st, b, _ := h.do("POST", fmt.Sprintf("/api/v1/alerts/%d/assign", id), "admin", map[string]any{"assignee": "bob"}); st != 200 {
		t.Fatalf("assign: %d %s", st, b)
	}
	if ev := next(t, ch, "update", 2*time.Second); !strings.Contains(ev.data, `"assignee":"bob"`) {
		t.Errorf("update: %+v", ev)
	}
	if st, b, _ := h.do("POST", fmt.Sprintf("/api/v1/alerts/%d/state", id), "admin", map[string]any{"state": "resolved"}); st != 200 {
		t.Fatalf("resolve: %d %s", st, b)
	}
	if ev := next(t, ch, "gone", 2*time.Second); ev.data != fmt.Sprintf(`{"id":%d}`, id) {
		t.Errorf("gone: %+v", ev)
	}
	next(t, ch, ":", time.Second) // heartbeat

	// Reconnecting with Last-Event-ID of an older alert replays what came
	// after it, with the filter applied (resolved alerts are not open).
	id2, _, err := h.proc.Record(context.Background(), alert.Finding{RuleID: "rule-new2", RuleTitle: "second", Level: "low",
		Host: "h3", AgentID: h.agentID, Time: time.Now()})
	must(t, err)
	ch2 := h.openStream(t, sess, "?after=1", fmt.Sprint(h.alertHigh))
	if ev := next(t, ch2, "alert", 2*time.Second); ev.id != fmt.Sprint(id2) {
		t.Errorf("resumed stream sent %+v, want alert %d", ev, id2)
	}
}

// TestAlertStreamEnds: a stream ends after StreamMax, and without a session
// there is none.
func TestAlertStreamEnds(t *testing.T) {
	h := newHarness(t, newMemStore())
	sess := h.newSession("viewer", false)
	ch := h.openStream(t, sess, "", "")
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				goto ended
			}
		case <-deadline:
			t.Fatal("stream did not end after StreamMax")
		}
	}
ended:
	if st, _, _ := h.do("GET", "/api/v1/alerts/stream", "", nil); st != 401 {
		t.Errorf("stream without credentials: %d", st)
	}
}

// TestAlertStreamOlderPage: the stream of an older queue page (before)
// pushes another analyst's changes to the alerts that page shows, and no
// new alerts.
func TestAlertStreamOlderPage(t *testing.T) {
	h := newHarness(t, newMemStore(), func(o *Options) {
		o.StreamMax, o.StreamPoll, o.StreamHeartbeat = 10*time.Second, time.Hour, 50*time.Millisecond
	})
	newer, _, err := h.proc.Record(context.Background(), alert.Finding{RuleID: "rule-newer", RuleTitle: "newer", Level: "low",
		Host: "h3", AgentID: h.agentID, Time: time.Now()})
	must(t, err)
	// The page the console renders for ?before=newer, and its stream.
	sess := h.newSession("analyst", false)
	resp, body := h.browser(browserReq{method: "GET", path: fmt.Sprintf("/alerts?before=%d", newer), sess: &sess})
	stream := html.UnescapeString(between(body, `data-stream="`, `"`))
	if resp.StatusCode != 200 || !strings.Contains(stream, fmt.Sprintf("&before=%d", newer)) {
		t.Fatalf("older page: %d, stream %q", resp.StatusCode, stream)
	}
	ch := h.openStream(t, sess, strings.TrimPrefix(stream, "/api/v1/alerts/stream"), "")
	next(t, ch, ":", 2*time.Second) // the opening comment, written before the first snapshot
	next(t, ch, ":", 2*time.Second) // a heartbeat: the loop has taken its first snapshot

	if st, b, _ := h.do("POST", fmt.Sprintf("/api/v1/alerts/%d/assign", h.alertHigh), "admin", map[string]any{"assignee": "bob"}); st != 200 {
		t.Fatalf("assign: %d %s", st, b)
	}
	ev := next(t, ch, "update", 2*time.Second)
	if !strings.Contains(ev.data, fmt.Sprintf(`"id":%d,`, h.alertHigh)) || !strings.Contains(ev.data, `"assignee":"bob"`) {
		t.Errorf("update: %+v", ev)
	}
	_, _, err = h.proc.Record(context.Background(), alert.Finding{RuleID: "rule-newest", RuleTitle: "newest", Level: "critical",
		Host: "h3", AgentID: h.agentID, Time: time.Now()})
	must(t, err)
	h.srv.AlertsChanged()
	deadline := time.After(500 * time.Millisecond)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("stream ended")
			}
			if ev.name == "alert" {
				t.Fatalf("older page got a new alert: %+v", ev)
			}
			continue
		case <-deadline:
		}
		break
	}
	if st, _, _ := h.do("GET", "/api/v1/alerts/stream?before=x", "viewer", nil); st != 400 {
		t.Errorf("before=x: %d", st)
	}
}
