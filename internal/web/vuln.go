package web

import (
	"context"
	"net/http"

	"github.com/vigil-edr/vigil/internal/vuln"
)

// Vulns serves vulnerability findings; vuln.Store (store/sqlite's DB)
// satisfies it.
type Vulns interface {
	// HostFindings returns a host never evaluated with a zero Evaluation
	// and no findings.
	HostFindings(ctx context.Context, agentID string) (vuln.HostFindings, error)
	Fleet(ctx context.Context, top int) (vuln.Fleet, error)
}

// getHostVulns answers GET /api/v1/hosts/{id}/vulnerabilities: 404 for an
// unknown host, no findings and a zero evaluation for a host not yet
// evaluated.
func (s *Server) getHostVulns(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Vulns == nil {
		return notConfigured("vulnerabilities")
	}
	a, err := s.hostByPath(r)
	if err != nil {
		return err
	}
	hf, err := s.opts.Vulns.HostFindings(r.Context(), a.ID)
	if err != nil {
		return err
	}
	hf.AgentID, hf.Findings = a.ID, orEmpty(hf.Findings)
	for i := range hf.Findings {
		hf.Findings[i].Aliases, hf.Findings[i].Binaries = orEmpty(hf.Findings[i].Aliases), orEmpty(hf.Findings[i].Binaries)
	}
	writeJSON(w, http.StatusOK, hf)
	return nil
}

// listVulns answers GET /api/v1/vulnerabilities: the fleet summary, hosts
// worst first with their names.
func (s *Server) listVulns(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Vulns == nil {
		return notConfigured("vulnerabilities")
	}
	q := newQuery(r)
	top := q.int("top", 0, 1000, 20)
	if q.err != nil {
		return q.err
	}
	f, err := s.opts.Vulns.Fleet(r.Context(), int(top))
	if err != nil {
		return err
	}
	if s.opts.Hosts != nil {
		as, err := s.opts.Hosts.ListAgents(r.Context())
		if err != nil {
			return err
		}
		names := make(map[string]string, len(as))
		for _, a := range as {
			names[a.ID] = a.Hostname
		}
		for i := range f.Hosts {
			f.Hosts[i].Hostname = names[f.Hosts[i].AgentID]
		}
	}
	f.Hosts, f.Advisories = orEmpty(f.Hosts), orEmpty(f.Advisories)
	writeJSON(w, http.StatusOK, f)
	return nil
}
