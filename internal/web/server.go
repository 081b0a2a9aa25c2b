package web

import (
	"context"
	"crypto/rand"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/audit"
	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/notify"
	"github.com/vigil-edr/vigil/internal/overview"
	"github.com/vigil-edr/vigil/internal/ruleset"
	"github.com/vigil-edr/vigil/internal/transport"
)

// Alerts is what the API needs for alert triage. The reading and comment
// methods match alert.Store; Transition and Suppress match *alert.Processor,
// so struct{ alert.Store; *alert.Processor } satisfies it.
type Alerts interface {
	ListAlerts(ctx context.Context, f alert.Filter) ([]alert.Alert, error)
	// GetAlert returns store.ErrNotFound for an unknown id.
	GetAlert(ctx context.Context, id int64) (*alert.Alert, error)
	Comments(ctx context.Context, alertID int64) ([]alert.Comment, error)
	AddComment(ctx context.Context, c *alert.Comment) error // sets c.ID
	// SetAssignee returns store.ErrNotFound for an unknown id.
	SetAssignee(ctx context.Context, id int64, assignee string) error
	// Transition changes an alert's state through the state machine. It
	// returns store.ErrNotFound for an unknown id, an error wrapping
	// alert.ErrTransition for a change the machine forbids and
	// store.ErrConflict when a concurrent change won; all but the first
	// become 409.
	Transition(ctx context.Context, id int64, to alert.State, by, reason string) error

	// Suppress validates and records a suppression, setting s.ID and
	// s.CreatedAt.
	Suppress(ctx context.Context, s *alert.Suppression) error
	ActiveSuppressions(ctx context.Context, now time.Time) ([]alert.Suppression, error)
	// DeleteSuppression returns store.ErrNotFound for an unknown id.
	DeleteSuppression(ctx context.Context, id int64) error
}

// Events searches stored events; eventstore.Store satisfies it.
type Events interface {
	Search(ctx context.Context, q eventstore.Query) ([]eventstore.Record, error)
	// Get returns store.ErrNotFound for an unknown id.
	Get(ctx context.Context, id int64) (eventstore.Record, error)
}

// Hosts lists and revokes enrolled agents; transport.Store satisfies it.
type Hosts interface {
	ListAgents(ctx context.Context) ([]transport.Agent, error)
	// GetAgent returns store.ErrNotFound for an unknown id.
	GetAgent(ctx context.Context, id string) (transport.Agent, error)
	RevokeAgent(ctx context.Context, id string, at time.Time) error
}

// Enrollment stores enrolment tokens; transport.Store satisfies it. The API
// mints tokens with transport.NewToken and shows the caller the
// "<id>.<secret>" plaintext once.
type Enrollment interface {
	CreateEnrollToken(ctx context.Context, t transport.EnrollToken) error
	ListEnrollTokens(ctx context.Context) ([]transport.EnrollToken, error)
	// RevokeEnrollToken returns store.ErrNotFound for an unknown id.
	RevokeEnrollToken(ctx context.Context, id string) error
}

// Rules is the live rule set; *ruleset.Manager satisfies it.
type Rules interface {
	// List describes every loaded or rejected rule with its health.
	List() []ruleset.Info
	SetEnabled(ctx context.Context, id string, enabled bool) error
	// Load reloads the rule files.
	Load(ctx context.Context) error
}

// Notify configures notification channels and routes; *notify.Notifier
// satisfies it. Its validation errors are *notify.ConfigError (400).
type Notify interface {
	ListChannels(ctx context.Context) ([]notify.Channel, error)
	// GetChannel, UpdateChannel, DeleteChannel and SendTest return
	// store.ErrNotFound for an unknown id; DeleteChannel store.ErrConflict
	// while a route uses the channel.
	GetChannel(ctx context.Context, id int64) (*notify.Channel, error)
	CreateChannel(ctx context.Context, c *notify.Channel) error
	UpdateChannel(ctx context.Context, c *notify.Channel) error
	DeleteChannel(ctx context.Context, id int64) error
	// SendTest returns a *notify.SendError when the attempt failed.
	SendTest(ctx context.Context, id int64) error
	ListRoutes(ctx context.Context) ([]notify.Route, error)
	GetRoute(ctx context.Context, id int64) (*notify.Route, error)
	// CreateRoute and UpdateRoute return store.ErrConflict for an unknown
	// channel id.
	CreateRoute(ctx context.Context, r *notify.Route) error
	UpdateRoute(ctx context.Context, r *notify.Route) error
	DeleteRoute(ctx context.Context, id int64) error
}

// Registry is where /metrics reads from and where the API registers its own
// request metrics; *prometheus.Registry satisfies it.
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// Options configure a Server. Tokens is required; a nil Alerts, Events,
// Hosts, Enrollment, Rules, Notify, Cases, Inventory, SCA, Vulns, Actions or Hygiene makes its routes
// answer 503 "unavailable" (they still authenticate, so the route table
// stays the whole surface).
type Options struct {
	Tokens     authz.Store // API tokens: authentication and /api/v1/tokens
	Alerts     Alerts
	Events     Events
	Hosts      Hosts
	Enrollment Enrollment
	Rules      Rules
	Notify     Notify
	Cases      Cases
	Inventory  Inventory
	SCA        SCA // configuration assessment results
	Vulns      Vulns
	// Overview aggregates alerts for the console's overview page
	// (store/sqlite's DB satisfies it); nil leaves the page without them.
	Overview overview.Store
	Actions  Actions
	Hygiene  Hygiene // hygiene scores and reports
	// Playbooks configures automated response (*respond.Service).
	Playbooks Playbooks
	// Metrics is served at /metrics; nil means a new registry with only the
	// API's own metrics.
	Metrics Registry
	// Ready reports whether the server can do its work (store reachable, bus
	// connected); nil means always ready. Its error is logged, not shown.
	Ready func() error
	// AgentHandler, if set, serves everything under /agent/ unchanged
	// (transport's handler; it authenticates agents by mTLS itself).
	AgentHandler http.Handler
	Logger       *slog.Logger
	Now          func() time.Time // default time.Now

	// The console: Users, Sessions and Login are all needed for sign-in;
	// without them console pages answer 503 and the API takes only bearer
	// tokens.
	Users    authz.UserStore
	Sessions authz.SessionStore
	Login    *authz.Authenticator
	// Audit receives an entry for every state-changing request (audit.go)
	// and serves GET /api/v1/audit; nil records nothing.
	Audit *audit.Log
	// SessionIdle ends a session not used for this long (default 30 min);
	// SessionMax ends any session this long after sign-in (default 12 h).
	SessionIdle, SessionMax time.Duration
	// StreamHeartbeat is how often the alert stream sends a comment line
	// (default 15 s); StreamMax how long one stream connection lasts before
	// the browser reconnects, re-authenticating (default 5 min);
	// StreamPoll how often it looks for changes without a wake-up (1 s).
	StreamHeartbeat, StreamMax, StreamPoll time.Duration
}

// Server is the HTTP API.
type Server struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	mux     *http.ServeMux
	routes  []route
	pages   []page
	tmpl    map[string]*template.Template
	openapi []byte
	metrics http.Handler

	enrolKey  []byte // derives TOTP enrolment secrets from pending sessions
	sweepMu   sync.Mutex
	usersMu   sync.Mutex // serialises user changes (the last-admin check)
	lastSweep time.Time
	alertWake *wakeup // AlertsChanged → alert streams

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	authFail *prometheus.CounterVec

	loginThrottled prometheus.Counter
}

// New builds a Server. It panics if Options.Tokens is nil or the route table
// is inconsistent (a programming error, found by any test).
func New(opts Options) *Server {
	if opts.Tokens == nil {
		panic("web: Options.Tokens is required")
	}
	s := &Server{opts: opts, log: opts.Logger, now: opts.Now, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.opts.Metrics == nil {
		s.opts.Metrics = prometheus.NewRegistry()
	}
	s.initMetrics()
	s.enrolKey = make([]byte, 32)
	rand.Read(s.enrolKey)
	s.alertWake = newWakeup()
	s.routes = s.table()
	for _, rt := range s.routes {
		s.register(rt)
	}
	s.tmpl = parseTemplates()
	s.pages = s.pageTable()
	for _, pg := range s.pages {
		s.registerPage(pg)
	}
	s.openapi = s.openAPI()
	return s
}

// Handler returns the HTTP handler for the whole surface: the API, health,
// metrics and the agent mount.
func (s *Server) Handler() http.Handler { return s }

// ServeHTTP routes a request. Unknown paths and methods get JSON errors, and
// no request is ever redirected (the mux's redirects would echo the path).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setCommonHeaders(w.Header())
	if s.opts.AgentHandler != nil && strings.HasPrefix(r.URL.Path, "/agent/") {
		s.opts.AgentHandler.ServeHTTP(w, r)
		return
	}
	p := r.URL.Path
	if p == "" || p[0] != '/' || path.Clean(p) != p {
		s.unmatched(w, http.StatusNotFound, "")
		return
	}
	h, pattern := s.mux.Handler(r)
	if pattern == "" {
		// Ask the mux's own 404/405 handler what it would say, then say it in JSON.
		rec := &headerRecorder{h: http.Header{}}
		h.ServeHTTP(rec, r)
		s.unmatched(w, rec.status, rec.h.Get("Allow"))
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) unmatched(w http.ResponseWriter, status int, allow string) {
	e := errorf(CodeNotFound, "no such route")
	if status == http.StatusMethodNotAllowed {
		e = errorf(CodeMethodNotAllowed, "method not allowed; allowed: %s", allow)
		w.Header().Set("Allow", allow)
	}
	s.requests.WithLabelValues("unmatched", strconv.Itoa(e.Status())).Inc()
	writeError(w, e)
}

// headerRecorder captures a status and headers, discarding the body.
type headerRecorder struct {
	h      http.Header
	status int
}

func (r *headerRecorder) Header() http.Header { return r.h }
func (r *headerRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return len(b), nil
}
func (r *headerRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (s *Server) initMetrics() {
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_http_requests_total",
		Help: "API requests by route pattern and status code.",
	}, []string{"route", "code"})
	s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "vigil_http_request_duration_seconds",
		Help:    "API request latency by route pattern.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route"})
	s.authFail = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_http_auth_failures_total",
		Help: "Rejected API requests: reason is missing, invalid (unknown, expired or revoked) or forbidden.",
	}, []string{"reason"})
	s.loginThrottled = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_console_login_throttled_total",
		Help: "Console sign-in attempts refused by the per-address rate limit (not audited one by one).",
	})
	s.loginThrottled = registerOrExisting(s.opts.Metrics, s.loginThrottled)
	s.requests = registerOrExisting(s.opts.Metrics, s.requests)
	s.duration = registerOrExisting(s.opts.Metrics, s.duration)
	s.authFail = registerOrExisting(s.opts.Metrics, s.authFail)
	s.metrics = promhttp.HandlerFor(s.opts.Metrics, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// registerOrExisting registers c, or returns the collector already
// registered under the same description (a second Server on one registry).
func registerOrExisting[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("web: registering metrics: " + err.Error())
	}
	return c
}
