package web

import (
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/audit"
	"github.com/vigil-edr/vigil/internal/authz"
)

// Sign-in. The login form carries a double-submit token (a random value in
// both a __Host- cookie and a hidden field) besides the Origin and
// Sec-Fetch-Site checks, so another site cannot sign a browser in to an
// account of its choosing. A correct password (and TOTP code, when one is
// enrolled) starts a session; an admin without TOTP gets a pending session
// that can do nothing but enrol one, after which a fresh session replaces it.

type loginData struct {
	Token   string // the double-submit token
	User    string
	Next    string
	Message string
}

type totpData struct {
	Secret string // base32, for typing into an authenticator app
	URI    string // otpauth:// URI
	User   string
	CSRF   string
	Error  string
}

// loginToken returns the login form's double-submit token, setting its
// cookie when the browser has none.
func (s *Server) loginToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(loginCookie); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	t := authz.NewSecret()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: t, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	return t
}

// nextPath is where to go after signing in: a local console path only.
func nextPath(r *http.Request) string {
	n := r.FormValue("next")
	if n == "" || localPath(n) != n || strings.HasPrefix(n, "/login") || strings.HasPrefix(n, "/api/") {
		return "/"
	}
	return n
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) (any, error) {
	if !s.consoleReady() {
		return nil, errorf(CodeUnavailable, "the console is not configured on this server")
	}
	if sess, _, err := s.session(r, true); err == nil {
		if sess.Pending {
			return redirect("/login/totp"), nil
		}
		return redirect(nextPath(r)), nil
	}
	if len(r.URL.Query().Get("next")) > 2048 {
		return nil, errorf(CodeBadRequest, "next is too long")
	}
	return loginData{Token: s.loginToken(w, r), Next: nextPath(r)}, nil
}

// loginSubmit checks a login. Every outcome except a refused form is
// audited; rate-limited attempts are only counted, so a flood cannot fill
// the log.
func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) (any, error) {
	if !s.consoleReady() {
		return nil, errorf(CodeUnavailable, "the console is not configured on this server")
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if e := sameOrigin(r); e != nil {
		return nil, e
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || len(c.Value) != 43 || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue(csrfField))) != 1 {
		return nil, errorf(CodeForbidden, "the login form expired; reload the page and sign in again")
	}
	name := strings.TrimSpace(r.PostFormValue("user"))
	password := r.PostFormValue("password")
	code := strings.TrimSpace(r.PostFormValue("code"))
	data := loginData{Token: c.Value, User: name, Next: nextPath(r)}
	if len(name) > 64 {
		name = name[:64]
	}
	u, err := s.opts.Login.Login(r.Context(), name, password, code, clientIP(r))
	switch {
	case errors.Is(err, authz.ErrRateLimited):
		s.loginThrottled.Inc()
		w.Header().Set("Retry-After", "10")
		data.Message = "Too many sign-in attempts from this address. Wait a minute and try again."
		s.render(w, r, http.StatusTooManyRequests, "login.html", "Sign in", nil, data)
		return written{}, nil
	case errors.Is(err, authz.ErrBadLogin), errors.Is(err, authz.ErrLocked):
		detail := "bad user name, password or code"
		if errors.Is(err, authz.ErrLocked) {
			detail = "account locked"
		}
		s.record(r, audit.Entry{Actor: "anonymous", Action: "login.fail", Target: "user:" + clipName(name), Detail: detail})
		data.Message = authz.ErrBadLogin.Error()
		s.render(w, r, http.StatusUnauthorized, "login.html", "Sign in", nil, data)
		return written{}, nil
	case err != nil:
		return nil, err
	}
	s.sweepSessions(r)
	// A session the browser still holds (another account, say) ends here:
	// one browser, one session.
	s.dropSession(r)
	pending := u.NeedsTOTP()
	if err := s.startSession(w, r, u.Name, pending); err != nil {
		return nil, err
	}
	detail := "session started"
	if pending {
		detail = "password accepted; TOTP enrolment required"
	}
	s.record(r, audit.Entry{Actor: "user:" + u.Name, Action: "login.ok", Target: "user:" + u.Name, Detail: detail})
	if pending {
		return redirect("/login/totp"), nil
	}
	return redirect(data.Next), nil
}

func clipName(s string) string {
	if err := authz.CheckUserName(s); err != nil {
		return "(invalid name)"
	}
	return s
}

func (s *Server) totpPage(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.totpData(r, ""), nil
}

func (s *Server) totpData(r *http.Request, msg string) totpData {
	p := who(r)
	secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(s.totpEnrolSecret(p.sess))
	uri := (&url.URL{Scheme: "otpauth", Host: "totp", Path: "/Vigil:" + p.name,
		RawQuery: url.Values{"secret": {secret}, "issuer": {"Vigil"}, "digits": {"6"}, "period": {"30"}}.Encode()}).String()
	return totpData{Secret: secret, URI: uri, User: p.name, CSRF: p.sess.CSRF, Error: msg}
}

// totpSubmit enrols the offered secret if the code matches, then replaces
// the pending session with a full one.
func (s *Server) totpSubmit(w http.ResponseWriter, r *http.Request) (any, error) {
	p := who(r)
	code := strings.TrimSpace(r.PostFormValue("code"))
	err := s.opts.Login.EnrolTOTP(r.Context(), p.name, s.totpEnrolSecret(p.sess), code)
	if msg, ok := errorsAsUser(err); ok {
		noteAudit(r, "user:"+p.name, "wrong code")
		s.render(w, r, http.StatusBadRequest, "totp.html", "Set up two-factor sign-in", nil, s.totpData(r, msg))
		return written{}, nil
	}
	if err != nil {
		return nil, err
	}
	noteAudit(r, "user:"+p.name, "TOTP enrolled")
	// Sessions started before the second factor existed end here.
	if err := s.opts.Sessions.DeleteUserSessions(r.Context(), p.name); err != nil {
		return nil, err
	}
	if err := s.startSession(w, r, p.name, false); err != nil {
		return nil, err
	}
	return redirect("/"), nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) (any, error) {
	noteAudit(r, "user:"+who(r).name, "session ended")
	s.endSession(w, r)
	return redirect("/login"), nil
}

// sweepSessions deletes expired sessions now and then.
func (s *Server) sweepSessions(r *http.Request) {
	now := s.now()
	s.sweepMu.Lock()
	due := now.Sub(s.lastSweep) >= 10*time.Minute
	if due {
		s.lastSweep = now
	}
	s.sweepMu.Unlock()
	if !due {
		return
	}
	if _, err := s.opts.Sessions.DeleteExpiredSessions(r.Context(), now, now.Add(-s.sessionIdle())); err != nil {
		s.log.Warn("deleting expired sessions", "err", err)
	}
}
