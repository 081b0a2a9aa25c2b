package web

import (
	"net/http"

	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/hygiene"
)

// hygieneData is the /hygiene page: the fleet's score, its hosts worst
// first and the report downloads.
type hygieneData struct {
	View hygiene.FleetView
}

// hygienePage serves /hygiene.
func (s *Server) hygienePage(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.opts.Hygiene == nil {
		return nil, notConfigured("hygiene scores")
	}
	v, err := s.opts.Hygiene.Fleet(r.Context(), 0)
	if err != nil {
		return nil, err
	}
	return hygieneData{View: v}, nil
}

// hostHygiene returns the host's score for its page when the caller may
// read it (nil otherwise).
func (s *Server) hostHygiene(r *http.Request, agentID string) (*hygiene.HostView, error) {
	if s.opts.Hygiene == nil || !who(r).role.Allows(authz.PermHygieneRead) {
		return nil, nil
	}
	v, err := s.opts.Hygiene.Host(r.Context(), agentID, 0)
	if err != nil {
		return nil, err
	}
	return &v, nil
}
