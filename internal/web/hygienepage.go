package web

import (
	"net/http"
	"strconv"

	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/hygiene"
)

// hygieneData is the /hygiene page: the fleet's score, its hosts worst
// first and the report downloads.
type hygieneData struct {
	View  hygiene.FleetView
	Trend []trendBar // the fleet's score history, oldest left
	W, H  int
}

// trendBar is one point of the history as a bar of the chart.
type trendBar struct {
	X, Y, W, H int
	Title      string
}

// hygienePage serves /hygiene.
func (s *Server) hygienePage(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.opts.Hygiene == nil {
		return nil, notConfigured("hygiene scores")
	}
	v, err := s.opts.Hygiene.Fleet(r.Context(), 96)
	if err != nil {
		return nil, err
	}
	d := hygieneData{View: v, W: 960, H: 120}
	n := len(v.History)
	for i := n - 1; i >= 0; i-- {
		p := v.History[i]
		w := d.W / max(n, 24)
		h := p.Score * (d.H - 10) / 100
		d.Trend = append(d.Trend, trendBar{X: (n - 1 - i) * w, Y: d.H - h, W: max(w-2, 1), H: h,
			Title: p.At.UTC().Format("2006-01-02 15:04 UTC") + ": " + strconv.Itoa(p.Score)})
	}
	return d, nil
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
