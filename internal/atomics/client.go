package atomics

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Client reads what validation needs from Vigil's REST API (/api/v1). A
// viewer token is enough: it reads alerts, events and /metrics only.
type Client struct {
	base  string
	hc    *http.Client
	token string
}

// NewClient returns a client for the server at base (https://host:port).
func NewClient(base string, hc *http.Client, token string) *Client {
	return &Client{base: strings.TrimRight(base, "/"), hc: hc, token: token}
}

// maxResponse bounds one API response body.
const maxResponse = 64 << 20

// APIError is a non-2xx answer.
type APIError struct {
	Status int
	Body   string
}

func (e *APIError) Error() string { return fmt.Sprintf("API answered %d: %s", e.Status, e.Body) }

func (c *Client) get(ctx context.Context, path string, q url.Values, into any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return err
	}
	if len(body) > maxResponse {
		return fmt.Errorf("GET %s: response larger than %d bytes", path, maxResponse)
	}
	if resp.StatusCode/100 != 2 {
		return &APIError{Status: resp.StatusCode, Body: clip(strings.TrimSpace(string(body)))}
	}
	if s, ok := into.(*string); ok {
		*s = string(body)
		return nil
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

type apiField struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type apiEvent struct {
	ID         int64      `json:"id"`
	Time       time.Time  `json:"time"`
	Categories []string   `json:"categories"`
	Fields     []apiField `json:"fields"`
}

func (e apiEvent) event() Event {
	out := Event{ID: e.ID, Time: e.Time, Categories: e.Categories, Fields: make([][2]string, len(e.Fields))}
	for i, f := range e.Fields {
		out.Fields[i] = [2]string{f.Name, f.Value}
	}
	return out
}

type apiAlert struct {
	ID        int64     `json:"id"`
	RuleID    string    `json:"rule_id"`
	RuleTitle string    `json:"rule_title"`
	Level     string    `json:"level"`
	Tags      []string  `json:"tags"`
	LastSeen  time.Time `json:"last_seen"`
	EventIDs  []int64   `json:"event_ids"`
}

// maxPages bounds a listing (1,000 items a page).
const maxPages = 100

// Alerts returns the host's alerts last seen at or after since.
func (c *Client) Alerts(ctx context.Context, host string, since time.Time) ([]Alert, error) {
	var out []Alert
	before := int64(0)
	for range maxPages {
		q := url.Values{"host": {host}, "since": {since.UTC().Format(time.RFC3339Nano)}, "limit": {"1000"}}
		if before > 0 {
			q.Set("before", strconv.FormatInt(before, 10))
		}
		var page struct {
			Items      []apiAlert `json:"items"`
			NextBefore int64      `json:"next_before"`
		}
		if err := c.get(ctx, "/api/v1/alerts", q, &page); err != nil {
			return nil, err
		}
		for _, a := range page.Items {
			out = append(out, Alert(a))
		}
		if page.NextBefore == 0 {
			return out, nil
		}
		before = page.NextBefore
	}
	return out, nil
}

// Events returns the host's events with the given field values and
// category ("" for any), stored in [from, to], newest first, at most limit.
func (c *Client) Events(ctx context.Context, host, category string, fields map[string]string, from, to time.Time, limit int) ([]Event, error) {
	q := url.Values{"host": {host}, "limit": {strconv.Itoa(limit)}}
	if category != "" {
		q.Set("category", category)
	}
	if !from.IsZero() {
		q.Set("from", from.UTC().Format(time.RFC3339Nano))
	}
	if !to.IsZero() {
		q.Set("to", to.UTC().Format(time.RFC3339Nano))
	}
	for k, v := range fields {
		q.Add("field", k+"="+v)
	}
	var page struct {
		Items []apiEvent `json:"items"`
	}
	if err := c.get(ctx, "/api/v1/events", q, &page); err != nil {
		return nil, err
	}
	out := make([]Event, len(page.Items))
	for i, e := range page.Items {
		out[i] = e.event()
	}
	return out, nil
}

// Event returns one stored event.
func (c *Client) Event(ctx context.Context, id int64) (Event, error) {
	var e apiEvent
	if err := c.get(ctx, "/api/v1/events/"+strconv.FormatInt(id, 10), nil, &e); err != nil {
		return Event{}, err
	}
	return e.event(), nil
}

// BusPending reads vigil_bus_pending_batches from /metrics: batches the
// server accepted whose detection has not finished.
func (c *Client) BusPending(ctx context.Context) (int, error) {
	var text string
	if err := c.get(ctx, "/metrics", nil, &text); err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "vigil_bus_pending_batches "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("vigil_bus_pending_batches: %w", err)
			}
			return int(f), nil
		}
	}
	return 0, fmt.Errorf("/metrics has no vigil_bus_pending_batches")
}

// Evidence is the Evidence of one host, read through c, with a cache: a
// stored event never changes.
func (c *Client) Evidence(host string) Evidence {
	return &hostEvidence{c: c, host: host, events: map[int64]Event{}}
}

type hostEvidence struct {
	c      *Client
	host   string
	mu     sync.Mutex
	events map[int64]Event
}

func (h *hostEvidence) Event(ctx context.Context, id int64) (Event, error) {
	h.mu.Lock()
	e, ok := h.events[id]
	h.mu.Unlock()
	if ok {
		return e, nil
	}
	e, err := h.c.Event(ctx, id)
	if err != nil {
		return e, err
	}
	h.mu.Lock()
	if len(h.events) > 100_000 {
		clear(h.events)
	}
	h.events[id] = e
	h.mu.Unlock()
	return e, nil
}

func (h *hostEvidence) Execs(ctx context.Context, pid string, from, to time.Time) ([]Event, error) {
	// The API's "to" is exclusive; the exec may share the event's instant.
	return h.c.Events(ctx, h.host, "process_creation", map[string]string{"ProcessId": pid}, from, to.Add(time.Millisecond), 100)
}
