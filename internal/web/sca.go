package web

import (
	"context"
	"net/http"
	"strconv"

	"github.com/vigil-edr/vigil/internal/sca"
)

// SCA serves configuration assessment results; sca.Store (store/sqlite's
// DB) satisfies it.
type SCA interface {
	HostSCA(ctx context.Context, agentID string, history int) (sca.Host, error)
	FleetSCA(ctx context.Context, limit int) (sca.Fleet, error)
}

// intParam reads an optional integer query parameter within [lo, hi].
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, errorf(CodeBadRequest, "%s: want an integer from %d to %d", name, lo, hi)
	}
	return n, nil
}

// getHostSCA answers GET /api/v1/hosts/{id}/sca: 404 for an unknown host,
// an empty policy list for a host that has not reported a scan yet.
func (s *Server) getHostSCA(w http.ResponseWriter, r *http.Request) error {
	if s.opts.SCA == nil {
		return notConfigured("configuration assessment results")
	}
	history, err := intParam(r, "history", 30, 0, sca.HistoryKeep)
	if err != nil {
		return err
	}
	a, err := s.hostByPath(r)
	if err != nil {
		return err
	}
	h, err := s.opts.SCA.HostSCA(r.Context(), a.ID, history)
	if err != nil {
		return err
	}
	h.AgentID = a.ID
	h.Policies = orEmpty(h.Policies)
	writeJSON(w, http.StatusOK, h)
	return nil
}

// listFleetSCA answers GET /api/v1/sca.
func (s *Server) listFleetSCA(w http.ResponseWriter, r *http.Request) error {
	if s.opts.SCA == nil {
		return notConfigured("configuration assessment results")
	}
	limit, err := intParam(r, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	f, err := s.opts.SCA.FleetSCA(r.Context(), limit)
	if err != nil {
		return err
	}
	f.Hosts, f.Checks = orEmpty(f.Hosts), orEmpty(f.Checks)
	writeJSON(w, http.StatusOK, f)
	return nil
}
