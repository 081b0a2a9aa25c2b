package cases

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/audit"
	"github.com/vigil-edr/vigil/internal/store"
)

// Options configure a Service.
type Options struct {
	Store  Store  // required
	Alerts Alerts // required: cases are made from alerts
	// Events, if set, adds the alerts' events to timelines and reports and
	// lets evidence refer to events.
	Events Events
	// Audit, if set, receives every committed change.
	Audit Auditor
	// MaxFileBytes bounds an uploaded file. Default 32 MiB.
	MaxFileBytes int64
	// MaxTimelineEvents bounds the events a timeline or report reads.
	// Default 1,000.
	MaxTimelineEvents int
	// ClockSkew is how far in the future a given awareness or sent time may
	// be (clocks of the people entering them differ). Default 5 minutes.
	ClockSkew time.Duration
	Now       func() time.Time
}

// Service manages cases. It is safe for concurrent use: every change is a
// read, a validated edit and a compare-and-set write, so two analysts
// editing one case at once get store.ErrConflict for the later write, never
// a lost update.
type Service struct {
	opts Options
}

// NewService returns a Service with defaults filled in. It panics without
// a Store or Alerts (a wiring error).
func NewService(opts Options) *Service {
	if opts.Store == nil || opts.Alerts == nil {
		panic("cases: Options.Store and Options.Alerts are required")
	}
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = 32 << 20
	}
	if opts.MaxTimelineEvents <= 0 {
		opts.MaxTimelineEvents = 1000
	}
	if opts.ClockSkew <= 0 {
		opts.ClockSkew = 5 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{opts: opts}
}

// MaxFileBytes is the upload limit.
func (s *Service) MaxFileBytes() int64 { return s.opts.MaxFileBytes }

func (s *Service) now() time.Time { return s.opts.Now().UTC() }

// NewCase is what creating a case takes.
type NewCase struct {
	Title    string
	Severity Severity // empty: the highest level among the alerts
	Assignee string
	AlertIDs []int64 // at least one
}

// Create opens a case from one or more alerts.
func (s *Service) Create(ctx context.Context, n NewCase, by string) (*Case, error) {
	if err := checkActor(by); err != nil {
		return nil, err
	}
	if err := checkText("title", n.Title, MaxTitle, true, false); err != nil {
		return nil, err
	}
	if err := checkText("assignee", n.Assignee, MaxName, false, false); err != nil {
		return nil, err
	}
	if n.Severity != "" {
		if _, err := ParseSeverity(string(n.Severity)); err != nil {
			return nil, err
		}
	}
	ids, err := dedupeIDs(n.AlertIDs, true)
	if err != nil {
		return nil, err
	}
	as, err := s.loadAlerts(ctx, ids)
	if err != nil {
		return nil, err
	}
	now := s.now()
	c := &Case{
		Title: n.Title, Severity: n.Severity, Status: StatusOpen, Assignee: n.Assignee,
		CreatedBy: by, CreatedAt: now, UpdatedAt: now, StatusBy: by, StatusAt: now, AlertIDs: ids,
		Sent: map[Notice]time.Time{},
	}
	if c.Severity == "" {
		c.Severity = SeverityLow
		for _, a := range as {
			if sv := severityOfLevel(a.Level); sv.rank() > c.Severity.rank() {
				c.Severity = sv
			}
		}
	}
	entries := []Entry{
		{At: now, Actor: by, Kind: EntryCreated, Detail: fmt.Sprintf("case opened, severity %s", c.Severity)},
		{At: now, Actor: by, Kind: EntryAlertsAdded, Detail: "alerts " + alertList(as)},
	}
	if c.Assignee != "" {
		entries = append(entries, Entry{At: now, Actor: by, Kind: EntryAssignee, Detail: "assigned to " + c.Assignee})
	}
	if err := s.opts.Store.CreateCase(ctx, c, entries); err != nil {
		return nil, fmt.Errorf("creating case: %w", err)
	}
	return c, s.audit(ctx, c.ID, entries)
}

// AddAlerts adds alerts to a case; ones it already holds are ignored.
func (s *Service) AddAlerts(ctx context.Context, id int64, alertIDs []int64, by string) (*Case, error) {
	if err := checkActor(by); err != nil {
		return nil, err
	}
	ids, err := dedupeIDs(alertIDs, true)
	if err != nil {
		return nil, err
	}
	c, err := s.opts.Store.GetCase(ctx, id)
	if err != nil {
		return nil, err
	}
	var fresh []int64
	for _, a := range ids {
		if !slices.Contains(c.AlertIDs, a) {
			fresh = append(fresh, a)
		}
	}
	if len(fresh) == 0 {
		return c, nil
	}
	if len(c.AlertIDs)+len(fresh) > MaxAlerts {
		return nil, userErrorf("a case holds at most %d alerts", MaxAlerts)
	}
	as, err := s.loadAlerts(ctx, fresh)
	if err != nil {
		return nil, err
	}
	now := s.now()
	c.AlertIDs = append(c.AlertIDs, fresh...)
	c.UpdatedAt = now
	entries := []Entry{{At: now, Actor: by, Kind: EntryAlertsAdded, Detail: "alerts " + alertList(as)}}
	if err := s.opts.Store.UpdateCase(ctx, c, entries); err != nil {
		return nil, fmt.Errorf("adding alerts to case %d: %w", id, err)
	}
	return c, s.audit(ctx, c.ID, entries)
}

// Change is an edit of a case; nil fields are left alone. All of it is
// validated first and written at once, or nothing is.
type Change struct {
	// Version, if non-zero, must be the case's current version: a client
	// editing what it last read gets store.ErrConflict when someone else
	// changed the case in between.
	Version int64

	Title    *string
	Severity *Severity
	Assignee *string // "" unassigns
	Status   *Status
	Reason   string // why: needed to resolve, close or reopen

	Breach        *bool
	BreachAwareAt *time.Time
	NIS2          *bool
	NIS2AwareAt   *time.Time
	// Sent marks notices sent at the given times; a zero time withdraws a
	// mark made by mistake.
	Sent map[Notice]time.Time
	// RegulatoryReason explains a change to a recorded regulatory fact:
	// unmarking a regime, changing an awareness time already recorded,
	// changing or withdrawing a sent time. It is kept in the timeline.
	RegulatoryReason string
}

// Update applies a change, recording one timeline entry per changed fact.
func (s *Service) Update(ctx context.Context, id int64, ch Change, by string) (*Case, error) {
	if err := checkActor(by); err != nil {
		return nil, err
	}
	if err := checkText("reason", ch.Reason, MaxText, false, true); err != nil {
		return nil, err
	}
	if err := checkText("regulatory reason", ch.RegulatoryReason, MaxText, false, true); err != nil {
		return nil, err
	}
	c, err := s.opts.Store.GetCase(ctx, id)
	if err != nil {
		return nil, err
	}
	if ch.Version != 0 && ch.Version != c.Version {
		return nil, fmt.Errorf("case %d is at version %d, not %d: %w", id, c.Version, ch.Version, store.ErrConflict)
	}
	now := s.now()
	var entries []Entry
	add := func(kind EntryKind, format string, args ...any) {
		entries = append(entries, Entry{At: now, Actor: by, Kind: kind, Detail: fmt.Sprintf(format, args...)})
	}
	if ch.Title != nil && *ch.Title != c.Title {
		if err := checkText("title", *ch.Title, MaxTitle, true, false); err != nil {
			return nil, err
		}
		add(EntryTitle, "title changed from %q to %q", c.Title, *ch.Title)
		c.Title = *ch.Title
	}
	if ch.Severity != nil && *ch.Severity != c.Severity {
		if _, err := ParseSeverity(string(*ch.Severity)); err != nil {
			return nil, err
		}
		add(EntrySeverity, "severity changed from %s to %s", c.Severity, *ch.Severity)
		c.Severity = *ch.Severity
	}
	if ch.Assignee != nil && *ch.Assignee != c.Assignee {
		if err := checkText("assignee", *ch.Assignee, MaxName, false, false); err != nil {
			return nil, err
		}
		if *ch.Assignee == "" {
			add(EntryAssignee, "unassigned (was %s)", c.Assignee)
		} else {
			add(EntryAssignee, "assigned to %s", *ch.Assignee)
		}
		c.Assignee = *ch.Assignee
	}
	if ch.Status != nil && *ch.Status != c.Status {
		to := *ch.Status
		if _, err := ParseStatus(string(to)); err != nil {
			return nil, err
		}
		if !Allowed(c.Status, to) {
			return nil, fmt.Errorf("%w: %s → %s", ErrTransition, c.Status, to)
		}
		reason := strings.TrimSpace(ch.Reason)
		if NeedsReason(c.Status, to) && reason == "" {
			return nil, fmt.Errorf("%w: %s → %s needs a reason", ErrTransition, c.Status, to)
		}
		if reason != "" {
			add(EntryStatus, "status %s → %s: %s", c.Status, to, reason)
		} else {
			add(EntryStatus, "status %s → %s", c.Status, to)
		}
		c.Status, c.StatusBy, c.StatusAt, c.Reason = to, by, now, reason
	} else if ch.Reason != "" && ch.Status == nil {
		return nil, userErrorf("a reason is given only with a status change")
	}
	if err := s.applyRegulatory(c, ch, now, add); err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return c, nil
	}
	c.UpdatedAt = now
	if err := s.opts.Store.UpdateCase(ctx, c, entries); err != nil {
		return nil, fmt.Errorf("updating case %d: %w", id, err)
	}
	return c, s.audit(ctx, c.ID, entries)
}

// regime holds the fields of one regime so GDPR and NIS2 share the rules.
type regime struct {
	name    string
	flag    *bool
	awareAt *time.Time
}

func (s *Service) applyRegulatory(c *Case, ch Change, now time.Time, add func(EntryKind, string, ...any)) error {
	reason := strings.TrimSpace(ch.RegulatoryReason)
	because := ""
	if reason != "" {
		because = ": " + reason
	}
	for _, r := range []struct {
		regime
		setFlag  *bool
		setAware *time.Time
		label    string
	}{
		{regime{"GDPR", &c.Breach, &c.BreachAwareAt}, ch.Breach, ch.BreachAwareAt, "personal-data breach (GDPR Art. 33)"},
		{regime{"NIS2", &c.NIS2, &c.NIS2AwareAt}, ch.NIS2, ch.NIS2AwareAt, "significant incident (NIS2 Art. 23)"},
	} {
		if r.setAware != nil {
			if err := s.checkPast(r.name+" awareness time", *r.setAware, now); err != nil {
				return err
			}
		}
		flagged := *r.flag
		if r.setFlag != nil && *r.setFlag != flagged {
			if *r.setFlag {
				aware := now
				if r.setAware != nil {
					aware = r.setAware.UTC()
				}
				*r.flag, *r.awareAt = true, aware
				add(EntryFlag, "marked as a %s; became aware at %s%s", r.label, stamp(aware), because)
			} else {
				if reason == "" {
					return userErrorf("unmarking a case as a %s needs a regulatory reason", r.label)
				}
				*r.flag = false
				add(EntryFlag, "no longer marked as a %s (awareness was %s)%s", r.label, stamp(*r.awareAt), because)
			}
			continue
		}
		if r.setAware != nil && !flagged {
			return userErrorf("mark the case as a %s before setting its awareness time", r.label)
		}
		if r.setAware != nil && !r.setAware.Equal(*r.awareAt) {
			if reason == "" {
				return userErrorf("changing the %s awareness time needs a regulatory reason", r.name)
			}
			add(EntryAwareness, "%s awareness time changed from %s to %s%s", r.name, stamp(*r.awareAt), stamp(r.setAware.UTC()), because)
			*r.awareAt = r.setAware.UTC()
		}
	}
	for _, n := range Notices {
		at, ok := ch.Sent[n]
		if !ok {
			continue
		}
		if (n.Regime() == RegimeGDPR && !c.Breach) || (n.Regime() == RegimeNIS2 && !c.NIS2) {
			return userErrorf("%s: the case is not marked under %s", n, strings.ToUpper(string(n.Regime())))
		}
		prev, had := c.Sent[n]
		switch {
		case at.IsZero() && !had:
			continue
		case at.IsZero():
			if reason == "" {
				return userErrorf("withdrawing the sent mark of %s needs a regulatory reason", n)
			}
			delete(c.Sent, n)
			add(EntryNoticeSent, "%s no longer marked sent (was %s)%s", n, stamp(prev), because)
			continue
		}
		if err := s.checkPast(string(n)+" sent time", at, now); err != nil {
			return err
		}
		at = at.UTC()
		if had && prev.Equal(at) {
			continue
		}
		if had {
			if reason == "" {
				return userErrorf("changing the sent time of %s needs a regulatory reason", n)
			}
			add(EntryNoticeSent, "%s sent time changed from %s to %s%s", n, stamp(prev), stamp(at), because)
		} else {
			add(EntryNoticeSent, "%s marked sent at %s%s", n, stamp(at), because)
		}
		if c.Sent == nil {
			c.Sent = map[Notice]time.Time{}
		}
		c.Sent[n] = at
	}
	for n := range ch.Sent {
		if !slices.Contains(Notices, n) {
			return userErrorf("unknown notice %q", n)
		}
	}
	return nil
}

// checkPast rejects a zero time and one further in the future than the
// allowed clock skew.
func (s *Service) checkPast(what string, t, now time.Time) error {
	if t.IsZero() {
		return userErrorf("%s is empty", what)
	}
	if t.After(now.Add(s.opts.ClockSkew)) {
		return userErrorf("%s %s is in the future", what, stamp(t))
	}
	if t.Year() < 2000 {
		return userErrorf("%s %s is implausibly old", what, stamp(t))
	}
	return nil
}

// AddComment adds a note to a case.
func (s *Service) AddComment(ctx context.Context, id int64, text, by string) (*Comment, error) {
	if err := checkActor(by); err != nil {
		return nil, err
	}
	if err := checkText("text", text, MaxText, true, true); err != nil {
		return nil, err
	}
	c := &Comment{CaseID: id, Author: by, Text: text, At: s.now()}
	e := Entry{CaseID: id, At: c.At, Actor: by, Kind: EntryComment, Detail: "comment: " + firstLine(text, 120)}
	if err := s.opts.Store.AddCaseComment(ctx, c, e); err != nil {
		return nil, fmt.Errorf("commenting on case %d: %w", id, err)
	}
	return c, s.audit(ctx, id, []Entry{e})
}

// AddEvidence attaches a reference to an alert, event or host. Alerts and
// events must exist; the same reference twice is store.ErrConflict.
func (s *Service) AddEvidence(ctx context.Context, id int64, kind EvidenceKind, ref, note, by string) (*Evidence, error) {
	if err := checkActor(by); err != nil {
		return nil, err
	}
	if err := checkText("note", note, MaxText, false, true); err != nil {
		return nil, err
	}
	if _, err := ParseEvidenceKind(string(kind)); err != nil {
		return nil, err
	}
	var what string
	switch kind {
	case EvidenceAlert, EvidenceEvent:
		n, err := strconv.ParseInt(ref, 10, 64)
		if err != nil || n <= 0 {
			return nil, userErrorf("an %s reference is a positive integer id", kind)
		}
		ref = strconv.FormatInt(n, 10)
		if kind == EvidenceAlert {
			a, err := s.opts.Alerts.GetAlert(ctx, n)
			if errors.Is(err, store.ErrNotFound) {
				return nil, userErrorf("alert %d does not exist", n)
			} else if err != nil {
				return nil, err
			}
			what = fmt.Sprintf("alert %d (%s on %s)", n, a.RuleTitle, a.Host)
		} else {
			if s.opts.Events == nil {
				return nil, userErrorf("events are not available on this server")
			}
			ev, err := s.opts.Events.Get(ctx, n)
			if errors.Is(err, store.ErrNotFound) {
				return nil, userErrorf("event %d does not exist (or has expired)", n)
			} else if err != nil {
				return nil, err
			}
			what = fmt.Sprintf("event %d on %s at %s", n, ev.Host, stamp(ev.Time))
		}
	case EvidenceHost:
		if err := checkText("host", ref, MaxName, true, false); err != nil {
			return nil, err
		}
		what = "host " + ref
	}
	ev := &Evidence{CaseID: id, Kind: kind, Ref: ref, Note: note, AddedBy: by, AddedAt: s.now()}
	return ev, s.addEvidence(ctx, ev, what)
}

// UploadFile stores a file by its SHA-256 and attaches it as evidence.
// name is only a label (shown, never used as a path). Content over
// MaxFileBytes is refused with an error wrapping ErrTooLarge; r is read at
// most one byte past the limit.
func (s *Service) UploadFile(ctx context.Context, id int64, name string, r io.Reader, note, by string) (*Evidence, error) {
	if err := checkActor(by); err != nil {
		return nil, err
	}
	if err := checkText("file name", name, MaxName, true, false); err != nil {
		return nil, err
	}
	if err := checkText("note", note, MaxText, false, true); err != nil {
		return nil, err
	}
	if _, err := s.opts.Store.GetCase(ctx, id); err != nil {
		return nil, err // before reading a large body for nothing
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, s.opts.MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the upload: %w", err)
	}
	if n > s.opts.MaxFileBytes {
		return nil, fmt.Errorf("%w: the limit is %d bytes", ErrTooLarge, s.opts.MaxFileBytes)
	}
	sum := sha256.Sum256(buf.Bytes())
	ref := hex.EncodeToString(sum[:])
	if err := s.opts.Store.PutCaseFile(ctx, ref, buf.Bytes()); err != nil {
		return nil, fmt.Errorf("storing file: %w", err)
	}
	ev := &Evidence{CaseID: id, Kind: EvidenceFile, Ref: ref, Name: name, Size: n, Note: note, AddedBy: by, AddedAt: s.now()}
	return ev, s.addEvidence(ctx, ev, fmt.Sprintf("file %q (%d bytes, SHA-256 %s)", name, n, ref))
}

func (s *Service) addEvidence(ctx context.Context, ev *Evidence, what string) error {
	have, err := s.opts.Store.CaseEvidence(ctx, ev.CaseID)
	if err != nil {
		return err
	}
	if len(have) >= MaxEvidence {
		return userErrorf("a case holds at most %d evidence items", MaxEvidence)
	}
	e := Entry{CaseID: ev.CaseID, At: ev.AddedAt, Actor: ev.AddedBy, Kind: EntryEvidence, Detail: "evidence: " + what}
	if err := s.opts.Store.AddCaseEvidence(ctx, ev, e); err != nil {
		return fmt.Errorf("adding evidence to case %d: %w", ev.CaseID, err)
	}
	return s.audit(ctx, ev.CaseID, []Entry{e})
}

// File returns an uploaded file of a case: its evidence item and content.
// A hash the case does not hold is store.ErrNotFound, even if another case
// holds it.
func (s *Service) File(ctx context.Context, id int64, sum string) (*Evidence, []byte, error) {
	evs, err := s.opts.Store.CaseEvidence(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	for i := range evs {
		if evs[i].Kind == EvidenceFile && evs[i].Ref == sum {
			b, err := s.opts.Store.CaseFile(ctx, sum)
			if err != nil {
				return nil, nil, err
			}
			return &evs[i], b, nil
		}
	}
	return nil, nil, fmt.Errorf("file %s in case %d: %w", clipHash(sum), id, store.ErrNotFound)
}

// Get returns a case.
func (s *Service) Get(ctx context.Context, id int64) (*Case, error) {
	return s.opts.Store.GetCase(ctx, id)
}

// List returns cases matching f, newest first.
func (s *Service) List(ctx context.Context, f Filter) ([]Case, error) {
	return s.opts.Store.ListCases(ctx, f)
}

// Comments returns a case's comments, oldest first.
func (s *Service) Comments(ctx context.Context, id int64) ([]Comment, error) {
	if _, err := s.opts.Store.GetCase(ctx, id); err != nil {
		return nil, err
	}
	return s.opts.Store.CaseComments(ctx, id)
}

// Evidence returns a case's evidence, oldest first.
func (s *Service) Evidence(ctx context.Context, id int64) ([]Evidence, error) {
	if _, err := s.opts.Store.GetCase(ctx, id); err != nil {
		return nil, err
	}
	return s.opts.Store.CaseEvidence(ctx, id)
}

// Deadlines returns the case's regulatory clocks now.
func (s *Service) Deadlines(c *Case) []Deadline { return Deadlines(c, s.now()) }

func (s *Service) loadAlerts(ctx context.Context, ids []int64) ([]*alert.Alert, error) {
	out := make([]*alert.Alert, 0, len(ids))
	for _, id := range ids {
		a, err := s.opts.Alerts.GetAlert(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, userErrorf("alert %d does not exist", id)
		}
		if err != nil {
			return nil, fmt.Errorf("reading alert %d: %w", id, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func (s *Service) audit(ctx context.Context, id int64, entries []Entry) error {
	if s.opts.Audit == nil {
		return nil
	}
	for _, e := range entries {
		err := s.opts.Audit.Record(ctx, audit.Entry{At: e.At, Actor: e.Actor, Source: auditSource(ctx),
			Action: "case." + string(e.Kind), Target: "case:" + strconv.FormatInt(id, 10), Detail: e.Detail})
		if err != nil {
			return fmt.Errorf("the change to case %d is saved, but writing the audit log failed: %w", id, err)
		}
	}
	return nil
}

func checkActor(by string) error {
	if strings.TrimSpace(by) == "" {
		return errors.New("cases: a change needs the acting user")
	}
	return checkText("actor", by, MaxName, true, false)
}

// dedupeIDs checks alert ids (positive, bounded count) and drops repeats,
// keeping the first order.
func dedupeIDs(ids []int64, required bool) ([]int64, error) {
	if required && len(ids) == 0 {
		return nil, userErrorf("give at least one alert id")
	}
	if len(ids) > MaxAlertsCall {
		return nil, userErrorf("at most %d alert ids at once", MaxAlertsCall)
	}
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if id <= 0 {
			return nil, userErrorf("alert ids are positive integers")
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

func alertList(as []*alert.Alert) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = fmt.Sprintf("%d (%s on %s)", a.ID, a.RuleTitle, a.Host)
	}
	return strings.Join(parts, ", ")
}

// stamp formats a time for timeline details: UTC, to the second.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "(none)"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func firstLine(s string, max int) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i] + " …"
	}
	if len(s) > max {
		cut := max
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xc0 != 0x80 }

func clipHash(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
