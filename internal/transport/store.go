package transport

import (
	"context"
	"time"
)

// EnrollToken lets agents enrol. Only the SHA-256 of its secret is stored.
type EnrollToken struct {
	ID         string
	SecretHash []byte
	Note       string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	MaxUses    int // 0 means unlimited
	Uses       int
	Revoked    bool
}

// Agent is an enrolled endpoint. Its ID is the subject of its certificate.
type Agent struct {
	ID           string
	Hostname     string
	OS           string
	Arch         string
	Version      string
	CertSerial   string // hex serial of the current certificate
	CertNotAfter time.Time
	EnrolledAt   time.Time
	LastSeen     time.Time
	Revoked      bool
	RevokedAt    time.Time
	// Health is the last heartbeat's wire.Health as canonical JSON (nil
	// before the first), received at HealthAt.
	Health   []byte
	HealthAt time.Time
}

// Store is what transport needs from storage. Implementations must make
// ConsumeEnrollToken atomic: two agents racing for the last use of a token
// cannot both succeed.
type Store interface {
	CreateEnrollToken(ctx context.Context, t EnrollToken) error
	// ConsumeEnrollToken checks that the token exists, its secret hash
	// matches, it is not revoked, expired (at now) or used up, and counts one
	// use. It returns ErrTokenInvalid (wrapped or not) otherwise.
	ConsumeEnrollToken(ctx context.Context, id string, secretHash []byte, now time.Time) error
	RevokeEnrollToken(ctx context.Context, id string) error
	ListEnrollTokens(ctx context.Context) ([]EnrollToken, error)

	// PutAgent inserts or replaces the agent row.
	PutAgent(ctx context.Context, a Agent) error
	// GetAgent returns store.ErrNotFound for an unknown id.
	GetAgent(ctx context.Context, id string) (Agent, error)
	ListAgents(ctx context.Context) ([]Agent, error)
	RevokeAgent(ctx context.Context, id string, at time.Time) error
	// RevokedAgents lists the ids of revoked agents.
	RevokedAgents(ctx context.Context) ([]string, error)
	// TouchAgent records that the agent was seen at t.
	TouchAgent(ctx context.Context, id string, t time.Time) error
	// TouchAgentHealth records a heartbeat at t carrying health (JSON):
	// the agent was seen, and health replaces the stored one unless that
	// one is newer.
	TouchAgentHealth(ctx context.Context, id string, t time.Time, health []byte) error
}

// Ingester receives an authenticated agent's batch (the HTTP body as sent,
// still compressed) and answers with an HTTP status, a JSON body and extra
// headers (Retry-After for 429). The agent id comes from the verified client
// certificate, never from the body. Package ingest implements it.
type Ingester interface {
	IngestBatch(ctx context.Context, agentID string, body []byte, contentEncoding string) (status int, resp []byte, header map[string]string)
}
