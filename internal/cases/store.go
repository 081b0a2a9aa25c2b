package cases

import (
	"context"
	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/audit"
	"github.com/vigil-edr/vigil/internal/eventstore"
)

// Store is what the case service needs from storage. Every write is one
// transaction: a change and the timeline entries describing it are stored
// together or not at all, durably (on disk when the call returns).
// Methods return store.ErrNotFound for an unknown case and
// store.ErrConflict for a lost compare-and-set, wrapped.
type Store interface {
	// CreateCase stores c with its AlertIDs and the entries, setting c.ID,
	// c.Version (to 1) and each entry's CaseID.
	CreateCase(ctx context.Context, c *Case, entries []Entry) error
	GetCase(ctx context.Context, id int64) (*Case, error)
	// ListCases returns the cases matching f, highest id first.
	ListCases(ctx context.Context, f Filter) ([]Case, error)
	// UpdateCase writes every field of c if the stored version is still
	// c.Version (else store.ErrConflict), adds the ids of c.AlertIDs not yet
	// in the case (alerts are never removed), appends the entries and
	// increments c.Version.
	UpdateCase(ctx context.Context, c *Case, entries []Entry) error

	// AddCaseComment stores the comment and its timeline entry, setting
	// c.ID, and sets the case's UpdatedAt to c.At.
	AddCaseComment(ctx context.Context, c *Comment, e Entry) error
	// CaseComments returns a case's comments, oldest first.
	CaseComments(ctx context.Context, caseID int64) ([]Comment, error)
	// AddCaseEvidence stores the item and its timeline entry, setting
	// ev.ID, and sets the case's UpdatedAt to ev.AddedAt. The same (kind,
	// ref) twice in one case is store.ErrConflict.
	AddCaseEvidence(ctx context.Context, ev *Evidence, e Entry) error
	// CaseEvidence returns a case's evidence, oldest first.
	CaseEvidence(ctx context.Context, caseID int64) ([]Evidence, error)
	// CaseTimeline returns a case's stored entries, oldest first.
	CaseTimeline(ctx context.Context, caseID int64) ([]Entry, error)

	// PutCaseFile stores an uploaded file's content under sum, its SHA-256
	// in lower-case hex; storing the same sum again is a no-op.
	PutCaseFile(ctx context.Context, sum string, data []byte) error
	// CaseFile returns the content stored under sum, or store.ErrNotFound.
	CaseFile(ctx context.Context, sum string) ([]byte, error)
}

// Alerts is how the service reads the alerts a case holds; alert.Store
// satisfies it.
type Alerts interface {
	// GetAlert returns store.ErrNotFound for an unknown id.
	GetAlert(ctx context.Context, id int64) (*alert.Alert, error)
}

// Events is how the service reads the events of a case's alerts;
// eventstore.Store satisfies it.
type Events interface {
	// Get returns store.ErrNotFound for an unknown (or expired) id.
	Get(ctx context.Context, id int64) (eventstore.Record, error)
}

// Auditor receives every state change the service makes, after it is
// committed: one entry per timeline entry, Action "case." + the entry kind
// (case.created, case.status, case.awareness, …), Target "case:<id>".
// *audit.Log (the hash-chained audit log) satisfies it; Options.Audit may be
// nil in tests that do not look at it.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
}

type sourceKey struct{}

// WithAuditSource returns a context whose changes are audited as coming
// from source (the client's IP address; "local" for the CLI).
func WithAuditSource(ctx context.Context, source string) context.Context {
	return context.WithValue(ctx, sourceKey{}, source)
}

func auditSource(ctx context.Context) string {
	s, _ := ctx.Value(sourceKey{}).(string)
	return s
}
