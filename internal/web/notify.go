package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/vigil-edr/vigil/internal/notify"
	"github.com/vigil-edr/vigil/internal/store"
)

// ---- notification channels and routes (JSON shapes and handlers) ----

// channelJSON never carries the webhook secret or the SMTP password, only
// whether one is set; chat webhook URLs (which embed their token) are
// redacted.
type channelJSON struct {
	ID          int64      `json:"id"`
	Name        string     `json:"name"`
	Kind        string     `json:"kind"`
	Enabled     bool       `json:"enabled"`
	URL         string     `json:"url,omitempty"`
	HasSecret   bool       `json:"has_secret"`
	SMTPAddr    string     `json:"smtp_addr,omitempty"`
	SMTPTLS     string     `json:"smtp_tls,omitempty"`
	Username    string     `json:"username,omitempty"`
	HasPassword bool       `json:"has_password"`
	From        string     `json:"from,omitempty"`
	To          []string   `json:"to,omitempty"`
	CreatedAt   *time.Time `json:"created_at,omitempty"`
	UpdatedAt   *time.Time `json:"updated_at,omitempty"`
}

type channelList struct {
	Items []channelJSON `json:"items"`
}

// channelReq creates or replaces a channel. Enabled defaults to true.
type channelReq struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"`
	Enabled  *bool    `json:"enabled"`
	URL      string   `json:"url"`
	Secret   string   `json:"secret"`
	SMTPAddr string   `json:"smtp_addr"`
	SMTPTLS  string   `json:"smtp_tls"`
	Username string   `json:"username"`
	Password string   `json:"password"`
	From     string   `json:"from"`
	To       []string `json:"to"`
}

type testResult struct {
	Sent  bool   `json:"sent"`
	Error string `json:"error,omitempty"` // why not, safe to show
}

type routeJSON struct {
	ID                   int64      `json:"id"`
	Name                 string     `json:"name"`
	Enabled              bool       `json:"enabled"`
	MinLevel             string     `json:"min_level,omitempty"`
	Tags                 []string   `json:"tags"`
	Hosts                []string   `json:"hosts"`
	Channels             []int64    `json:"channels"`
	OnStateChange        bool       `json:"on_state_change"`
	EscalateAfterSeconds int64      `json:"escalate_after_seconds,omitempty"`
	EscalateTo           []int64    `json:"escalate_to"`
	CreatedAt            *time.Time `json:"created_at,omitempty"`
	UpdatedAt            *time.Time `json:"updated_at,omitempty"`
}

type routeList struct {
	Items []routeJSON `json:"items"`
}

// routeReq creates or replaces a route. Enabled defaults to true.
type routeReq struct {
	Name                 string   `json:"name"`
	Enabled              *bool    `json:"enabled"`
	MinLevel             string   `json:"min_level"`
	Tags                 []string `json:"tags"`
	Hosts                []string `json:"hosts"`
	Channels             []int64  `json:"channels"`
	OnStateChange        bool     `json:"on_state_change"`
	EscalateAfterSeconds int64    `json:"escalate_after_seconds"`
	EscalateTo           []int64  `json:"escalate_to"`
}

func toChannelJSON(c *notify.Channel) channelJSON {
	return channelJSON{ID: c.ID, Name: c.Name, Kind: string(c.Kind), Enabled: c.Enabled, URL: c.RedactedURL(),
		HasSecret: c.Secret != "", SMTPAddr: c.SMTPAddr, SMTPTLS: string(c.SMTPTLS), Username: c.Username,
		HasPassword: c.Password != "", From: c.From, To: c.To, CreatedAt: tm(c.CreatedAt), UpdatedAt: tm(c.UpdatedAt)}
}

func toRouteJSON(r *notify.Route) routeJSON {
	return routeJSON{ID: r.ID, Name: r.Name, Enabled: r.Enabled, MinLevel: r.MinLevel, Tags: nonNil(r.Tags),
		Hosts: nonNil(r.Hosts), Channels: nonNil(r.Channels), OnStateChange: r.OnStateChange,
		EscalateAfterSeconds: int64(r.EscalateAfter / time.Second), EscalateTo: nonNil(r.EscalateTo),
		CreatedAt: tm(r.CreatedAt), UpdatedAt: tm(r.UpdatedAt)}
}

func enabled(b *bool) bool { return b == nil || *b }

func (req *channelReq) channel() *notify.Channel {
	return &notify.Channel{Name: req.Name, Kind: notify.Kind(req.Kind), Enabled: enabled(req.Enabled), URL: req.URL,
		Secret: req.Secret, SMTPAddr: req.SMTPAddr, SMTPTLS: notify.TLSMode(req.SMTPTLS), Username: req.Username,
		Password: req.Password, From: req.From, To: req.To}
}

func (req *routeReq) route() (*notify.Route, *Error) {
	if req.EscalateAfterSeconds < 0 || req.EscalateAfterSeconds > int64(7*24*time.Hour/time.Second) {
		return nil, errorf(CodeBadRequest, "escalate_after_seconds must be between 0 and 604800")
	}
	return &notify.Route{Name: req.Name, Enabled: enabled(req.Enabled), MinLevel: req.MinLevel, Tags: req.Tags,
		Hosts: req.Hosts, Channels: req.Channels, OnStateChange: req.OnStateChange,
		EscalateAfter: time.Duration(req.EscalateAfterSeconds) * time.Second, EscalateTo: req.EscalateTo}, nil
}

func (s *Server) notifier() (Notify, error) {
	if s.opts.Notify == nil {
		return nil, notConfigured("notifications")
	}
	return s.opts.Notify, nil
}

func (s *Server) listChannels(w http.ResponseWriter, r *http.Request) error {
	n, err := s.notifier()
	if err != nil {
		return err
	}
	cs, err := n.ListChannels(r.Context())
	if err != nil {
		return err
	}
	out := channelList{Items: make([]channelJSON, len(cs))}
	for i := range cs {
		out.Items[i] = toChannelJSON(&cs[i])
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) createChannel(w http.ResponseWriter, r *http.Request) error {
	n, err := s.notifier()
	if err != nil {
		return err
	}
	var req channelReq
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	c := req.channel()
	if err := n.CreateChannel(r.Context(), c); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toChannelJSON(c))
	return nil
}

func (s *Server) getChannel(w http.ResponseWriter, r *http.Request) error {
	n, err := s.notifier()
	if err != nil {
		return err
	}
	id, e := pathInt(r, "id")
	if e != nil {
		return e
	}
	c, err := n.GetChannel(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toChannelJSON(c))
	return nil
}

func (s *Server) updateChannel(w http.ResponseWriter, r *http.Request) error {
	n, err := s.notifier()
	if err != nil {
		return err
	}
	id, e := pathInt(r, "id")
	if e != nil {
		return e
	}
	var req channelReq
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	c := req.channel()
	c.ID = id
	if err := n.UpdateChannel(r.Context(), c); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toChannelJSON(c))
	return nil
}

func (s *Server) deleteChannel(w http.ResponseWriter, r *http.Request) error {
	n, err := s.notifier()
	if err != nil {
		return err
	}
	id, e := pathInt(r, "id")
	if e != nil {
		return e
	}
	if err := n.DeleteChannel(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) testChannel(w http.ResponseWriter, r *http.Request) error {
	n, err := s.notifier()
	if err != nil {
		return err
	}
	id, e := pathInt(r, "id")
	if e != nil {
		return e
	}
	err = n.SendTest(r.Context(), id)
	var se *notify.SendError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, testResult{Sent: true})
	case errors.As(err, &se):
		writeJSON(w, http.StatusOK, testResult{Error: se.Msg})
	default:
		return err
	}
	return nil
}

func (s *Server) listRoutes(w http.ResponseWriter, r *http.Request) error {
	n, err := s.notifier()
	if err != nil {
		return err
	}
	rs, err := n.ListRoutes(r.Context())
	if err != nil {
		return err
	}
	out := routeList{Items: make([]routeJSON, len(rs))}
	for i := range rs {
		out.Items[i] = toRouteJSON(&rs[i])
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) createRoute(w http.ResponseWriter, r *http.Request) error {
	n, err := s.notifier()
	if err != nil {
		return err
	}
	var req routeReq
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	rt, e := req.route()
	if e != nil {
		return e
	}
	if err := n.CreateRoute(r.Context(), rt); err != nil {
		return routeErr(err)
	}
	writeJSON(w, http.StatusCreated, toRouteJSON(rt))
	return nil
}

// routeErr explains the one conflict a route write has: a channel id that
// does not exist.
func routeErr(err error) error {
	var ce *notify.ConfigError
	if !errors.As(err, &ce) && errors.Is(err, store.ErrConflict) {
		return errorf(CodeBadRequest, "a channel id does not exist")
	}
	return err
}

func (s *Server) getRoute(w http.ResponseWriter, r *http.Request) error {
	n, err := s.notifier()
	if err != nil {
		return err
	}
	id, e := pathInt(r, "id")
	if e != nil {
		return e
	}
	rt, err := n.GetRoute(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toRouteJSON(rt))
	return nil
}

func (s *Server) updateRoute(w http.ResponseWriter, r *http.Request) error {
	n, err := s.notifier()
	if err != nil {
		return err
	}
	id, e := pathInt(r, "id")
	if e != nil {
		return e
	}
	var req routeReq
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	rt, e := req.route()
	if e != nil {
		return e
	}
	rt.ID = id
	if err := n.UpdateRoute(r.Context(), rt); err != nil {
		return routeErr(err)
	}
	writeJSON(w, http.StatusOK, toRouteJSON(rt))
	return nil
}

func (s *Server) deleteRoute(w http.ResponseWriter, r *http.Request) error {
	n, err := s.notifier()
	if err != nil {
		return err
	}
	id, e := pathInt(r, "id")
	if e != nil {
		return e
	}
	if err := n.DeleteRoute(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
