package transport

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"
)

// Delivery is one signed command handed to an agent.
type Delivery struct {
	ID     string          `json:"id"`
	Signed json.RawMessage `json:"signed"`
}

// Actions is the server's response-action queue as the agent sees it
// (package respond implements it). The agent id always comes from the
// verified client certificate.
type Actions interface {
	// Poll returns the agent's pending commands, marking them delivered,
	// waiting up to wait for one to appear.
	Poll(ctx context.Context, agentID string, wait time.Duration) ([]Delivery, error)
	// Report records the agent's result (JSON, command.Result). It returns
	// ErrUnknownAction for an id that is not this agent's delivered action.
	Report(ctx context.Context, agentID string, result []byte) error
	// StoreFile stores a collected file for the agent's delivered collect
	// action id and returns its SHA-256 (hex) and size. It reads at most
	// MaxFileBytes()+1 bytes of r.
	StoreFile(ctx context.Context, agentID, actionID string, r io.Reader) (sha256 string, size int64, err error)
	MaxFileBytes() int64
}

// ErrUnknownAction: the action id does not name a delivered action of the
// calling agent. The agent is answered 404.
var ErrUnknownAction = errors.New("no such delivered action for this agent")

// ErrFileTooLarge: a collected file exceeds the server's limit (413).
var ErrFileTooLarge = errors.New("collected file too large")

// maxResultBytes bounds a result body (command.MaxResultBytes).
const maxResultBytes = 4 << 20

var errNoAction = &Error{http.StatusNotFound, "action_unknown", "no such delivered action for this agent"}

func (s *Server) actionRoute(path string) func(http.ResponseWriter, *http.Request) error {
	switch path {
	case PathActions:
		return s.pollActions
	case PathActionResult:
		return s.actionResult
	}
	return s.actionFile
}

func (s *Server) pollActions(w http.ResponseWriter, r *http.Request) error {
	id, err := s.agent(r)
	if err != nil {
		return err
	}
	wait := time.Duration(0)
	if v := r.URL.Query().Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 {
			return badRequest("wait must be a duration such as 30s")
		}
	}
	wait = min(wait, MaxActionWait)
	s.touch(r.Context(), id)
	ds, err := s.opts.Actions.Poll(r.Context(), id, wait)
	if err != nil {
		if r.Context().Err() != nil {
			return nil // the agent went away
		}
		return err
	}
	if ds == nil {
		ds = []Delivery{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"actions": ds})
}

func (s *Server) actionResult(w http.ResponseWriter, r *http.Request) error {
	id, err := s.agent(r)
	if err != nil {
		return err
	}
	if r.ContentLength > maxResultBytes {
		return errTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxResultBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge
		}
		return badRequest("reading body: " + err.Error())
	}
	if err := s.opts.Actions.Report(r.Context(), id, body); err != nil {
		var ae *Error
		switch {
		case errors.Is(err, ErrUnknownAction):
			return errNoAction
		case errors.As(err, &ae):
			return ae
		}
		return err
	}
	return writeJSON(w, http.StatusOK, struct{}{})
}

func (s *Server) actionFile(w http.ResponseWriter, r *http.Request) error {
	id, err := s.agent(r)
	if err != nil {
		return err
	}
	max := s.opts.Actions.MaxFileBytes()
	if r.ContentLength > max {
		return errTooLarge
	}
	sum, size, err := s.opts.Actions.StoreFile(r.Context(), id, r.URL.Query().Get("id"), http.MaxBytesReader(w, r.Body, max+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, ErrUnknownAction):
		return errNoAction
	case errors.Is(err, ErrFileTooLarge), errors.As(err, &mbe):
		return errTooLarge
	case err != nil:
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"sha256": sum, "size": size})
}

// BadRequest is an agent API error for a malformed request, for Actions
// implementations to return.
func BadRequest(msg string) error { return badRequest(msg) }
