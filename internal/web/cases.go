package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/cases"
)

// Cases is the incident service; *cases.Service satisfies it. Changes are
// audited by the service itself (cases.Options.Audit), with the caller's
// address taken from cases.WithAuditSource.
type Cases interface {
	List(ctx context.Context, f cases.Filter) ([]cases.Case, error)
	Create(ctx context.Context, n cases.NewCase, by string) (*cases.Case, error)
	// Get and the per-case methods return store.ErrNotFound for an
	// unknown case; cases.Error for bad input, cases.ErrTransition for a
	// forbidden status change, store.ErrConflict for a lost race.
	Get(ctx context.Context, id int64) (*cases.Case, error)
	Update(ctx context.Context, id int64, ch cases.Change, by string) (*cases.Case, error)
	AddAlerts(ctx context.Context, id int64, alertIDs []int64, by string) (*cases.Case, error)
	Comments(ctx context.Context, id int64) ([]cases.Comment, error)
	AddComment(ctx context.Context, id int64, text, by string) (*cases.Comment, error)
	Evidence(ctx context.Context, id int64) ([]cases.Evidence, error)
	AddEvidence(ctx context.Context, id int64, kind cases.EvidenceKind, ref, note, by string) (*cases.Evidence, error)
	// UploadFile reads at most MaxFileBytes()+1 bytes of r.
	UploadFile(ctx context.Context, id int64, name string, r io.Reader, note, by string) (*cases.Evidence, error)
	File(ctx context.Context, id int64, sum string) (*cases.Evidence, []byte, error)
	Timeline(ctx context.Context, id int64) ([]cases.Entry, error)
	Deadlines(c *cases.Case) []cases.Deadline
	WriteReport(ctx context.Context, w io.Writer, id int64, loc *time.Location) error
	MaxFileBytes() int64
}

// ---- JSON shapes ----

type caseJSON struct {
	ID        int64          `json:"id"`
	Title     string         `json:"title"`
	Severity  cases.Severity `json:"severity"`
	Status    cases.Status   `json:"status"`
	Assignee  string         `json:"assignee,omitempty"`
	CreatedBy string         `json:"created_by"`
	CreatedAt *time.Time     `json:"created_at,omitempty"`
	UpdatedAt *time.Time     `json:"updated_at,omitempty"`
	StatusBy  string         `json:"status_by"`
	StatusAt  *time.Time     `json:"status_at,omitempty"`
	Reason    string         `json:"reason,omitempty"`
	AlertIDs  []int64        `json:"alert_ids"`
	// The regulatory record and the clocks it runs now.
	Breach        bool           `json:"personal_data_breach"`
	BreachAwareAt *time.Time     `json:"breach_aware_at,omitempty"`
	NIS2          bool           `json:"nis2_significant"`
	NIS2AwareAt   *time.Time     `json:"nis2_aware_at,omitempty"`
	Deadlines     []deadlineJSON `json:"deadlines"`
	// Version is the case's change counter: send it back with an update to
	// make the update fail (409) if someone changed the case meanwhile.
	Version int64 `json:"version"`
}

type deadlineJSON struct {
	Notice cases.Notice        `json:"notice"`
	Title  string              `json:"title"`
	Basis  string              `json:"basis"`
	Anchor *time.Time          `json:"counted_from,omitempty"`
	Due    *time.Time          `json:"due,omitempty"` // absent while waiting
	Sent   *time.Time          `json:"sent,omitempty"`
	State  cases.DeadlineState `json:"state"`
	// LeftSeconds is the time left (negative: past the deadline) for due
	// and overdue notices.
	LeftSeconds int64 `json:"left_seconds,omitempty"`
}

func (s *Server) toCaseJSON(c *cases.Case) caseJSON {
	out := caseJSON{ID: c.ID, Title: c.Title, Severity: c.Severity, Status: c.Status, Assignee: c.Assignee,
		CreatedBy: c.CreatedBy, CreatedAt: tm(c.CreatedAt), UpdatedAt: tm(c.UpdatedAt), StatusBy: c.StatusBy,
		StatusAt: tm(c.StatusAt), Reason: c.Reason, AlertIDs: nonNil(c.AlertIDs), Breach: c.Breach,
		NIS2: c.NIS2, Deadlines: []deadlineJSON{}, Version: c.Version}
	if c.Breach {
		out.BreachAwareAt = tm(c.BreachAwareAt)
	}
	if c.NIS2 {
		out.NIS2AwareAt = tm(c.NIS2AwareAt)
	}
	for _, d := range s.opts.Cases.Deadlines(c) {
		out.Deadlines = append(out.Deadlines, deadlineJSON{Notice: d.Notice, Title: d.Title, Basis: d.Basis,
			Anchor: tm(d.Anchor), Due: tm(d.Due), Sent: tm(d.Sent), State: d.State, LeftSeconds: int64(d.Left / time.Second)})
	}
	return out
}

type casePage struct {
	Items      []caseJSON `json:"items"`
	NextBefore int64      `json:"next_before,omitempty"`
}

type caseCreateReq struct {
	Title    string  `json:"title"`
	Severity string  `json:"severity,omitempty"` // default: the highest level among the alerts
	Assignee string  `json:"assignee,omitempty"`
	AlertIDs []int64 `json:"alert_ids"`
}

// caseUpdateReq changes what it names; absent fields are left alone.
type caseUpdateReq struct {
	Version       *int64     `json:"version,omitempty"`
	Title         *string    `json:"title,omitempty"`
	Severity      *string    `json:"severity,omitempty"`
	Assignee      *string    `json:"assignee,omitempty"` // "" unassigns
	Status        *string    `json:"status,omitempty"`
	Reason        string     `json:"reason,omitempty"` // needed to resolve, close or reopen
	Breach        *bool      `json:"personal_data_breach,omitempty"`
	BreachAwareAt *time.Time `json:"breach_aware_at,omitempty"`
	NIS2          *bool      `json:"nis2_significant,omitempty"`
	NIS2AwareAt   *time.Time `json:"nis2_aware_at,omitempty"`
	// Sent marks notices sent at a time; null withdraws a mark.
	Sent             map[string]*time.Time `json:"sent,omitempty"`
	RegulatoryReason string                `json:"regulatory_reason,omitempty"`
}

type caseAlertsReq struct {
	AlertIDs []int64 `json:"alert_ids"`
}

type caseCommentJSON struct {
	ID     int64      `json:"id"`
	Author string     `json:"author"`
	Text   string     `json:"text"`
	At     *time.Time `json:"at,omitempty"`
}

type caseCommentList struct {
	Items []caseCommentJSON `json:"items"`
}

type evidenceReq struct {
	Kind string `json:"kind"` // alert, event or host
	Ref  string `json:"ref"`
	Note string `json:"note,omitempty"`
}

type evidenceJSON struct {
	ID      int64              `json:"id"`
	Kind    cases.EvidenceKind `json:"kind"`
	Ref     string             `json:"ref"` // files: SHA-256, lower-case hex
	Name    string             `json:"name,omitempty"`
	Size    int64              `json:"size,omitempty"`
	Note    string             `json:"note,omitempty"`
	AddedBy string             `json:"added_by"`
	AddedAt *time.Time         `json:"added_at,omitempty"`
}

type evidenceList struct {
	Items []evidenceJSON `json:"items"`
}

type entryJSON struct {
	At     *time.Time      `json:"at,omitempty"`
	Actor  string          `json:"actor,omitempty"`
	Kind   cases.EntryKind `json:"kind"`
	Detail string          `json:"detail"`
	Ref    string          `json:"ref,omitempty"`
}

type timelineJSON struct {
	Items []entryJSON `json:"items"`
}

func toEvidenceJSON(e *cases.Evidence) evidenceJSON {
	return evidenceJSON{ID: e.ID, Kind: e.Kind, Ref: e.Ref, Name: e.Name, Size: e.Size, Note: e.Note,
		AddedBy: e.AddedBy, AddedAt: tm(e.AddedAt)}
}

// ---- handlers ----

var (
	caseStatuses   = []string{"open", "in_progress", "resolved", "closed"}
	caseSeverities = []string{"low", "medium", "high", "critical"}
	caseRegimes    = []string{"gdpr", "nis2"}
)

// caseErr turns the service's input errors into API errors; others pass
// through to toAPI (not found, conflict, internal).
func caseErr(err error) error {
	var ue *cases.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ue):
		return &Error{Code: CodeBadRequest, Message: ue.Error()}
	case errors.Is(err, cases.ErrTransition):
		return &Error{Code: CodeConflict, Message: err.Error()} // names only the two statuses
	case errors.Is(err, cases.ErrTooLarge):
		return &Error{Code: CodeTooLarge, Message: err.Error()}
	}
	return err
}

// caseCtx carries the caller's address to the service's audit entries.
func caseCtx(r *http.Request) context.Context {
	src := r.RemoteAddr
	if host, _, err := net.SplitHostPort(src); err == nil {
		src = host
	}
	return cases.WithAuditSource(r.Context(), src)
}

func (s *Server) caseID(r *http.Request) (int64, error) {
	if s.opts.Cases == nil {
		return 0, notConfigured("cases")
	}
	id, e := pathInt(r, "id")
	if e != nil {
		return 0, e
	}
	return id, nil
}

func (s *Server) listCases(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Cases == nil {
		return notConfigured("cases")
	}
	q := newQuery(r)
	f := cases.Filter{Assignee: q.str("assignee"), AlertID: q.int("alert_id", 1, 1<<62, 0),
		Limit: q.limit(), Before: q.before()}
	for _, st := range q.v["status"] {
		status, err := cases.ParseStatus(st)
		if err != nil {
			return caseErr(err)
		}
		if !slices.Contains(f.Statuses, status) {
			f.Statuses = append(f.Statuses, status)
		}
	}
	if sv := q.v.Get("min_severity"); sv != "" {
		sev, err := cases.ParseSeverity(sv)
		if err != nil {
			return caseErr(err)
		}
		f.MinSeverity = sev
	}
	if rg := q.v.Get("regime"); rg != "" {
		regime, err := cases.ParseRegime(rg)
		if err != nil {
			return caseErr(err)
		}
		f.Regime = regime
	}
	if q.err != nil {
		return q.err
	}
	cs, err := s.opts.Cases.List(r.Context(), f)
	if err != nil {
		return err
	}
	page := casePage{Items: make([]caseJSON, len(cs))}
	for i := range cs {
		page.Items[i] = s.toCaseJSON(&cs[i])
	}
	if len(cs) == f.Limit {
		page.NextBefore = cs[len(cs)-1].ID
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) createCase(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Cases == nil {
		return notConfigured("cases")
	}
	var req caseCreateReq
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	n := cases.NewCase{Title: req.Title, Assignee: req.Assignee, AlertIDs: req.AlertIDs}
	if req.Severity != "" {
		sev, err := cases.ParseSeverity(req.Severity)
		if err != nil {
			return caseErr(err)
		}
		n.Severity = sev
	}
	c, err := s.opts.Cases.Create(caseCtx(r), n, actor(r))
	if err != nil {
		return caseErr(err)
	}
	writeJSON(w, http.StatusCreated, s.toCaseJSON(c))
	return nil
}

func (s *Server) getCase(w http.ResponseWriter, r *http.Request) error {
	id, err := s.caseID(r)
	if err != nil {
		return err
	}
	c, err := s.opts.Cases.Get(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.toCaseJSON(c))
	return nil
}

func (s *Server) updateCase(w http.ResponseWriter, r *http.Request) error {
	id, err := s.caseID(r)
	if err != nil {
		return err
	}
	var req caseUpdateReq
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	ch := cases.Change{Title: req.Title, Assignee: req.Assignee, Reason: req.Reason,
		Breach: req.Breach, BreachAwareAt: req.BreachAwareAt, NIS2: req.NIS2, NIS2AwareAt: req.NIS2AwareAt,
		RegulatoryReason: req.RegulatoryReason}
	if req.Version != nil {
		if *req.Version <= 0 {
			return errorf(CodeBadRequest, "version must be positive")
		}
		ch.Version = *req.Version
	}
	if req.Severity != nil {
		sev, err := cases.ParseSeverity(*req.Severity)
		if err != nil {
			return caseErr(err)
		}
		ch.Severity = &sev
	}
	if req.Status != nil {
		st, err := cases.ParseStatus(*req.Status)
		if err != nil {
			return caseErr(err)
		}
		ch.Status = &st
	}
	if len(req.Sent) > 0 {
		ch.Sent = map[cases.Notice]time.Time{}
		for name, at := range req.Sent {
			n, err := cases.ParseNotice(name)
			if err != nil {
				return caseErr(err)
			}
			if at == nil {
				ch.Sent[n] = time.Time{}
			} else {
				ch.Sent[n] = *at
			}
		}
	}
	c, err := s.opts.Cases.Update(caseCtx(r), id, ch, actor(r))
	if err != nil {
		return caseErr(err)
	}
	writeJSON(w, http.StatusOK, s.toCaseJSON(c))
	return nil
}

func (s *Server) addCaseAlerts(w http.ResponseWriter, r *http.Request) error {
	id, err := s.caseID(r)
	if err != nil {
		return err
	}
	var req caseAlertsReq
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	c, err := s.opts.Cases.AddAlerts(caseCtx(r), id, req.AlertIDs, actor(r))
	if err != nil {
		return caseErr(err)
	}
	writeJSON(w, http.StatusOK, s.toCaseJSON(c))
	return nil
}

func (s *Server) listCaseComments(w http.ResponseWriter, r *http.Request) error {
	id, err := s.caseID(r)
	if err != nil {
		return err
	}
	cs, err := s.opts.Cases.Comments(r.Context(), id)
	if err != nil {
		return err
	}
	out := caseCommentList{Items: make([]caseCommentJSON, len(cs))}
	for i, c := range cs {
		out.Items[i] = caseCommentJSON{ID: c.ID, Author: c.Author, Text: c.Text, At: tm(c.At)}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) addCaseComment(w http.ResponseWriter, r *http.Request) error {
	id, err := s.caseID(r)
	if err != nil {
		return err
	}
	var req commentReq
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	c, err := s.opts.Cases.AddComment(caseCtx(r), id, req.Text, actor(r))
	if err != nil {
		return caseErr(err)
	}
	writeJSON(w, http.StatusCreated, caseCommentJSON{ID: c.ID, Author: c.Author, Text: c.Text, At: tm(c.At)})
	return nil
}

func (s *Server) listEvidence(w http.ResponseWriter, r *http.Request) error {
	id, err := s.caseID(r)
	if err != nil {
		return err
	}
	evs, err := s.opts.Cases.Evidence(r.Context(), id)
	if err != nil {
		return err
	}
	out := evidenceList{Items: make([]evidenceJSON, len(evs))}
	for i := range evs {
		out.Items[i] = toEvidenceJSON(&evs[i])
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) addEvidence(w http.ResponseWriter, r *http.Request) error {
	id, err := s.caseID(r)
	if err != nil {
		return err
	}
	var req evidenceReq
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	kind, err := cases.ParseEvidenceKind(req.Kind)
	if err != nil {
		return caseErr(err)
	}
	ev, err := s.opts.Cases.AddEvidence(caseCtx(r), id, kind, req.Ref, req.Note, actor(r))
	if err != nil {
		return caseErr(err)
	}
	writeJSON(w, http.StatusCreated, toEvidenceJSON(ev))
	return nil
}

// uploadFile takes the file as the raw request body; its label and note
// come from the query (the body is never parsed).
func (s *Server) uploadFile(w http.ResponseWriter, r *http.Request) error {
	id, err := s.caseID(r)
	if err != nil {
		return err
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/octet-stream" {
		return errorf(CodeUnsupportedMedia, "upload the file as application/octet-stream")
	}
	q := newQuery(r)
	name, note := q.v.Get("name"), q.v.Get("note")
	if q.err != nil {
		return q.err
	}
	limit := s.opts.Cases.MaxFileBytes()
	if r.ContentLength > limit {
		return errorf(CodeTooLarge, "the file exceeds %d bytes", limit)
	}
	body := http.MaxBytesReader(w, r.Body, limit+1)
	ev, err := s.opts.Cases.UploadFile(caseCtx(r), id, name, body, note, actor(r))
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return errorf(CodeTooLarge, "the file exceeds %d bytes", limit)
	}
	if err != nil {
		return caseErr(err)
	}
	writeJSON(w, http.StatusCreated, toEvidenceJSON(ev))
	return nil
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// downloadFile serves an uploaded file as an attachment that browsers will
// neither sniff nor render.
func (s *Server) downloadFile(w http.ResponseWriter, r *http.Request) error {
	id, err := s.caseID(r)
	if err != nil {
		return err
	}
	sum := r.PathValue("sha256")
	if !sha256Hex.MatchString(sum) {
		return errorf(CodeBadRequest, "sha256 must be 64 lower-case hex digits")
	}
	noteAudit(r, "case:"+strconv.FormatInt(id, 10), "sha256="+sum)
	ev, data, err := s.opts.Cases.File(r.Context(), id, sum)
	if err != nil {
		return err
	}
	noteAudit(r, "", fmt.Sprintf("name=%q bytes=%d", ev.Name, len(data)))
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": ev.Name}))
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	setCommonHeaders(h)
	w.WriteHeader(http.StatusOK)
	w.Write(data)
	return nil
}

func (s *Server) caseTimeline(w http.ResponseWriter, r *http.Request) error {
	id, err := s.caseID(r)
	if err != nil {
		return err
	}
	es, err := s.opts.Cases.Timeline(r.Context(), id)
	if err != nil {
		return err
	}
	out := timelineJSON{Items: make([]entryJSON, len(es))}
	for i, e := range es {
		out.Items[i] = entryJSON{At: tm(e.At), Actor: e.Actor, Kind: e.Kind, Detail: e.Detail, Ref: e.Ref}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

var tzName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$`)

// caseReport serves the incident report: one self-contained HTML document
// under a CSP that lets nothing load or run.
func (s *Server) caseReport(w http.ResponseWriter, r *http.Request) error {
	id, err := s.caseID(r)
	if err != nil {
		return err
	}
	noteAudit(r, "case:"+strconv.FormatInt(id, 10), "")
	loc := time.UTC
	if tz := newQuery(r).v.Get("tz"); tz != "" {
		if len(tz) > 64 || !tzName.MatchString(tz) {
			return errorf(CodeBadRequest, "tz must be an IANA time zone name such as Europe/Paris")
		}
		if loc, err = time.LoadLocation(tz); err != nil {
			return errorf(CodeBadRequest, "unknown time zone %q", tz)
		}
	}
	var buf strings.Builder
	if err := s.opts.Cases.WriteReport(r.Context(), &buf, id, loc); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", cases.ReportCSP)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{
		"filename": "vigil-case-" + strconv.FormatInt(id, 10) + "-report.html"}))
	h.Set("Referrer-Policy", "no-referrer")
	setCommonHeaders(h)
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, buf.String())
	return nil
}
