package notify

import (
	"context"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
)

// Kind is a channel type.
type Kind string

// Channel kinds.
const (
	KindWebhook    Kind = "webhook"    // generic JSON webhook, HMAC-signed
	KindEmail      Kind = "email"      // SMTP
	KindSlack      Kind = "slack"      // Slack incoming webhook
	KindTeams      Kind = "teams"      // Microsoft Teams incoming webhook (Workflows, Adaptive Card)
	KindMattermost Kind = "mattermost" // Mattermost incoming webhook
)

// Kinds lists every channel kind.
var Kinds = []Kind{KindWebhook, KindEmail, KindSlack, KindTeams, KindMattermost}

// TLSMode is how an email channel protects its SMTP connection.
type TLSMode string

// SMTP TLS modes. STARTTLS is the default and is required: a server that
// does not offer it is an error. TLSNone exists for a relay on the same
// host or network segment and must be chosen explicitly; it cannot be
// combined with a password.
const (
	TLSStartTLS TLSMode = "starttls"
	TLSImplicit TLSMode = "tls" // TLS from the first byte (port 465)
	TLSNone     TLSMode = "none"
)

// Channel is where notifications go. Secret and Password are write-only:
// they are stored and used, never shown by the API.
type Channel struct {
	ID      int64
	Name    string
	Kind    Kind
	Enabled bool

	// URL is the webhook endpoint (every kind but email). For Slack, Teams
	// and Mattermost the URL itself is a credential and is shown redacted.
	URL string
	// Secret is the webhook HMAC-SHA256 key (KindWebhook; required).
	Secret string

	// Email.
	SMTPAddr string  // host:port
	SMTPTLS  TLSMode // default TLSStartTLS
	Username string  // empty: no authentication
	Password string
	From     string   // an RFC 5322 address
	To       []string // at least one address

	CreatedAt time.Time
	UpdatedAt time.Time
}

// Route sends matching alerts to channels. Zero filter fields match every
// alert.
type Route struct {
	ID      int64
	Name    string
	Enabled bool
	// MinLevel: only alerts of this Sigma level or higher
	// (informational, low, medium, high, critical); empty matches all.
	MinLevel string
	// Tags: only alerts with at least one tag matching one of these
	// patterns (case-insensitive; * and ? are wildcards: "attack.t1059*").
	Tags []string
	// Hosts is the route's host group: only alerts on a host whose name
	// matches one of these patterns (case-insensitive; * and ?).
	Hosts []string
	// Channels receive the alert when it is created.
	Channels []int64
	// OnStateChange also sends the alert's state changes (acknowledged,
	// resolved, false positive, reopened) to Channels.
	OnStateChange bool
	// EscalateAfter, when positive, sends the alert to EscalateTo if it is
	// still new (not acknowledged or closed) this long after it was routed.
	EscalateAfter time.Duration
	EscalateTo    []int64

	CreatedAt time.Time
	UpdatedAt time.Time
}

// ChangeKind says what happened to an alert.
type ChangeKind string

// Alert change kinds recorded by the store.
const (
	ChangeCreated ChangeKind = "created"
	ChangeState   ChangeKind = "state"
)

// AlertChange is one entry of the store's alert change feed.
type AlertChange struct {
	ID       int64
	AlertID  int64
	Kind     ChangeKind
	From, To alert.State // for ChangeState
	By       string      // who changed the state
	At       time.Time
	// Alert is the alert as it is now; nil if it no longer exists.
	Alert *alert.Alert
}

// Event names the reason for a notification; it is the webhook's
// X-Vigil-Event header.
type Event string

// Notification events.
const (
	EventCreated   Event = "alert.created"
	EventEscalated Event = "alert.escalated"
	EventState     Event = "alert.state_changed"
	EventTest      Event = "test"
)

// Message is what one delivery says. It is stored as JSON in the outbox and
// rendered for the channel's format at each attempt. The strings in it are
// raw (attacker-controlled where they come from events or uploaded rules);
// formats sanitise and escape them.
type Message struct {
	Event Event     `json:"event"`
	Alert AlertInfo `json:"alert"`
	// Change is set for EventState.
	Change *StateChange `json:"change,omitempty"`
	// EscalatedAfterSeconds is set for EventEscalated: how long the alert
	// stayed unacknowledged.
	EscalatedAfterSeconds int64 `json:"escalated_after_seconds,omitempty"`
	// Route names the route that matched (empty for tests).
	Route string `json:"route,omitempty"`
}

// AlertInfo is the alert as a notification shows it.
type AlertInfo struct {
	ID        int64       `json:"id"`
	RuleID    string      `json:"rule_id"`
	RuleTitle string      `json:"rule_title"`
	Level     string      `json:"level"`
	Tags      []string    `json:"tags"`
	Host      string      `json:"host"`
	AgentID   string      `json:"agent_id"`
	State     alert.State `json:"state"`
	Count     int         `json:"count"`
	FirstSeen time.Time   `json:"first_seen"`
	LastSeen  time.Time   `json:"last_seen"`
	Fields    []Field     `json:"fields"` // the matched fields, at most MaxFields
}

// Field is one matched event field.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// StateChange is an alert's move from one state to another.
type StateChange struct {
	From alert.State `json:"from"`
	To   alert.State `json:"to"`
	By   string      `json:"by"`
}

// MaxFields bounds the matched fields a notification carries.
const MaxFields = 16

func alertInfo(a *alert.Alert) AlertInfo {
	fields := []Field{}
	for i, f := range a.Fields {
		if i == MaxFields {
			break
		}
		fields = append(fields, Field{Name: f.Name, Value: f.Value})
	}
	tags := a.Tags
	if tags == nil {
		tags = []string{}
	}
	return AlertInfo{
		ID: a.ID, RuleID: a.RuleID, RuleTitle: a.RuleTitle, Level: a.Level, Tags: tags, Host: a.Host,
		AgentID: a.AgentID, State: a.State, Count: a.Count, FirstSeen: a.FirstSeen, LastSeen: a.LastSeen,
		Fields: fields,
	}
}

// WebhookBody is the JSON document a generic webhook receives: the message
// fields plus the delivery's identity and the time of this attempt.
type WebhookBody struct {
	Version    int       `json:"version"` // 1
	DeliveryID int64     `json:"delivery_id"`
	SentAt     time.Time `json:"sent_at"`
	Message
}

// DeliveryState is where a delivery is.
type DeliveryState string

// Delivery states: pending deliveries are retried until sent or failed.
const (
	DeliveryPending DeliveryState = "pending"
	DeliverySent    DeliveryState = "sent"
	DeliveryFailed  DeliveryState = "failed"
)

// Delivery is one message to one channel in the outbox.
type Delivery struct {
	ID        int64
	ChannelID int64
	Message   Message
	State     DeliveryState
	Attempts  int       // attempts made so far
	NextAt    time.Time // when the next attempt is due (pending)
	CreatedAt time.Time
	DoneAt    time.Time // when it was sent or given up
	LastError string
}

// Escalation is a scheduled check: if the alert is still new at DueAt,
// notify the route's escalation channels.
type Escalation struct {
	ID      int64
	AlertID int64
	RouteID int64
	DueAt   time.Time
}

// Batch is one atomic step of the loop: the changes and escalations it
// consumed and what it enqueued and scheduled because of them.
type Batch struct {
	Changes     []int64 // alert change ids to delete
	Escalations []int64 // escalation ids to delete
	Deliveries  []Delivery
	Schedule    []Escalation
}

// Store is what notify needs from storage. Every method must be safe for
// concurrent use.
//
// The backend keeps an alert change feed: whenever it creates an alert
// (alert.Store.CreateAlert) or changes its state (alert.Store.SetState) it
// records an AlertChange in the same transaction, so a committed alert is
// never missed by notify. Grouped occurrences (AddOccurrence) are not
// changes.
type Store interface {
	// CreateChannel stores c and sets c.ID, c.CreatedAt and c.UpdatedAt.
	CreateChannel(ctx context.Context, c *Channel) error
	// UpdateChannel replaces the stored channel c.ID (store.ErrNotFound if
	// unknown) and sets c.UpdatedAt.
	UpdateChannel(ctx context.Context, c *Channel) error
	GetChannel(ctx context.Context, id int64) (*Channel, error)
	ListChannels(ctx context.Context) ([]Channel, error) // by id
	// DeleteChannel returns store.ErrConflict while a route names the
	// channel and store.ErrNotFound for an unknown id.
	DeleteChannel(ctx context.Context, id int64) error

	// CreateRoute and UpdateRoute return store.ErrConflict when a channel
	// id does not exist.
	CreateRoute(ctx context.Context, r *Route) error
	UpdateRoute(ctx context.Context, r *Route) error
	GetRoute(ctx context.Context, id int64) (*Route, error)
	ListRoutes(ctx context.Context) ([]Route, error) // by id
	DeleteRoute(ctx context.Context, id int64) error

	// PendingChanges returns up to limit alert changes, oldest first.
	PendingChanges(ctx context.Context, limit int) ([]AlertChange, error)
	// DueEscalations returns up to limit escalations due at or before now,
	// earliest first.
	DueEscalations(ctx context.Context, now time.Time, limit int) ([]Escalation, error)
	// Commit applies b in one durable transaction: it deletes the changes
	// and escalations, inserts the deliveries (pending, setting their ids)
	// and the scheduled escalations. If any change or escalation no longer
	// exists (another process consumed it) nothing is applied and the error
	// wraps store.ErrConflict.
	Commit(ctx context.Context, b *Batch) error
	// ClaimDeliveries returns up to limit pending deliveries due at or
	// before now, oldest due first, and moves their NextAt to now+lease in
	// the same transaction, so no one else takes them meanwhile.
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Delivery, error)
	// FinishAttempt records an attempt's outcome: d.State, d.Attempts,
	// d.NextAt, d.DoneAt and d.LastError are written.
	FinishAttempt(ctx context.Context, d *Delivery) error
	// Deliveries returns the newest deliveries first, at most limit.
	Deliveries(ctx context.Context, limit int) ([]Delivery, error)
	// PruneDeliveries deletes sent and failed deliveries done before t.
	PruneDeliveries(ctx context.Context, before time.Time) (int64, error)

	// GetAlert is alert.Store's: the current alert, or store.ErrNotFound.
	GetAlert(ctx context.Context, id int64) (*alert.Alert, error)
}

// ConfigError is a rejected channel, route or option. Its message is safe
// to show the user who sent it.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

// SendError is a failed delivery attempt. Its message is safe to show an
// administrator: it names the problem (status code, blocked address, TLS
// failure), never the secret or the response body.
type SendError struct {
	Msg string
	// Permanent: retrying cannot help (4xx, blocked address, redirect,
	// invalid configuration).
	Permanent bool
	Err       error // the underlying error, for logs
}

func (e *SendError) Error() string { return e.Msg }
func (e *SendError) Unwrap() error { return e.Err }
