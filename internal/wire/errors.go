package wire

import (
	"fmt"
	"net/http"
)

// Code identifies why a batch was refused. Codes are part of the protocol: an
// agent branches on them, so they never change meaning.
type Code string

// The error codes of the batch endpoint, with their HTTP statuses in
// codeStatus. This is the one table; docs/wire.md lists it for agents.
const (
	CodeBadEncoding    Code = "bad_encoding"    // unsupported Content-Encoding
	CodeBadCompression Code = "bad_compression" // the compressed body is corrupt
	CodeTooLarge       Code = "too_large"       // body over the size limit (compressed or decompressed)
	CodeTooManyEvents  Code = "too_many_events" // more events than allowed in one batch
	CodeEventTooLarge  Code = "event_too_large" // one event's JSON is over the per-event limit
	CodeTooDeep        Code = "too_deep"        // JSON nested deeper than allowed
	CodeInvalidUTF8    Code = "invalid_utf8"    // invalid UTF-8 or a lone surrogate escape
	CodeBadJSON        Code = "bad_json"        // not JSON, or JSON of the wrong shape
	CodeBadVersion     Code = "bad_version"     // "v" is missing or not a version this server reads
	CodeBadBatch       Code = "bad_batch"       // batch-level field missing or wrong (boot_epoch, events, order)
	CodeBadEvent       Code = "bad_event"       // an event misses a required field or has a wrong one
	CodeRateLimited    Code = "rate_limited"    // the agent sends faster than its rate; see Retry-After
	CodeUnavailable    Code = "unavailable"     // the server cannot store the batch now; see Retry-After
	CodeInternal       Code = "internal"        // a server bug; the agent retries later
)

var codeStatus = map[Code]int{
	CodeBadEncoding:    http.StatusUnsupportedMediaType,
	CodeBadCompression: http.StatusBadRequest,
	CodeTooLarge:       http.StatusRequestEntityTooLarge,
	CodeTooManyEvents:  http.StatusRequestEntityTooLarge,
	CodeEventTooLarge:  http.StatusRequestEntityTooLarge,
	CodeTooDeep:        http.StatusBadRequest,
	CodeInvalidUTF8:    http.StatusBadRequest,
	CodeBadJSON:        http.StatusBadRequest,
	CodeBadVersion:     http.StatusBadRequest,
	CodeBadBatch:       http.StatusBadRequest,
	CodeBadEvent:       http.StatusBadRequest,
	CodeRateLimited:    http.StatusTooManyRequests,
	CodeUnavailable:    http.StatusServiceUnavailable,
	CodeInternal:       http.StatusInternalServerError,
}

// Codes lists every code in a fixed order, for metrics and documentation.
var Codes = []Code{
	CodeBadEncoding, CodeBadCompression, CodeTooLarge, CodeTooManyEvents,
	CodeEventTooLarge, CodeTooDeep, CodeInvalidUTF8, CodeBadJSON, CodeBadVersion,
	CodeBadBatch, CodeBadEvent, CodeRateLimited, CodeUnavailable, CodeInternal,
}

// Status returns the HTTP status that goes with c; 500 for an unknown code.
func (c Code) Status() int {
	if s, ok := codeStatus[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Error is a refusal that is safe to show the agent's operator: its Message
// names what was wrong in the batch and nothing about the server. It is also
// the JSON body of every non-200 answer of the batch endpoint.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Status returns the HTTP status for e.
func (e *Error) Status() int { return e.Code.Status() }

func errorf(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}
