package web

import (
	"context"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/audit"
)

// Every state-changing request that got past authentication (API route or
// console form), and every GET of a route marked audit (downloads), is
// written to the audit log when it finishes: who (actor),
// from where (client address), what (the route as a dotted action), the
// target (the request path, or what the handler named) and the result (the
// status, with the handler's note). Refusals of an identified caller (role,
// CSRF) are recorded too; unauthenticated requests are not, so a flood of
// them cannot fill the log. Login and logout record their own entries.

type auditNoteKey struct{}

// auditNote lets a handler say more than the route does: the object it
// changed and how.
type auditNote struct {
	target string
	detail []string
}

func withAuditNote(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), auditNoteKey{}, &auditNote{}))
}

// noteAudit adds to the audit entry of the request: target, if not empty,
// replaces the path; detail is appended.
func noteAudit(r *http.Request, target, detail string) {
	n, _ := r.Context().Value(auditNoteKey{}).(*auditNote)
	if n == nil {
		return
	}
	if target != "" {
		n.target = target
	}
	if detail != "" {
		n.detail = append(n.detail, detail)
	}
}

// auditAction turns a route label into a dotted action:
// "POST /api/v1/alerts/{id}/state" → "api.alerts.state.post".
func auditAction(label string) string {
	method, pattern, _ := strings.Cut(label, " ")
	var parts []string
	prefix := "console"
	if strings.HasPrefix(pattern, "/api/v1/") {
		prefix, pattern = "api", strings.TrimPrefix(pattern, "/api/v1/")
	}
	parts = append(parts, prefix)
	for _, seg := range strings.Split(pattern, "/") {
		if seg == "" || strings.HasPrefix(seg, "{") {
			continue
		}
		parts = append(parts, seg)
	}
	return strings.Join(append(parts, strings.ToLower(method)), ".")
}

// auditRequest records one finished (or refused) request.
func (s *Server) auditRequest(r *http.Request, label string, status int, msg string) {
	if status == 0 {
		status = http.StatusOK
	}
	target := r.URL.Path
	detail := []string{"status=" + strconv.Itoa(status)}
	if n, _ := r.Context().Value(auditNoteKey{}).(*auditNote); n != nil {
		if n.target != "" {
			target = n.target
		}
		detail = append(detail, n.detail...)
	}
	if msg != "" {
		detail = append(detail, msg)
	}
	s.record(r, audit.Entry{Action: auditAction(label), Target: target, Detail: strings.Join(detail, " ")})
}

// record writes e with the request's actor and address. The audit log is
// written after the change it describes, so a failure here is logged
// loudly; the change is not undone.
func (s *Server) record(r *http.Request, e audit.Entry) {
	if s.opts.Audit == nil {
		return
	}
	if e.Actor == "" {
		e.Actor = actor(r)
	}
	e.Source = clientIP(r)
	// The request may have been cancelled; the record must still be made.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if err := s.opts.Audit.Record(ctx, e); err != nil {
		s.log.Error("AUDIT LOG WRITE FAILED", "action", e.Action, "actor", e.Actor, "target", e.Target, "err", err)
	}
}

type auditEntryJSON struct {
	Seq    int64     `json:"seq"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Source string    `json:"source"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Detail string    `json:"detail"`
	Hash   string    `json:"hash"`
}

type auditPage struct {
	Items     []auditEntryJSON `json:"items"`
	NextAfter int64            `json:"next_after,omitempty"` // absent on the last page
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Audit == nil {
		return notConfigured("audit entries")
	}
	q := newQuery(r)
	after, limit := q.int("after", 0, 1<<62, 0), q.limit()
	if q.err != nil {
		return q.err
	}
	es, err := s.opts.Audit.Entries(r.Context(), after, limit)
	if err != nil {
		return err
	}
	page := auditPage{Items: make([]auditEntryJSON, len(es))}
	for i, e := range es {
		page.Items[i] = auditEntryJSON{Seq: e.Seq, At: e.At.UTC(), Actor: e.Actor, Source: e.Source, Action: e.Action,
			Target: e.Target, Detail: e.Detail, Hash: hex.EncodeToString(e.Hash)}
	}
	if len(es) == limit {
		page.NextAfter = es[len(es)-1].Seq
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}
