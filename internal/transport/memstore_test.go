package transport_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/vigil-edr/vigil/internal/store"
	"github.com/vigil-edr/vigil/internal/transport"
)

// memStore is a stand-in until store/sqlite implements transport.Store.
type memStore struct {
	mu     sync.Mutex
	tokens map[string]transport.EnrollToken
	agents map[string]transport.Agent
}

func newMemStore() *memStore {
	return &memStore{tokens: map[string]transport.EnrollToken{}, agents: map[string]transport.Agent{}}
}

func (m *memStore) CreateEnrollToken(_ context.Context, t transport.EnrollToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens[t.ID] = t
	return nil
}

func (m *memStore) ConsumeEnrollToken(_ context.Context, id string, h []byte, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[id]
	if !ok || !bytes.Equal(t.SecretHash, h) || t.Revoked || (!t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)) || (t.MaxUses > 0 && t.Uses >= t.MaxUses) {
		return transport.ErrTokenInvalid
	}
	t.Uses++
	m.tokens[id] = t
	return nil
}

func (m *memStore) RevokeEnrollToken(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[id]
	if !ok {
		return store.ErrNotFound
	}
	t.Revoked = true
	m.tokens[id] = t
	return nil
}

func (m *memStore) ListEnrollTokens(context.Context) ([]transport.EnrollToken, error) {
	return nil, nil
}

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

func (m *memStore) RevokedAgents(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id, a := range m.agents {
		if a.Revoked {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func (m *memStore) TouchAgent(_ context.Context, id string, t time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.agents[id]
	if !ok {
		return store.ErrNotFound
	}
	a.LastSeen = t
	m.agents[id] = a
	return nil
}
