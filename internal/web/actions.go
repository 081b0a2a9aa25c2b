package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/vigil-edr/vigil/internal/respond"
)

// Actions is the response-action service; *respond.Service satisfies it.
// It checks the permission of each action type itself (the route only
// opens the door) and audits every step.
type Actions interface {
	Request(ctx context.Context, p respond.Principal, req respond.Request) ([]respond.Action, error)
	Approve(ctx context.Context, p respond.Principal, id string) (*respond.Action, error)
	Cancel(ctx context.Context, p respond.Principal, id string) (*respond.Action, error)
	// Get returns store.ErrNotFound for an unknown id.
	Get(ctx context.Context, id string) (*respond.Action, error)
	List(ctx context.Context, f respond.Filter) ([]respond.Action, error)
	File(ctx context.Context, p respond.Principal, id string) (*respond.Action, io.ReadCloser, error)
}

type actionJSON struct {
	ID          string            `json:"id"`
	Group       string            `json:"group"`
	AgentID     string            `json:"agent_id"`
	Type        string            `json:"type"`
	Args        map[string]string `json:"args"`
	Note        string            `json:"note,omitempty"`
	State       respond.State     `json:"state"`
	RequestedBy string            `json:"requested_by"`
	RequestedAt *time.Time        `json:"requested_at,omitempty"`
	ApprovedBy  string            `json:"approved_by,omitempty"`
	ApprovedAt  *time.Time        `json:"approved_at,omitempty"`
	ExpiresAt   *time.Time        `json:"expires_at,omitempty"`
	DeliveredAt *time.Time        `json:"delivered_at,omitempty"`
	CompletedAt *time.Time        `json:"completed_at,omitempty"`
	Reason      string            `json:"reason,omitempty"` // the agent's refusal reason
	Error       string            `json:"error,omitempty"`
	Output      json.RawMessage   `json:"output,omitempty"`
	FileSHA256  string            `json:"file_sha256,omitempty"`
	FileSize    int64             `json:"file_size,omitempty"`
}

func toActionJSON(a *respond.Action) actionJSON {
	args := a.Args
	if args == nil {
		args = map[string]string{}
	}
	j := actionJSON{ID: a.ID, Group: a.Group, AgentID: a.AgentID, Type: a.Type, Args: args, Note: a.Note, State: a.State,
		RequestedBy: a.RequestedBy, RequestedAt: tm(a.RequestedAt), ApprovedBy: a.ApprovedBy, ApprovedAt: tm(a.ApprovedAt),
		ExpiresAt: tm(a.ExpiresAt), DeliveredAt: tm(a.DeliveredAt), CompletedAt: tm(a.CompletedAt), Reason: a.Reason,
		Error: a.Error, FileSHA256: a.FileSHA256, FileSize: a.FileSize}
	if json.Valid(a.Output) {
		j.Output = a.Output
	}
	return j
}

type actionList struct {
	Items      []actionJSON `json:"items"`
	NextBefore string       `json:"next_before,omitempty"`
}

type actionReq struct {
	Type     string            `json:"type"`
	AgentID  string            `json:"agent_id,omitempty"`
	AllHosts bool              `json:"all_hosts,omitempty"`
	Args     map[string]string `json:"args,omitempty"`
	Note     string            `json:"note,omitempty"`
}

// actionPrincipal is the caller as respond sees it: the actor named in
// the audit log, the role whose permissions apply, the client address.
func actionPrincipal(r *http.Request) respond.Principal {
	return respond.Principal{Actor: actor(r), Role: who(r).role, Source: clientIP(r)}
}

func actionErr(err error) error {
	var re *respond.Error
	if errors.As(err, &re) {
		return &Error{Code: Code(re.Code), Message: re.Msg}
	}
	return err
}

func (s *Server) listActions(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Actions == nil {
		return notConfigured("response actions")
	}
	q := newQuery(r)
	f := respond.Filter{AgentID: q.str("agent_id"), Group: q.str("group"), Limit: q.limit(), Before: q.str("before")}
	for _, st := range q.v["state"] {
		if !slices.Contains(respond.States, respond.State(st)) {
			return errorf(CodeBadRequest, "unknown state %q", clip(st))
		}
		f.States = append(f.States, respond.State(st))
	}
	if q.err != nil {
		return q.err
	}
	as, err := s.opts.Actions.List(r.Context(), f)
	if err != nil {
		return err
	}
	out := actionList{Items: []actionJSON{}}
	for i := range as {
		out.Items = append(out.Items, toActionJSON(&as[i]))
	}
	if len(as) == f.Limit {
		out.NextBefore = as[len(as)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) createAction(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Actions == nil {
		return notConfigured("response actions")
	}
	var req actionReq
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if len(req.AgentID) > maxIDLen {
		return errorf(CodeBadRequest, "agent_id: at most %d bytes", maxIDLen)
	}
	as, err := s.opts.Actions.Request(r.Context(), actionPrincipal(r), respond.Request{Type: req.Type, AgentID: req.AgentID,
		AllHosts: req.AllHosts, Args: req.Args, Note: req.Note})
	if err != nil {
		return actionErr(err)
	}
	out := actionList{Items: []actionJSON{}}
	for i := range as {
		out.Items = append(out.Items, toActionJSON(&as[i]))
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func actionID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if id == "" || len(id) > maxIDLen {
		return "", errorf(CodeBadRequest, "bad action id")
	}
	return id, nil
}

func (s *Server) getAction(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Actions == nil {
		return notConfigured("response actions")
	}
	id, err := actionID(r)
	if err != nil {
		return err
	}
	a, err := s.opts.Actions.Get(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toActionJSON(a))
	return nil
}

func (s *Server) approveAction(w http.ResponseWriter, r *http.Request) error {
	return s.changeAction(w, r, func(ctx context.Context, p respond.Principal, id string) (*respond.Action, error) {
		return s.opts.Actions.Approve(ctx, p, id)
	})
}

func (s *Server) cancelAction(w http.ResponseWriter, r *http.Request) error {
	return s.changeAction(w, r, func(ctx context.Context, p respond.Principal, id string) (*respond.Action, error) {
		return s.opts.Actions.Cancel(ctx, p, id)
	})
}

func (s *Server) changeAction(w http.ResponseWriter, r *http.Request, fn func(context.Context, respond.Principal, string) (*respond.Action, error)) error {
	if s.opts.Actions == nil {
		return notConfigured("response actions")
	}
	id, err := actionID(r)
	if err != nil {
		return err
	}
	a, err := fn(r.Context(), actionPrincipal(r), id)
	if err != nil {
		return actionErr(err)
	}
	writeJSON(w, http.StatusOK, toActionJSON(a))
	return nil
}

func (s *Server) actionFile(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Actions == nil {
		return notConfigured("response actions")
	}
	id, err := actionID(r)
	if err != nil {
		return err
	}
	a, f, err := s.opts.Actions.File(r.Context(), actionPrincipal(r), id)
	if err != nil {
		return actionErr(err)
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="`+a.FileSHA256+`.bin"`)
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	setCommonHeaders(h)
	w.WriteHeader(http.StatusOK)
	io.Copy(w, f)
	return nil
}

// Playbooks configures automated response; *respond.Service satisfies it.
type Playbooks interface {
	CreatePlaybook(ctx context.Context, p respond.Principal, pb respond.Playbook) (*respond.Playbook, error)
	ListPlaybooks(ctx context.Context) ([]respond.Playbook, error)
	DeletePlaybook(ctx context.Context, p respond.Principal, id string) error
}

type playbookJSON struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	MinLevel   string            `json:"min_level"`
	Tags       []string          `json:"tags"`
	Type       string            `json:"type"`
	Args       map[string]string `json:"args"`
	DryRun     bool              `json:"dry_run"`
	MaxPerHour int               `json:"max_per_hour"`
	CreatedBy  string            `json:"created_by,omitempty"`
	CreatedAt  *time.Time        `json:"created_at,omitempty"`
}

type playbookReq struct {
	Name       string            `json:"name"`
	MinLevel   string            `json:"min_level"`
	Tags       []string          `json:"tags,omitempty"`
	Type       string            `json:"type"`
	Args       map[string]string `json:"args,omitempty"`
	DryRun     bool              `json:"dry_run,omitempty"`
	MaxPerHour int               `json:"max_per_hour,omitempty"`
}

type playbookList struct {
	Items []playbookJSON `json:"items"`
}

func toPlaybookJSON(p *respond.Playbook) playbookJSON {
	tags, args := p.Tags, p.Args
	if tags == nil {
		tags = []string{}
	}
	if args == nil {
		args = map[string]string{}
	}
	return playbookJSON{ID: p.ID, Name: p.Name, MinLevel: p.MinLevel, Tags: tags, Type: p.Action, Args: args, DryRun: p.DryRun,
		MaxPerHour: p.MaxPerHour, CreatedBy: p.CreatedBy, CreatedAt: tm(p.CreatedAt)}
}

func (s *Server) listPlaybooks(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Playbooks == nil {
		return notConfigured("playbooks")
	}
	pbs, err := s.opts.Playbooks.ListPlaybooks(r.Context())
	if err != nil {
		return err
	}
	out := playbookList{Items: []playbookJSON{}}
	for i := range pbs {
		out.Items = append(out.Items, toPlaybookJSON(&pbs[i]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) createPlaybook(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Playbooks == nil {
		return notConfigured("playbooks")
	}
	var req playbookReq
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	pb, err := s.opts.Playbooks.CreatePlaybook(r.Context(), actionPrincipal(r), respond.Playbook{Name: req.Name, MinLevel: req.MinLevel,
		Tags: req.Tags, Action: req.Type, Args: req.Args, DryRun: req.DryRun, MaxPerHour: req.MaxPerHour})
	if err != nil {
		return actionErr(err)
	}
	writeJSON(w, http.StatusCreated, toPlaybookJSON(pb))
	return nil
}

func (s *Server) deletePlaybook(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Playbooks == nil {
		return notConfigured("playbooks")
	}
	id, err := actionID(r)
	if err != nil {
		return err
	}
	if err := s.opts.Playbooks.DeletePlaybook(r.Context(), actionPrincipal(r), id); err != nil {
		return actionErr(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
