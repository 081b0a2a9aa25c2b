package web

import (
	"context"
	"net/http"

	"github.com/vigil-edr/vigil/internal/hygiene"
)

// Hygiene serves hygiene scores; *hygiene.Service satisfies it.
type Hygiene interface {
	Fleet(ctx context.Context, history int) (hygiene.FleetView, error)
	// Host returns the Hosts store's error for an unknown agent.
	Host(ctx context.Context, agentID string, history int) (hygiene.HostView, error)
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
