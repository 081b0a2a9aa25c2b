package web

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/store"
	"github.com/vigil-edr/vigil/internal/transport"
)

// memStore is a small in-memory backend implementing the store interfaces
// the API sits on, for tests that do not need SQLite.
type memStore struct {
	mu       sync.Mutex
	tokens   []authz.Token
	alerts   []*alert.Alert
	comments []alert.Comment
	sups     []alert.Suppression
	events   []eventstore.Record
	agents   map[string]transport.Agent
	enroll   []transport.EnrollToken
	disabled map[string]bool
	nextID   int64
}

func newMemStore() *memStore {
	return &memStore{agents: map[string]transport.Agent{}, disabled: map[string]bool{}}
}

func (m *memStore) id() int64 { m.nextID++; return m.nextID }

// authz.Store

func (m *memStore) CreateToken(_ context.Context, t authz.Token) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.tokens {
		if o.ID == t.ID {
			return store.ErrConflict
		}
	}
	m.tokens = append(m.tokens, t)
	return nil
}

func (m *memStore) TokenByHash(_ context.Context, hash []byte) (authz.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range m.tokens {
		if string(t.Hash) == string(hash) {
			return t, nil
		}
	}
	return authz.Token{}, store.ErrNotFound
}

func (m *memStore) ListTokens(context.Context) ([]authz.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.tokens), nil
}

func (m *memStore) RevokeToken(_ context.Context, id string) error {
	return m.updateToken(id, func(t *authz.Token) { t.Revoked = true })
}

func (m *memStore) TouchToken(_ context.Context, id string, at time.Time) error {
	return m.updateToken(id, func(t *authz.Token) { t.LastUsed = at })
}

func (m *memStore) updateToken(id string, f func(*authz.Token)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.tokens {
		if m.tokens[i].ID == id {
			f(&m.tokens[i])
			return nil
		}
	}
	return store.ErrNotFound
}

// alert.Store

func (m *memStore) OpenAlert(_ context.Context, ruleID, host string, since time.Time) (*alert.Alert, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range m.alerts {
		if a.RuleID == ruleID && a.Host == host && (a.State == alert.StateNew || a.State == alert.StateAcknowledged) && !a.LastSeen.Before(since) {
			c := *a
			return &c, nil
		}
	}
	return nil, store.ErrNotFound
}

func (m *memStore) CreateAlert(_ context.Context, a *alert.Alert) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a.ID = m.id()
	c := *a
	m.alerts = append(m.alerts, &c)
	return nil
}

func (m *memStore) AddOccurrence(_ context.Context, id int64, t time.Time, ids []int64, max int) error {
	return m.updateAlert(id, func(a *alert.Alert) error {
		a.Count++
		a.LastSeen = t
		a.EventIDs = append(a.EventIDs, ids...)
		if len(a.EventIDs) > max {
			a.EventIDs = a.EventIDs[:max]
		}
		return nil
	})
}

// WriteAlerts runs fn on the store itself: the test store has no
// transactions to roll back.
func (m *memStore) WriteAlerts(_ context.Context, fn func(alert.Writer) error) error {
	return fn(m)
}

func (m *memStore) AddOccurrences(_ context.Context, id int64, n int, t time.Time, ids []int64) error {
	return m.updateAlert(id, func(a *alert.Alert) error {
		a.Count += n
		if t.After(a.LastSeen) {
			a.LastSeen = t
		}
		if ids != nil {
			a.EventIDs = slices.Clone(ids)
		}
		return nil
	})
}

func (m *memStore) GetAlert(_ context.Context, id int64) (*alert.Alert, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range m.alerts {
		if a.ID == id {
			c := *a
			return &c, nil
		}
	}
	return nil, store.ErrNotFound
}

var levelRank = map[string]int{"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

func (m *memStore) ListAlerts(_ context.Context, f alert.Filter) ([]alert.Alert, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	var out []alert.Alert
	for i := len(m.alerts) - 1; i >= 0 && len(out) < f.Limit; i-- {
		a := m.alerts[i]
		switch {
		case len(f.States) > 0 && !slices.Contains(f.States, a.State),
			f.Host != "" && a.Host != f.Host,
			f.RuleID != "" && a.RuleID != f.RuleID,
			f.MinLevel != "" && levelRank[a.Level] < levelRank[f.MinLevel],
			!f.Since.IsZero() && a.LastSeen.Before(f.Since),
			f.Before != 0 && a.ID >= f.Before:
			continue
		}
		out = append(out, *a)
	}
	return out, nil
}

func (m *memStore) SetState(_ context.Context, id int64, from, to alert.State, by string, at time.Time, reason string) error {
	return m.updateAlert(id, func(a *alert.Alert) error {
		if a.State != from {
			return store.ErrConflict
		}
		a.State, a.StateBy, a.StateAt, a.Reason = to, by, at, reason
		return nil
	})
}

func (m *memStore) SetAssignee(_ context.Context, id int64, who string) error {
	return m.updateAlert(id, func(a *alert.Alert) error { a.Assignee = who; return nil })
}

func (m *memStore) updateAlert(id int64, f func(*alert.Alert) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range m.alerts {
		if a.ID == id {
			return f(a)
		}
	}
	return store.ErrNotFound
}

func (m *memStore) AddComment(_ context.Context, c *alert.Comment) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c.ID = m.id()
	m.comments = append(m.comments, *c)
	return nil
}

func (m *memStore) Comments(_ context.Context, alertID int64) ([]alert.Comment, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []alert.Comment
	for _, c := range m.comments {
		if c.AlertID == alertID {
			out = append(out, c)
		}
	}
	return out, nil
}

func (m *memStore) CreateSuppression(_ context.Context, s *alert.Suppression) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s.ID = m.id()
	m.sups = append(m.sups, *s)
	return nil
}

func (m *memStore) ActiveSuppressions(_ context.Context, now time.Time) ([]alert.Suppression, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []alert.Suppression
	for _, s := range m.sups {
		if s.ExpiresAt.IsZero() || s.ExpiresAt.After(now) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (m *memStore) DeleteSuppression(_ context.Context, id int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, s := range m.sups {
		if s.ID == id {
			m.sups = slices.Delete(m.sups, i, i+1)
			return nil
		}
	}
	return store.ErrNotFound
}

// eventstore (the parts the API and the tests use)

func (m *memStore) Insert(_ context.Context, evs []eventstore.Stored) ([]eventstore.Inserted, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []eventstore.Inserted
	for _, s := range evs {
		id := m.id()
		m.events = append(m.events, eventstore.Record{ID: id, AgentID: s.AgentID, BootEpoch: s.BootEpoch, Seq: s.Seq,
			Host: s.Host, Time: s.Event.Time, Product: s.Event.Product, Services: s.Event.Services,
			Category: s.Event.Categories, Fields: slices.Clone(s.Event.Fields)})
		out = append(out, eventstore.Inserted{ID: id, NeedsScan: true})
	}
	return out, nil
}

func (m *memStore) Search(_ context.Context, q eventstore.Query) ([]eventstore.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 100
	}
	var out []eventstore.Record
	for i := len(m.events) - 1; i >= 0 && len(out) < q.Limit; i-- {
		e := m.events[i]
		switch {
		case q.Host != "" && e.Host != q.Host,
			q.AgentID != "" && e.AgentID != q.AgentID,
			q.Category != "" && !slices.Contains(e.Category, q.Category),
			!q.From.IsZero() && e.Time.Before(q.From),
			!q.To.IsZero() && !e.Time.Before(q.To),
			q.Before != 0 && e.ID >= q.Before,
			!matchFields(e.Fields, q.Fields, q.Text):
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

func matchFields(fs []event.Field, want []eventstore.FieldFilter, text string) bool {
	for _, w := range want {
		if !slices.ContainsFunc(fs, func(f event.Field) bool {
			return strings.EqualFold(f.Name, w.Name) && strings.EqualFold(f.Value, w.Value)
		}) {
			return false
		}
	}
	return text == "" || slices.ContainsFunc(fs, func(f event.Field) bool {
		return strings.Contains(strings.ToLower(f.Value), strings.ToLower(text))
	})
}

func (m *memStore) Get(_ context.Context, id int64) (eventstore.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.events {
		if e.ID == id {
			return e, nil
		}
	}
	return eventstore.Record{}, store.ErrNotFound
}

// transport (agents and enrolment tokens)

func (m *memStore) PutAgent(_ context.Context, a transport.Agent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.agents[a.ID] = a
	return nil
}

func (m *memStore) GetAgent(_ context.Context, id string) (transport.Agent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.agents[id]
	if !ok {
		return a, store.ErrNotFound
	}
	return a, nil
}

func (m *memStore) ListAgents(context.Context) ([]transport.Agent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []transport.Agent
	for _, a := range m.agents {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b transport.Agent) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (m *memStore) RevokeAgent(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.agents[id]
	if !ok {
		return store.ErrNotFound
	}
	a.Revoked, a.RevokedAt = true, at
	m.agents[id] = a
	return nil
}

func (m *memStore) CreateEnrollToken(_ context.Context, t transport.EnrollToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enroll = append(m.enroll, t)
	return nil
}

func (m *memStore) ListEnrollTokens(context.Context) ([]transport.EnrollToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.enroll), nil
}

func (m *memStore) RevokeEnrollToken(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.enroll {
		if m.enroll[i].ID == id {
			m.enroll[i].Revoked = true
			return nil
		}
	}
	return store.ErrNotFound
}

// ruleset.Store

func (m *memStore) DisabledRules(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for id, d := range m.disabled {
		if d {
			out = append(out, id)
		}
	}
	return out, nil
}

func (m *memStore) SetRuleEnabled(_ context.Context, id string, enabled bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.disabled[id] = !enabled
	return nil
}
