package transport

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vigil-edr/vigil/internal/pki"
	"github.com/vigil-edr/vigil/internal/store"
	"github.com/vigil-edr/vigil/internal/wire"
)

// Paths of the agent API, version 1. The handler serves them as they are,
// so a caller mounting it (package web) uses the /agent/ prefix without
// stripping it.
const (
	PathEnroll    = "/agent/v1/enroll"
	PathRenew     = "/agent/v1/renew"
	PathEvents    = "/agent/v1/events"
	PathHeartbeat = "/agent/v1/heartbeat"
	// Response actions (docs/actions.md): long poll, results, collected files.
	PathActions      = "/agent/v1/actions"
	PathActionResult = "/agent/v1/actions/result"
	PathActionFile   = "/agent/v1/actions/file"
)

// MaxActionWait is the longest an agent's action poll is held open.
const MaxActionWait = 60 * time.Second

const (
	// MaxBatchBytes is the largest accepted events body as sent (still
	// compressed): the 4 MiB batch limit plus 64 KiB for framing.
	MaxBatchBytes = 4<<20 + 64<<10
	// maxControlBytes bounds enrol, renew and heartbeat bodies.
	maxControlBytes = 64 << 10
	// MaxRevocationDelay is the longest a revoked agent can still send:
	// RevocationRefresh may not exceed it, and a revocation set older than
	// it (the store failing) makes agent routes answer 503.
	MaxRevocationDelay = 60 * time.Second
	// maxInfoLen bounds hostname, os, arch and version.
	maxInfoLen = 256
)

// ServerOptions configures NewServer. Store, Authority and Ingester are
// required.
type ServerOptions struct {
	Store     Store
	Authority *pki.Authority
	Ingester  Ingester
	// CertValidity is the lifetime of agent certificates (default 30 days).
	CertValidity time.Duration
	// RenewBefore: agents are told to renew this long before their
	// certificate expires (default CertValidity/3).
	RenewBefore time.Duration
	// RevocationRefresh is how often the revoked-agent set is reloaded
	// (default 10 s, at most MaxRevocationDelay).
	RevocationRefresh time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// ActionKey is the public half of the key response commands are signed
	// with; enrolment and renewal answers carry it to the agent.
	ActionKey ed25519.PublicKey
	// Actions serves the agent's action routes; nil answers them 404.
	Actions Actions
	// Logger receives enrolment and refusal records (default: discarded).
	// Token secrets, keys and certificates are never logged.
	Logger *slog.Logger
}

// Server serves the agent API. It is safe for concurrent use.
type Server struct {
	opts ServerOptions
	log  *slog.Logger

	mu         sync.Mutex
	loadedAt   time.Time           // when revoked was last loaded; zero before
	revoked    map[string]struct{} // agent ids
	known      map[string]struct{} // agent ids found in the store, not revoked then
	refreshing sync.Mutex          // one RevokedAgents call at a time

	touchMu sync.Mutex
	touched map[string]time.Time // agent id → when a batch last updated its LastSeen
}

// batchTouchEvery is how often event batches update an agent's LastSeen: a
// busy agent sends several batches a second, and each update is a write
// waiting for the store's writer. Heartbeats always update it.
const batchTouchEvery = 5 * time.Second

// NewServer checks opts, fills defaults and returns the server.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.Store == nil || opts.Authority == nil || opts.Ingester == nil {
		return nil, errors.New("transport: ServerOptions needs Store, Authority and Ingester")
	}
	if opts.CertValidity == 0 {
		opts.CertValidity = pki.DefaultAgentValidity
	}
	if opts.CertValidity < time.Hour {
		return nil, fmt.Errorf("transport: CertValidity %v is shorter than an hour", opts.CertValidity)
	}
	if opts.RenewBefore == 0 {
		opts.RenewBefore = opts.CertValidity / 3
	}
	if opts.RenewBefore < 0 || opts.RenewBefore >= opts.CertValidity {
		return nil, fmt.Errorf("transport: RenewBefore %v must be positive and shorter than CertValidity %v", opts.RenewBefore, opts.CertValidity)
	}
	if opts.RevocationRefresh == 0 {
		opts.RevocationRefresh = 10 * time.Second
	}
	if opts.RevocationRefresh < 0 || opts.RevocationRefresh > MaxRevocationDelay {
		return nil, fmt.Errorf("transport: RevocationRefresh %v must be between 0 and %v", opts.RevocationRefresh, MaxRevocationDelay)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{opts: opts, log: log, known: map[string]struct{}{}}, nil
}

// Handler serves the agent API paths (PathEnroll, …) and answers every
// other path with 404 not_found. It must sit behind a TLS listener
// configured like pki.Authority.ServerTLSConfig; it verifies the client
// certificate itself as well.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	var h func(http.ResponseWriter, *http.Request) error
	switch r.URL.Path {
	case PathEnroll:
		h = s.enroll
	case PathRenew:
		h = s.renew
	case PathEvents:
		h = s.events
	case PathHeartbeat:
		h = s.heartbeat
	case PathActions, PathActionResult, PathActionFile:
		if s.opts.Actions == nil {
			writeError(w, errNotFound)
			return
		}
		h = s.actionRoute(r.URL.Path)
	default:
		writeError(w, errNotFound)
		return
	}
	method := http.MethodPost
	if r.URL.Path == PathActions {
		method = http.MethodGet
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		writeError(w, &Error{errMethod.Status, errMethod.Code, "use " + method})
		return
	}
	if err := h(w, r); err != nil {
		var ae *Error
		if !errors.As(err, &ae) {
			s.log.Error("agent api", "path", r.URL.Path, "err", err)
			ae = errInternal
		}
		writeError(w, ae)
	}
}

// RefreshRevocations reloads the revoked-agent set now. The console calls
// it after revoking an agent so the revocation applies at once in this
// process; other processes pick it up within RevocationRefresh.
func (s *Server) RefreshRevocations(ctx context.Context) error {
	s.refreshing.Lock()
	defer s.refreshing.Unlock()
	return s.reloadRevoked(ctx)
}

func (s *Server) reloadRevoked(ctx context.Context) error {
	now := s.opts.Now()
	ids, err := s.opts.Store.RevokedAgents(ctx)
	if err != nil {
		return fmt.Errorf("transport: load revoked agents: %w", err)
	}
	set := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		set[id] = struct{}{}
	}
	s.mu.Lock()
	s.revoked, s.loadedAt = set, now
	for id := range set {
		delete(s.known, id)
	}
	s.mu.Unlock()
	return nil
}

// agent returns the verified agent id of r's client certificate, after
// checking that the agent exists and is not revoked.
func (s *Server) agent(r *http.Request) (string, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", errNoCert
	}
	now := s.opts.Now()
	// Verified here against our CA, whatever the listener checked: a
	// certificate from another CA, a server certificate or one without the
	// vigil://agent URI never names an agent.
	id, err := s.opts.Authority.VerifyAgent(r.TLS.PeerCertificates, now)
	if err != nil {
		s.log.Info("agent certificate refused", "remote", r.RemoteAddr, "err", err)
		return "", errNoCert
	}
	ctx := r.Context()

	s.mu.Lock()
	due := now.Sub(s.loadedAt) >= s.opts.RevocationRefresh
	s.mu.Unlock()
	if due {
		s.refreshing.Lock()
		s.mu.Lock()
		due = now.Sub(s.loadedAt) >= s.opts.RevocationRefresh // another request may have reloaded
		s.mu.Unlock()
		if due {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			err = s.reloadRevoked(rctx)
			cancel()
		}
		s.refreshing.Unlock()
		if err != nil {
			s.log.Warn("revocation refresh failed", "err", err)
		}
	}
	s.mu.Lock()
	stale := s.loadedAt.IsZero() || now.Sub(s.loadedAt) > MaxRevocationDelay
	_, revoked := s.revoked[id]
	_, known := s.known[id]
	s.mu.Unlock()
	switch {
	case stale:
		return "", errUnavailable
	case revoked:
		return "", errRevoked
	case known:
		return id, nil
	}

	a, err := s.opts.Store.GetAgent(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return "", errUnknownAgent
	}
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.Revoked {
		s.revoked[id] = struct{}{}
		return "", errRevoked
	}
	s.known[id] = struct{}{}
	return id, nil
}

// enrollRequest is the body of POST /agent/v1/enroll.
type enrollRequest struct {
	Token    string `json:"token"`
	CSR      []byte `json:"csr"` // DER, base64 in JSON
	Hostname string `json:"hostname"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	Version  string `json:"version"`
}

// certResponse answers enrol and renew.
type certResponse struct {
	AgentID       string    `json:"agent_id"`
	Certificate   []byte    `json:"certificate"`    // DER
	CACertificate []byte    `json:"ca_certificate"` // DER
	RenewAfter    time.Time `json:"renew_after"`
	ActionKey     []byte    `json:"action_key,omitempty"` // Ed25519 public key
}

func (s *Server) enroll(w http.ResponseWriter, r *http.Request) error {
	var req enrollRequest
	if err := readJSON(w, r, &req); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"hostname", req.Hostname}, {"os", req.OS}, {"arch", req.Arch}, {"version", req.Version}} {
		if !printable(f.v) {
			return badRequest(f.name + " must be 1–256 printable characters")
		}
	}
	tokenID, secret, ok := strings.Cut(req.Token, ".")
	if !ok || tokenID == "" || secret == "" || len(req.Token) > 512 {
		s.log.Info("enrolment refused: malformed token", "remote", r.RemoteAddr)
		return errTokenInvalid
	}
	// Check the request before spending a token use on it.
	if _, err := pki.ParseCSR(req.CSR); err != nil {
		return badRequest("csr: not a valid, self-signed certificate request")
	}
	now := s.opts.Now()
	hash := sha256.Sum256([]byte(secret))
	if err := s.opts.Store.ConsumeEnrollToken(r.Context(), tokenID, hash[:], now); err != nil {
		if errors.Is(err, ErrTokenInvalid) {
			s.log.Info("enrolment refused: token invalid", "token_id", tokenID, "remote", r.RemoteAddr)
			return errTokenInvalid
		}
		return err
	}
	id := newUUID()
	der, serial, notAfter, err := s.opts.Authority.SignAgent(req.CSR, id, s.opts.CertValidity)
	if err != nil {
		return err
	}
	a := Agent{
		ID: id, Hostname: req.Hostname, OS: req.OS, Arch: req.Arch, Version: req.Version,
		CertSerial: serial, CertNotAfter: notAfter, EnrolledAt: now, LastSeen: now,
	}
	if err := s.opts.Store.PutAgent(r.Context(), a); err != nil {
		return err
	}
	s.log.Info("agent enrolled", "agent_id", id, "hostname", req.Hostname, "token_id", tokenID, "serial", serial)
	return writeJSON(w, http.StatusOK, certResponse{
		AgentID: id, Certificate: der, CACertificate: s.opts.Authority.CACert().Raw,
		RenewAfter: notAfter.Add(-s.opts.RenewBefore), ActionKey: s.opts.ActionKey,
	})
}

// renewRequest is the body of POST /agent/v1/renew.
type renewRequest struct {
	CSR []byte `json:"csr"`
}

func (s *Server) renew(w http.ResponseWriter, r *http.Request) error {
	id, err := s.agent(r)
	if err != nil {
		return err
	}
	var req renewRequest
	if err := readJSON(w, r, &req); err != nil {
		return err
	}
	der, serial, notAfter, err := s.opts.Authority.SignAgent(req.CSR, id, s.opts.CertValidity)
	if errors.Is(err, pki.ErrBadCSR) {
		return badRequest("csr: not a valid, self-signed certificate request")
	}
	if err != nil {
		return err
	}
	// Read the row as late as possible: the interface has no
	// compare-and-set, so a revocation landing between GetAgent and
	// PutAgent would be overwritten (see docs/transport.md).
	a, err := s.opts.Store.GetAgent(r.Context(), id)
	if err != nil {
		return err
	}
	if a.Revoked {
		return errRevoked
	}
	a.CertSerial, a.CertNotAfter, a.LastSeen = serial, notAfter, s.opts.Now()
	if err := s.opts.Store.PutAgent(r.Context(), a); err != nil {
		return err
	}
	s.log.Info("agent certificate renewed", "agent_id", id, "serial", serial)
	return writeJSON(w, http.StatusOK, certResponse{
		AgentID: id, Certificate: der, CACertificate: s.opts.Authority.CACert().Raw,
		RenewAfter: notAfter.Add(-s.opts.RenewBefore), ActionKey: s.opts.ActionKey,
	})
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	id, err := s.agent(r)
	if err != nil {
		return err
	}
	if r.ContentLength > MaxBatchBytes {
		return errTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBatchBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge
		}
		return badRequest("reading body: " + err.Error())
	}
	s.touchBatch(r.Context(), id)
	status, resp, header := s.opts.Ingester.IngestBatch(r.Context(), id, body, r.Header.Get("Content-Encoding"))
	for k, v := range header {
		w.Header().Set(k, v)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_, _ = w.Write(resp)
	return nil
}

// heartbeatResponse answers POST /agent/v1/heartbeat.
type heartbeatResponse struct {
	ServerTime time.Time `json:"server_time"`
	RenewAfter time.Time `json:"renew_after"`
	Renew      bool      `json:"renew"`
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) error {
	id, err := s.agent(r)
	if err != nil {
		return err
	}
	if r.ContentLength > maxControlBytes {
		return errTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxControlBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge
		}
		return badRequest("reading body: " + err.Error())
	}
	h, ok, err := wire.DecodeHealth(body)
	if err != nil {
		// The certificate proves the agent is alive; only its health is
		// refused.
		s.touch(r.Context(), id)
		return badRequest(err.Error())
	}
	if ok {
		canon, err := json.Marshal(h)
		if err != nil {
			return err
		}
		if err := s.opts.Store.TouchAgentHealth(r.Context(), id, s.opts.Now(), canon); err != nil {
			s.log.Warn("touch agent health", "agent_id", id, "err", err)
		}
	} else {
		s.touch(r.Context(), id)
	}
	now := s.opts.Now()
	renewAfter := r.TLS.PeerCertificates[0].NotAfter.Add(-s.opts.RenewBefore)
	return writeJSON(w, http.StatusOK, heartbeatResponse{
		ServerTime: now.UTC(), RenewAfter: renewAfter.UTC(), Renew: !now.Before(renewAfter),
	})
}

// touchBatch updates LastSeen for an event batch, at most once per
// batchTouchEvery per agent.
func (s *Server) touchBatch(ctx context.Context, id string) {
	now := s.opts.Now()
	s.touchMu.Lock()
	last, ok := s.touched[id]
	due := !ok || now.Sub(last) >= batchTouchEvery || now.Before(last)
	if due {
		if s.touched == nil {
			s.touched = map[string]time.Time{}
		}
		s.touched[id] = now
	}
	s.touchMu.Unlock()
	if due {
		s.touch(ctx, id)
	}
}

func (s *Server) touch(ctx context.Context, id string) {
	if err := s.opts.Store.TouchAgent(ctx, id, s.opts.Now()); err != nil {
		s.log.Warn("touch agent", "agent_id", id, "err", err)
	}
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength > maxControlBytes {
		return errTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxControlBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge
		}
		return badRequest("reading body: " + err.Error())
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("body is not the expected JSON: " + err.Error())
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

func printable(s string) bool {
	if s == "" || len(s) > maxInfoLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// NewToken makes an enrolment token: the plaintext to hand to the operator
// (shown once) and the row to store with Store.CreateEnrollToken. The
// plaintext is "<id>.<secret>": id is 16 hex digits, secret 43 base64url
// characters (32 random bytes); the row keeps SHA-256(secret) only. A zero
// ttl means the token does not expire; maxUses 0 means unlimited.
func NewToken(now time.Time, ttl time.Duration, maxUses int, note string) (plaintext string, t EnrollToken) {
	var idb [8]byte
	var secret [32]byte
	_, _ = rand.Read(idb[:])
	_, _ = rand.Read(secret[:])
	id := fmt.Sprintf("%x", idb)
	sec := base64.RawURLEncoding.EncodeToString(secret[:])
	hash := sha256.Sum256([]byte(sec))
	t = EnrollToken{ID: id, SecretHash: hash[:], Note: note, CreatedAt: now, MaxUses: maxUses}
	if ttl > 0 {
		t.ExpiresAt = now.Add(ttl)
	}
	return id + "." + sec, t
}
