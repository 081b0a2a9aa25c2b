package transport

import (
	"encoding/json"
	"net/http"
)

// Error is an agent API error: safe to show to the agent's operator, sent
// as the JSON body {"code": …, "message": …} with Status. Every code the
// API can answer is in the table below (and in docs/transport.md).
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// The error table. Agents branch on Code; Message is for people.
var (
	errBadRequest   = &Error{http.StatusBadRequest, "bad_request", "malformed request"}
	errTokenInvalid = &Error{http.StatusUnauthorized, "token_invalid", "enrolment token invalid, expired, revoked or used up"}
	errNoCert       = &Error{http.StatusUnauthorized, "unauthenticated", "a valid Vigil agent client certificate is required"}
	errRevoked      = &Error{http.StatusForbidden, "agent_revoked", "this agent has been revoked; enrol again with a new token"}
	errUnknownAgent = &Error{http.StatusForbidden, "agent_unknown", "this agent is not enrolled on this server; enrol again"}
	errNotFound     = &Error{http.StatusNotFound, "not_found", "no such endpoint"}
	errMethod       = &Error{http.StatusMethodNotAllowed, "method_not_allowed", "use POST"}
	errTooLarge     = &Error{http.StatusRequestEntityTooLarge, "too_large", "request body too large"}
	errInternal     = &Error{http.StatusInternalServerError, "internal", "internal server error"}
	errUnavailable  = &Error{http.StatusServiceUnavailable, "unavailable", "server cannot check agent status right now; retry later"}
)

func badRequest(msg string) *Error {
	return &Error{Status: errBadRequest.Status, Code: errBadRequest.Code, Message: msg}
}

func writeError(w http.ResponseWriter, e *Error) {
	b, _ := json.Marshal(e)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if e == errUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(append(b, '\n'))
}
