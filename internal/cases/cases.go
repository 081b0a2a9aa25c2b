package cases

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Status is where a case is in its handling.
type Status string

// Case statuses. A case starts open; someone takes it (in progress); it ends
// resolved (handled) or closed (handled, or not an incident at all).
// Resolved and closed cases can be reopened, back to in progress.
const (
	StatusOpen       Status = "open"
	StatusInProgress Status = "in_progress"
	StatusResolved   Status = "resolved"
	StatusClosed     Status = "closed"
)

// Statuses lists every status in handling order.
var Statuses = []Status{StatusOpen, StatusInProgress, StatusResolved, StatusClosed}

// transitions is the state machine. Every move records who and when; the
// moves that end or reopen a case also need a reason (see NeedsReason).
var transitions = map[Status][]Status{
	StatusOpen:       {StatusInProgress, StatusClosed}, // closed straight away: a duplicate, not an incident
	StatusInProgress: {StatusResolved, StatusClosed},
	StatusResolved:   {StatusClosed, StatusInProgress}, // reopen
	StatusClosed:     {StatusInProgress},               // reopen
}

// Allowed reports whether a case may go from one status to another.
func Allowed(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// NeedsReason reports whether the move from one status to another must say
// why: resolving, closing and reopening.
func NeedsReason(from, to Status) bool {
	return to == StatusResolved || to == StatusClosed || from == StatusResolved || from == StatusClosed
}

// ParseStatus accepts a status name.
func ParseStatus(s string) (Status, error) {
	for _, st := range Statuses {
		if string(st) == s {
			return st, nil
		}
	}
	return "", userErrorf("status must be one of open, in_progress, resolved, closed")
}

// Severity is how bad an incident is.
type Severity string

// Severities, lowest first.
const (
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// Severities lists every severity, lowest first.
var Severities = []Severity{SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}

// ParseSeverity accepts a severity name.
func ParseSeverity(s string) (Severity, error) {
	for _, sv := range Severities {
		if string(sv) == s {
			return sv, nil
		}
	}
	return "", userErrorf("severity must be one of low, medium, high, critical")
}

func (s Severity) rank() int {
	for i, sv := range Severities {
		if sv == s {
			return i
		}
	}
	return -1
}

// severityOfLevel maps a Sigma level to a case severity (informational and
// unknown levels count as low).
func severityOfLevel(level string) Severity {
	switch strings.ToLower(level) {
	case "critical":
		return SeverityCritical
	case "high":
		return SeverityHigh
	case "medium":
		return SeverityMedium
	}
	return SeverityLow
}

// Notice is one regulatory notification a case may owe.
type Notice string

// Notices. GDPR Art. 33 has one notification to the supervisory authority;
// NIS2 Art. 23(4) has three reports to the CSIRT or competent authority
// (the intermediate report of point (c) is on request only and has no
// clock).
const (
	NoticeGDPR            Notice = "gdpr_authority"
	NoticeNIS2Warning     Notice = "nis2_early_warning"
	NoticeNIS2Notice      Notice = "nis2_incident_notification"
	NoticeNIS2FinalReport Notice = "nis2_final_report"
)

// Notices lists every notice in the order the report shows them.
var Notices = []Notice{NoticeGDPR, NoticeNIS2Warning, NoticeNIS2Notice, NoticeNIS2FinalReport}

// ParseNotice accepts a notice name.
func ParseNotice(s string) (Notice, error) {
	for _, n := range Notices {
		if string(n) == s {
			return n, nil
		}
	}
	return "", userErrorf("notice must be one of gdpr_authority, nis2_early_warning, nis2_incident_notification, nis2_final_report")
}

// Regime is the regulation a notice belongs to.
func (n Notice) Regime() Regime {
	if n == NoticeGDPR {
		return RegimeGDPR
	}
	return RegimeNIS2
}

// Regime is a notification regime a case can be marked under.
type Regime string

// Regimes.
const (
	RegimeGDPR Regime = "gdpr" // personal-data breach, GDPR Art. 33
	RegimeNIS2 Regime = "nis2" // significant incident, NIS2 Art. 23
)

// ParseRegime accepts a regime name.
func ParseRegime(s string) (Regime, error) {
	switch r := Regime(s); r {
	case RegimeGDPR, RegimeNIS2:
		return r, nil
	}
	return "", userErrorf("regime must be gdpr or nis2")
}

// Case is one incident.
type Case struct {
	ID        int64
	Title     string
	Severity  Severity
	Status    Status
	Assignee  string // empty: unassigned
	CreatedBy string
	CreatedAt time.Time
	UpdatedAt time.Time
	StatusBy  string // who made the last status change (the creator at first)
	StatusAt  time.Time
	Reason    string // the reason given with the last status change, if any

	AlertIDs []int64 // in the order they were added; never removed

	// Breach marks a personal-data breach (GDPR Art. 33); BreachAwareAt is
	// when the controller became aware of it, the anchor of the 72 h clock.
	Breach        bool
	BreachAwareAt time.Time
	// NIS2 marks a significant incident (NIS2 Art. 23); NIS2AwareAt anchors
	// the 24 h and 72 h clocks.
	NIS2        bool
	NIS2AwareAt time.Time
	// Sent holds when each notice was marked sent; a notice not sent is
	// absent.
	Sent map[Notice]time.Time

	// Version counts changes to the row; UpdateCase succeeds only against
	// the version it read (compare-and-set).
	Version int64
}

// Comment is a note on a case.
type Comment struct {
	ID     int64
	CaseID int64
	Author string
	Text   string
	At     time.Time
}

// EvidenceKind says what a piece of evidence refers to.
type EvidenceKind string

// Evidence kinds.
const (
	EvidenceAlert EvidenceKind = "alert" // Ref: alert id
	EvidenceEvent EvidenceKind = "event" // Ref: event row id
	EvidenceHost  EvidenceKind = "host"  // Ref: host name
	EvidenceFile  EvidenceKind = "file"  // Ref: SHA-256 (hex) of an uploaded file
)

// ParseEvidenceKind accepts an evidence kind for a reference (files are
// uploaded, not referenced).
func ParseEvidenceKind(s string) (EvidenceKind, error) {
	switch k := EvidenceKind(s); k {
	case EvidenceAlert, EvidenceEvent, EvidenceHost:
		return k, nil
	}
	return "", userErrorf("kind must be alert, event or host (files are uploaded)")
}

// Evidence is one item attached to a case. Files are stored by content
// hash: Ref is the SHA-256 in lower-case hex, Name is only a label the
// uploader chose and is never used as a path.
type Evidence struct {
	ID      int64
	CaseID  int64
	Kind    EvidenceKind
	Ref     string
	Name    string // files: the uploader's label
	Size    int64  // files: bytes
	Note    string
	AddedBy string
	AddedAt time.Time
}

// EntryKind names what a timeline entry records.
type EntryKind string

// Timeline entry kinds written by the Service. Alert and event entries are
// not stored: Timeline derives them from the case's alerts when it is read.
const (
	EntryCreated      EntryKind = "created"
	EntryAlertsAdded  EntryKind = "alerts_added"
	EntryStatus       EntryKind = "status"
	EntryAssignee     EntryKind = "assignee"
	EntrySeverity     EntryKind = "severity"
	EntryTitle        EntryKind = "title"
	EntryFlag         EntryKind = "flag"      // a regime marked or unmarked
	EntryAwareness    EntryKind = "awareness" // an awareness time set or changed
	EntryNoticeSent   EntryKind = "notice_sent"
	EntryComment      EntryKind = "comment"
	EntryEvidence     EntryKind = "evidence"
	EntryAlertSeen    EntryKind = "alert" // derived: an alert's first or last occurrence
	EntryEventOccured EntryKind = "event" // derived: an event of one of the alerts
)

// Entry is one line of a case's timeline: who did what, when. Stored
// entries are append-only; Detail is a short human-readable description
// built from values the service validated (it may still contain
// attacker-chosen text such as a rule title: render it as text).
type Entry struct {
	ID     int64
	CaseID int64
	At     time.Time
	Actor  string // empty for derived alert and event entries
	Kind   EntryKind
	Detail string
	Ref    string // the alert or event id for derived entries
}

// Filter selects cases. Zero fields do not filter; newest first.
type Filter struct {
	Statuses    []Status
	Assignee    string
	MinSeverity Severity
	Regime      Regime // only cases marked under this regime
	AlertID     int64  // only cases holding this alert
	Limit       int    // default 100, at most 1,000
	Before      int64  // continue below this id
}

// Error is a problem with the caller's input; its message is safe to show
// a user.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

func userErrorf(format string, args ...any) error {
	return &Error{msg: fmt.Sprintf(format, args...)}
}

// ErrTransition is returned (wrapped) for a status change the state machine
// forbids.
var ErrTransition = errors.New("status change not allowed")

// ErrTooLarge is returned (wrapped) for an upload over the size limit.
var ErrTooLarge = errors.New("file too large")

// Limits on what a case holds.
const (
	MaxTitle      = 256
	MaxName       = 256 // assignee, actor, file label, host name
	MaxText       = 16 << 10
	MaxAlerts     = 1000 // alerts per case
	MaxAlertsCall = 100  // alerts per create or add call
	MaxEvidence   = 1000 // evidence items per case
)

// checkText rejects empty (when required), over-long and invalid UTF-8
// strings, and control characters (newlines and tabs only when multiline).
func checkText(what, s string, max int, required, multiline bool) error {
	if required && strings.TrimSpace(s) == "" {
		return userErrorf("%s is empty", what)
	}
	if len(s) > max {
		return userErrorf("%s is longer than %d bytes", what, max)
	}
	if !utf8.ValidString(s) {
		return userErrorf("%s is not valid UTF-8", what)
	}
	for _, c := range s {
		if unicode.IsControl(c) && !(multiline && (c == '\n' || c == '\t' || c == '\r')) {
			return userErrorf("%s contains control characters", what)
		}
	}
	return nil
}
