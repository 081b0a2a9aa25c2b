package web

import (
	"bytes"
	"context"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/vigil-edr/vigil/internal/hygiene"
)

// Hygiene serves hygiene scores; *hygiene.Service satisfies it.
type Hygiene interface {
	Fleet(ctx context.Context, history int) (hygiene.FleetView, error)
	// Host returns the Hosts store's error for an unknown agent.
	Host(ctx context.Context, agentID string, history int) (hygiene.HostView, error)
	// WriteReport writes the fleet's (agentID "") or a host's report.
	WriteReport(ctx context.Context, w io.Writer, agentID string, loc *time.Location) error
}

var pHistory = param{name: "history", typ: "integer", doc: "past points of the score, newest first, 0 to 2000 (default 100)"}

// getFleetHygiene answers GET /api/v1/hygiene.
func (s *Server) getFleetHygiene(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Hygiene == nil {
		return notConfigured("hygiene scores")
	}
	history, err := intParam(r, "history", 100, 0, hygiene.HistoryKeep)
	if err != nil {
		return err
	}
	v, err := s.opts.Hygiene.Fleet(r.Context(), history)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// getHostHygiene answers GET /api/v1/hosts/{id}/hygiene.
func (s *Server) getHostHygiene(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Hygiene == nil {
		return notConfigured("hygiene scores")
	}
	history, err := intParam(r, "history", 100, 0, hygiene.HistoryKeep)
	if err != nil {
		return err
	}
	a, err := s.hostByPath(r)
	if err != nil {
		return err
	}
	v, err := s.opts.Hygiene.Host(r.Context(), a.ID, history)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// hygieneReport answers GET /api/v1/hygiene/report: the fleet's or one
// host's report as an HTML attachment under the report's own CSP.
func (s *Server) hygieneReport(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Hygiene == nil {
		return notConfigured("hygiene reports")
	}
	q := r.URL.Query()
	noteAudit(r, "fleet", "")
	loc := time.UTC
	if tz := q.Get("tz"); tz != "" {
		var err error
		if len(tz) > 64 || !tzName.MatchString(tz) {
			return errorf(CodeBadRequest, "tz must be an IANA time zone name such as Europe/Paris")
		}
		if loc, err = time.LoadLocation(tz); err != nil {
			return errorf(CodeBadRequest, "unknown time zone %q", tz)
		}
	}
	id, name := "", "vigil-hygiene-fleet.html"
	if h := q.Get("host"); h != "" {
		noteAudit(r, "agent:"+h, "")
		if s.opts.Hosts == nil {
			return notConfigured("hosts")
		}
		a, err := s.opts.Hosts.GetAgent(r.Context(), h)
		if err != nil {
			return err
		}
		id, name = a.ID, "vigil-hygiene-"+safeFileName(a.ID)+".html"
	}
	var buf bytes.Buffer
	if err := s.opts.Hygiene.WriteReport(r.Context(), &buf, id, loc); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", hygiene.ReportCSP)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set("Referrer-Policy", "no-referrer")
	setCommonHeaders(h)
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
	return nil
}

// safeFileName keeps letters, digits, '-' and '_' of s (an agent id).
func safeFileName(s string) string {
	b := []byte(s)
	out := b[:0]
	for _, c := range b {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			out = append(out, c)
		}
	}
	if len(out) == 0 || len(out) > 80 {
		return "host"
	}
	return string(out)
}
