package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/notify"
	"github.com/vigil-edr/vigil/internal/store"
)

// Code is a machine-readable API error code. Every error response is
// {"code": Code, "message": text safe to show a user}.
type Code string

// Error codes. The table below is the only place a code gets its status.
const (
	CodeBadRequest       Code = "bad_request"            // malformed parameter or body
	CodeUnauthorized     Code = "unauthorized"           // no, unknown, expired or revoked token
	CodeForbidden        Code = "forbidden"              // the token's role lacks the permission
	CodeNotFound         Code = "not_found"              // no such route or object
	CodeMethodNotAllowed Code = "method_not_allowed"     // the route exists for other methods
	CodeConflict         Code = "conflict"               // lost a race, or a forbidden state change
	CodeTooLarge         Code = "too_large"              // body over 1 MiB
	CodeUnsupportedMedia Code = "unsupported_media_type" // body not application/json
	CodeInternal         Code = "internal"               // a bug or a storage failure; logged
	CodeUnavailable      Code = "unavailable"            // not ready, or the feature is not configured
)

var codeStatus = map[Code]int{
	CodeBadRequest:       http.StatusBadRequest,
	CodeUnauthorized:     http.StatusUnauthorized,
	CodeForbidden:        http.StatusForbidden,
	CodeNotFound:         http.StatusNotFound,
	CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	CodeConflict:         http.StatusConflict,
	CodeTooLarge:         http.StatusRequestEntityTooLarge,
	CodeUnsupportedMedia: http.StatusUnsupportedMediaType,
	CodeInternal:         http.StatusInternalServerError,
	CodeUnavailable:      http.StatusServiceUnavailable,
}

// Error is an API error whose message is safe to show the caller. Handlers
// return it for problems with the request; any other error becomes a
// generic 500 (or 404/409 for store.ErrNotFound/ErrConflict) and is logged,
// never shown.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Status is the HTTP status for the error's code.
func (e *Error) Status() int {
	if s, ok := codeStatus[e.Code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

func errorf(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

// clip shortens a caller-supplied string before it is quoted in a message.
func clip(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// toAPI maps any handler error to what the caller sees. The second result
// reports whether the error is unexpected and should be logged.
func toAPI(err error) (*Error, bool) {
	var e *Error
	var ce *notify.ConfigError
	switch {
	case errors.As(err, &e):
		return e, false
	case errors.As(err, &ce):
		return &Error{Code: CodeBadRequest, Message: ce.Msg}, false
	case errors.Is(err, store.ErrNotFound):
		return &Error{Code: CodeNotFound, Message: "not found"}, false
	case errors.Is(err, alert.ErrTransition):
		// The alert package's messages name only the two states.
		return &Error{Code: CodeConflict, Message: err.Error()}, false
	case errors.Is(err, store.ErrConflict):
		return &Error{Code: CodeConflict, Message: "the object was changed concurrently or conflicts with another; reload and retry"}, false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeUnavailable, Message: "request cancelled or timed out"}, false
	}
	return &Error{Code: CodeInternal, Message: "internal error"}, true
}

// ContentSecurityPolicy is sent with every response, console and API alike:
// scripts, styles and connections only from this server, no inline code of
// any kind, no framing, forms post only here.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// setCommonHeaders is applied to every response this package writes. A
// handler may narrow the CSP further (the incident report allows nothing).
func setCommonHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if h.Get("Content-Security-Policy") == "" {
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
	}
	// same-origin, not no-referrer: with no-referrer browsers send
	// "Origin: null" on form posts, which the CSRF check must refuse.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
	h.Set("Strict-Transport-Security", "max-age=31536000")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v) // escapes <, > and & too
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":"internal","message":"internal error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	setCommonHeaders(h)
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, e *Error) {
	writeJSON(w, e.Status(), e)
}
