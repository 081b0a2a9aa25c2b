package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/store"
)

// Console cookies. The __Host- prefix makes browsers refuse them unless they
// are Secure, have Path=/ and no Domain, so no sibling host can set them.
const (
	sessionCookie = "__Host-vigil_session"
	loginCookie   = "__Host-vigil_login" // double-submit token of the login form
	csrfHeader    = "X-CSRF-Token"
	csrfField     = "csrf"
)

// Session lifetime defaults (Options.SessionIdle, Options.SessionMax).
const (
	defaultSessionIdle = 30 * time.Minute
	defaultSessionMax  = 12 * time.Hour
	sessionTouchEvery  = time.Minute
)

// principal is who sent a request: an API token or a signed-in user.
type principal struct {
	kind string // "token" or "user"
	name string
	role authz.Role
	// sess is set for users; its CSRF token guards state changes.
	sess *authz.Session
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// who returns the authenticated caller of the request (the zero principal
// on public routes).
func who(r *http.Request) principal {
	p, _ := r.Context().Value(principalKey{}).(principal)
	return p
}

// actor names the caller in alert history, comments and the audit log:
// "user:NAME" or "token:NAME".
func actor(r *http.Request) string {
	p := who(r)
	if p.kind == "" {
		return "anonymous"
	}
	return p.kind + ":" + p.name
}

// clientIP is the peer address of the request (no proxy headers are
// trusted).
func clientIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

func tokenPrincipal(t authz.Token) principal {
	name := t.Name
	if name == "" {
		name = t.ID
	}
	return principal{kind: "token", name: name, role: t.Role}
}

// consoleReady reports whether sessions can be used at all.
func (s *Server) consoleReady() bool {
	return s.opts.Users != nil && s.opts.Sessions != nil && s.opts.Login != nil
}

var errNoSession = errors.New("no valid session")

// session returns the request's valid session and its user, or
// errNoSession. Expired sessions are deleted. pending allows a session that
// still has to enrol TOTP.
func (s *Server) session(r *http.Request, pending bool) (*authz.Session, authz.User, error) {
	if !s.consoleReady() {
		return nil, authz.User{}, errNoSession
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > maxSecretLen {
		return nil, authz.User{}, errNoSession
	}
	hash := authz.Hash(c.Value)
	ctx := r.Context()
	sess, err := s.opts.Sessions.SessionByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, authz.User{}, errNoSession
	}
	if err != nil {
		return nil, authz.User{}, err
	}
	now := s.now()
	if subtle.ConstantTimeCompare(sess.Hash, hash) != 1 {
		return nil, authz.User{}, errNoSession
	}
	if !now.Before(sess.ExpiresAt) || now.Sub(sess.LastSeen) >= s.sessionIdle() {
		if err := s.opts.Sessions.DeleteSession(ctx, hash); err != nil {
			s.log.Warn("deleting an expired session", "err", err)
		}
		return nil, authz.User{}, errNoSession
	}
	if sess.Pending && !pending {
		return nil, authz.User{}, errNoSession
	}
	u, err := s.opts.Users.GetUser(ctx, sess.User)
	if errors.Is(err, store.ErrNotFound) {
		return nil, authz.User{}, errNoSession
	}
	if err != nil {
		return nil, authz.User{}, err
	}
	if now.Sub(sess.LastSeen) >= sessionTouchEvery {
		if err := s.opts.Sessions.TouchSession(ctx, hash, now); err != nil {
			s.log.Warn("recording session use", "user", sess.User, "err", err)
		}
	}
	return &sess, u, nil
}

func (s *Server) sessionIdle() time.Duration {
	if s.opts.SessionIdle > 0 {
		return s.opts.SessionIdle
	}
	return defaultSessionIdle
}

func (s *Server) sessionMax() time.Duration {
	if s.opts.SessionMax > 0 {
		return s.opts.SessionMax
	}
	return defaultSessionMax
}

// startSession creates a session for user and sets its cookie.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, user string, pending bool) error {
	secret, hash := authz.NewSessionSecret()
	now := s.now().UTC()
	sess := authz.Session{Hash: hash, User: user, Pending: pending, CSRF: authz.NewSecret(),
		CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(s.sessionMax()),
		IP: clientIP(r), UserAgent: truncate(r.UserAgent(), 256)}
	if err := s.opts.Sessions.CreateSession(r.Context(), sess); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: secret, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(s.sessionMax() / time.Second)})
	return nil
}

// endSession deletes the request's session, if any, and clears the cookie.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) {
	s.dropSession(r)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// dropSession deletes the session the request's cookie names, if any.
func (s *Server) dropSession(r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" && len(c.Value) <= maxSecretLen && s.opts.Sessions != nil {
		if err := s.opts.Sessions.DeleteSession(r.Context(), authz.Hash(c.Value)); err != nil {
			s.log.Warn("deleting a session", "err", err)
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// stateChanging reports whether a method may change state (and so needs the
// CSRF checks when authenticated by cookie).
func stateChanging(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

var errCrossSite = &Error{Code: CodeForbidden, Message: "cross-site request refused"}
var errCSRF = &Error{Code: CodeForbidden, Message: "missing or invalid CSRF token; reload the page"}

// sameOrigin checks the browser's own statements about where a request
// comes from: Sec-Fetch-Site, when sent, must be same-origin, and Origin,
// when sent, must be this server. Clients that send neither (not a browser)
// still need the CSRF token.
func sameOrigin(r *http.Request) *Error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return errCrossSite
	}
	if o := r.Header.Get("Origin"); o != "" {
		scheme := "https"
		if r.TLS == nil {
			scheme = "http" // tests behind httptest; the server itself is HTTPS only
		}
		if o != scheme+"://"+r.Host {
			return errCrossSite
		}
	}
	return nil
}

// checkCSRF guards a state change made with a session cookie: same origin
// and the session's synchronizer token, from the X-CSRF-Token header or (for
// console forms, form true) the csrf form field.
func checkCSRF(r *http.Request, sess *authz.Session, form bool) *Error {
	if e := sameOrigin(r); e != nil {
		return e
	}
	tok := r.Header.Get(csrfHeader)
	if tok == "" && form {
		tok = r.PostFormValue(csrfField)
	}
	if tok == "" || sess.CSRF == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(sess.CSRF)) != 1 {
		return errCSRF
	}
	return nil
}

// authenticate identifies the caller of an API route and checks that its
// role holds perm: a bearer token when an Authorization header is sent,
// otherwise the console session (whose state changes need the CSRF token).
func (s *Server) authenticate(r *http.Request, perm authz.Permission) (principal, *Error) {
	if r.Header.Get("Authorization") == "" {
		if sess, u, err := s.session(r, false); err == nil {
			p := principal{kind: "user", name: u.Name, role: u.Role, sess: sess}
			if stateChanging(r.Method) {
				if e := checkCSRF(r, sess, false); e != nil {
					s.authFail.WithLabelValues("csrf").Inc()
					return p, e
				}
			}
			if !u.Role.Allows(perm) {
				s.authFail.WithLabelValues("forbidden").Inc()
				return p, errorf(CodeForbidden, "role %s lacks permission %s", u.Role, perm)
			}
			return p, nil
		} else if !errors.Is(err, errNoSession) {
			s.log.Error("session lookup failed", "err", err)
			return principal{}, errorf(CodeUnavailable, "cannot check the session now; retry later")
		}
	}
	tok, e := s.authenticateToken(r, perm)
	if e != nil {
		if e.Code == CodeForbidden {
			return tokenPrincipal(tok), e
		}
		return principal{}, e
	}
	return tokenPrincipal(tok), nil
}

// totpEnrolSecret is the secret offered to a pending session for TOTP
// enrolment: derived from the session, so the form need not carry it and a
// client cannot choose it.
func (s *Server) totpEnrolSecret(sess *authz.Session) []byte {
	m := hmac.New(sha256.New, s.enrolKey)
	m.Write(sess.Hash)
	return m.Sum(nil)[:20]
}

// errorsAsUser reports whether err carries text safe to show its user.
func errorsAsUser(err error) (string, bool) {
	var ue authz.UserError
	if errors.As(err, &ue) {
		return strings.TrimSpace(ue.Error()), true
	}
	return "", false
}
