package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on untrusted input.
const (
	maxBodyBytes = 1 << 20 // request bodies
	maxDepth     = 8       // JSON nesting
	maxIDLen     = 128     // string ids in paths and bodies
	maxNameLen   = 256     // names, hosts, field names and values
	maxTextLen   = 16 << 10
	defaultLimit = 100
	maxLimit     = 1000
)

// decodeBody reads a JSON object into dst (a pointer to a struct), rejecting
// other media types, oversize or deeply nested bodies, unknown fields and
// trailing data.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return errorf(CodeUnsupportedMedia, "the body must be application/json")
		}
	} else {
		return errorf(CodeUnsupportedMedia, "the body must be application/json")
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	if err := checkDepth(b, maxDepth); err != nil {
		return err
	}
	if !utf8.Valid(b) { // the decoder would silently turn it into U+FFFD
		return errorf(CodeBadRequest, "the body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errorf(CodeBadRequest, "unexpected data after the JSON object")
	}
	return nil
}

// noBody accepts an empty body or an empty JSON object, for routes that take
// no input.
func noBody(w http.ResponseWriter, r *http.Request) *Error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	if t := bytes.TrimSpace(b); len(t) != 0 && !bytes.Equal(t, []byte("{}")) {
		return errorf(CodeBadRequest, "this route takes no request body")
	}
	return nil
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *Error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, errorf(CodeTooLarge, "the body exceeds %d bytes", maxBodyBytes)
		}
		return nil, errorf(CodeBadRequest, "reading the body failed")
	}
	return b, nil
}

// checkDepth rejects JSON nested deeper than max, before any decoding.
func checkDepth(b []byte, max int) *Error {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > max {
				return errorf(CodeBadRequest, "the body is nested more than %d levels deep", max)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// jsonError describes a decoding failure without echoing the body.
func jsonError(err error) *Error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return errorf(CodeBadRequest, "malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return errorf(CodeBadRequest, "field %q has the wrong type", clip(typ.Field))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(CodeBadRequest, "the body is empty or truncated")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return errorf(CodeBadRequest, "unknown field %q", clip(name))
	}
	return errorf(CodeBadRequest, "invalid JSON body")
}

// query parses a route's query parameters, keeping the first error. Names
// were already checked against the route's declared parameters.
type query struct {
	v   url.Values
	err *Error
}

func newQuery(r *http.Request) *query { return &query{v: r.URL.Query()} }

func (q *query) fail(format string, args ...any) {
	if q.err == nil {
		q.err = errorf(CodeBadRequest, format, args...)
	}
}

// str returns a short printable string parameter.
func (q *query) str(name string) string {
	s := q.v.Get(name)
	if e := checkString(name, s, maxNameLen, false); e != nil && q.err == nil {
		q.err = e
	}
	return s
}

func (q *query) int(name string, min, max, def int64) int64 {
	s := q.v.Get(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < min || n > max {
		q.fail("%s must be an integer from %d to %d", name, min, max)
		return def
	}
	return n
}

func (q *query) time(name string) time.Time {
	s := q.v.Get(name)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		q.fail("%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z", name)
	}
	return t
}

func (q *query) limit() int    { return int(q.int("limit", 1, maxLimit, defaultLimit)) }
func (q *query) before() int64 { return q.int("before", 1, 1<<62, 0) }

// checkString rejects over-long strings, invalid UTF-8 and control
// characters (newlines and tabs only where multiline is true).
func checkString(name, s string, max int, multiline bool) *Error {
	if len(s) > max {
		return errorf(CodeBadRequest, "%s is longer than %d bytes", name, max)
	}
	if !utf8.ValidString(s) {
		return errorf(CodeBadRequest, "%s is not valid UTF-8", name)
	}
	for _, c := range s {
		if unicode.IsControl(c) && !(multiline && (c == '\n' || c == '\t' || c == '\r')) {
			return errorf(CodeBadRequest, "%s contains control characters", name)
		}
	}
	return nil
}

// pathInt returns a positive integer path parameter.
func pathInt(r *http.Request, name string) (int64, *Error) {
	n, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || n <= 0 {
		return 0, errorf(CodeBadRequest, "%s must be a positive integer", name)
	}
	return n, nil
}

// pathID returns a string id path parameter: non-empty, short, printable.
func pathID(r *http.Request, name string) (string, *Error) {
	s := r.PathValue(name)
	if s == "" {
		return "", errorf(CodeBadRequest, "%s is empty", name)
	}
	if e := checkString(name, s, maxIDLen, false); e != nil {
		return "", e
	}
	return s, nil
}
