package web

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/store"
)

// maxSecretLen bounds what is hashed; real secrets are 43 characters.
const maxSecretLen = 256

// touchEvery limits last-used writes to one per token per interval.
const touchEvery = time.Minute

var errUnauthorized = &Error{Code: CodeUnauthorized, Message: "missing, invalid, expired or revoked API token"}

// authenticateToken checks the bearer token and that its role holds perm.
// Unknown, revoked and expired tokens are indistinguishable to the caller.
// The lookup is by SHA-256 of a 256-bit secret, so lookup timing reveals
// nothing usable; the stored hash is still compared in constant time.
func (s *Server) authenticateToken(r *http.Request, perm authz.Permission) (authz.Token, *Error) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") {
		s.authFail.WithLabelValues("missing").Inc()
		return authz.Token{}, errUnauthorized
	}
	secret = strings.TrimSpace(secret)
	if secret == "" || len(secret) > maxSecretLen {
		s.authFail.WithLabelValues("invalid").Inc()
		return authz.Token{}, errUnauthorized
	}
	hash := authz.Hash(secret)
	tok, err := s.opts.Tokens.TokenByHash(r.Context(), hash)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.authFail.WithLabelValues("invalid").Inc()
			return authz.Token{}, errUnauthorized
		}
		s.log.Error("api token lookup failed", "err", err)
		return authz.Token{}, errorf(CodeUnavailable, "cannot check the token now; retry later")
	}
	now := s.now()
	valid := subtle.ConstantTimeCompare(tok.Hash, hash) == 1 &&
		!tok.Revoked &&
		(tok.ExpiresAt.IsZero() || now.Before(tok.ExpiresAt))
	if !valid {
		s.authFail.WithLabelValues("invalid").Inc()
		return authz.Token{}, errUnauthorized
	}
	if !tok.Role.Allows(perm) {
		s.authFail.WithLabelValues("forbidden").Inc()
		return tok, errorf(CodeForbidden, "role %s lacks permission %s", tok.Role, perm)
	}
	if now.Sub(tok.LastUsed) >= touchEvery {
		if err := s.opts.Tokens.TouchToken(r.Context(), tok.ID, now); err != nil {
			s.log.Warn("recording api token use", "token", tok.ID, "err", err)
		}
	}
	return tok, nil
}
