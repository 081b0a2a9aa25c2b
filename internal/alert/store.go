package alert

import (
	"context"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
)

// State is where an alert is in triage.
type State string

// Alert states. New alerts may be acknowledged, resolved or closed as false
// positive; acknowledged ones resolved or closed as false positive; resolved
// and false-positive alerts are final, except that an analyst may reopen them
// (back to acknowledged).
const (
	StateNew           State = "new"
	StateAcknowledged  State = "acknowledged"
	StateResolved      State = "resolved"
	StateFalsePositive State = "false_positive"
)

// Alert is one finding shown to analysts: a rule on a host, with repeats of
// the same rule on the same host grouped into it while it is open.
type Alert struct {
	ID          int64
	RuleID      string
	RuleTitle   string
	Level       string
	Tags        []string // including ATT&CK tags (attack.tXXXX, attack.<tactic>)
	Host        string
	AgentID     string
	Correlation bool
	State       State
	Count       int // occurrences grouped into this alert
	FirstSeen   time.Time
	LastSeen    time.Time
	Fields      []event.Field // matched fields of the first occurrence
	EventIDs    []int64       // triggering events (row ids in the event store), at most MaxEvents
	Assignee    string
	StateBy     string
	StateAt     time.Time
	Reason      string // why it was closed, for false positives
}

// Comment is an analyst's note on an alert.
type Comment struct {
	ID      int64
	AlertID int64
	Author  string
	Text    string
	At      time.Time
}

// Suppression hides new occurrences of a rule on a host, or of a rule where a
// field has a value, until it expires.
type Suppression struct {
	ID        int64
	RuleID    string
	Host      string // empty: any host
	Field     string // empty: no field condition
	Value     string
	Reason    string
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Filter selects alerts. Zero fields do not filter; newest first.
type Filter struct {
	States   []State
	Host     string
	RuleID   string
	MinLevel string
	Since    time.Time
	Limit    int // default 100, at most 1,000
	Before   int64
}

// Store is what the alert stage needs from storage.
type Store interface {
	// OpenAlert returns the open (new or acknowledged) alert for rule and
	// host whose LastSeen is at or after since, or store.ErrNotFound.
	OpenAlert(ctx context.Context, ruleID, host string, since time.Time) (*Alert, error)
	CreateAlert(ctx context.Context, a *Alert) error // sets a.ID
	// AddOccurrence counts one more occurrence at t and appends event ids,
	// keeping at most maxEvents ids.
	AddOccurrence(ctx context.Context, id int64, t time.Time, eventIDs []int64, maxEvents int) error
	// WriteAlerts runs fn in one write transaction that is committed
	// durably (on disk when WriteAlerts returns nil) if fn returns nil and
	// rolled back otherwise. The Writer is valid only while fn runs; it sees
	// its own writes. Processor.RecordAll records a whole batch of findings
	// through one call.
	WriteAlerts(ctx context.Context, fn func(w Writer) error) error
	GetAlert(ctx context.Context, id int64) (*Alert, error)
	ListAlerts(ctx context.Context, f Filter) ([]Alert, error)
	// SetState changes the state only if it is still from (compare-and-set),
	// returning store.ErrConflict otherwise.
	SetState(ctx context.Context, id int64, from, to State, by string, at time.Time, reason string) error
	SetAssignee(ctx context.Context, id int64, assignee string) error
	AddComment(ctx context.Context, c *Comment) error
	Comments(ctx context.Context, alertID int64) ([]Comment, error)

	CreateSuppression(ctx context.Context, s *Suppression) error
	// ActiveSuppressions returns suppressions not expired at now.
	ActiveSuppressions(ctx context.Context, now time.Time) ([]Suppression, error)
	DeleteSuppression(ctx context.Context, id int64) error
}

// Writer is the part of Store usable inside WriteAlerts' transaction.
type Writer interface {
	// OpenAlert is Store.OpenAlert inside the transaction.
	OpenAlert(ctx context.Context, ruleID, host string, since time.Time) (*Alert, error)
	// CreateAlert is Store.CreateAlert inside the transaction, including
	// its change-feed row.
	CreateAlert(ctx context.Context, a *Alert) error
	// AddOccurrences counts n more occurrences of alert id, moves LastSeen to
	// last unless it is later already, and, when eventIDs is not nil,
	// replaces the alert's event ids with it (the caller keeps the limit).
	AddOccurrences(ctx context.Context, id int64, n int, last time.Time, eventIDs []int64) error
}
