package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/respond"
)

// The response actions page (/actions): the approval queue and the list of
// actions with their results. Approve and Cancel are forms.js forms that
// call POST /api/v1/actions/{id}/approve and /cancel with the session's
// CSRF header, so the API's permission, CSRF, origin and audit checks and
// respond's own checks (the type's permission, never the requester as
// approver) apply unchanged; the buttons are only hints.

type actionRow struct {
	respond.Action
	Host   string // the agent's host name, when known
	Output string // the result's JSON, clipped
	// Clipped says Output was cut at maxActionOutput.
	Clipped               bool
	CanApprove, CanCancel bool
	// Own: the viewer requested it (and so cannot approve it).
	Own bool
}

type actionsData struct {
	State, AgentID, Group string
	States                []respond.State
	Queue                 []actionRow // awaiting approval (whatever the filter)
	Actions               []actionRow
	OlderURL              string
	CanRequest            bool
}

// Bounds on what the actions page shows.
const (
	actionsPage     = 100
	maxActionOutput = 8 << 10
)

func (s *Server) actionsPage(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.opts.Actions == nil {
		return nil, notConfigured("response actions")
	}
	q := newQuery(r)
	d := actionsData{State: q.str("state"), AgentID: q.str("agent_id"), Group: q.str("group"), States: respond.States,
		CanRequest: who(r).role.Allows(authz.PermActionsRequest)}
	before := q.str("before")
	if q.err != nil {
		return nil, q.err
	}
	if d.State != "" && !slices.Contains(respond.States, respond.State(d.State)) {
		return nil, errorf(CodeBadRequest, "unknown state %q", clip(d.State))
	}
	ctx := r.Context()
	hosts := map[string]string{}
	if s.opts.Hosts != nil {
		if as, err := s.opts.Hosts.ListAgents(ctx); err == nil {
			for _, a := range as {
				hosts[a.ID] = a.Hostname
			}
		}
	}
	row := func(a respond.Action) actionRow {
		ar := actionRow{Action: a, Host: hosts[a.AgentID], Own: a.RequestedBy == actor(r)}
		ar.Output, ar.Clipped = clipOutput(a.Output)
		role := who(r).role
		typePerm := role.Allows(respond.Permission(a.Type))
		ar.CanApprove = a.State == respond.AwaitingApproval && !ar.Own && typePerm && role.Allows(authz.PermActionsApprove)
		ar.CanCancel = (a.State == respond.AwaitingApproval || a.State == respond.Pending) && typePerm && role.Allows(authz.PermActionsRequest)
		return ar
	}
	queue, err := s.opts.Actions.List(ctx, respond.Filter{States: []respond.State{respond.AwaitingApproval}, AgentID: d.AgentID,
		Group: d.Group, Limit: actionsPage})
	if err != nil {
		return nil, err
	}
	for _, a := range queue {
		d.Queue = append(d.Queue, row(a))
	}
	f := respond.Filter{AgentID: d.AgentID, Group: d.Group, Limit: actionsPage, Before: before}
	if d.State != "" {
		f.States = []respond.State{respond.State(d.State)}
	}
	as, err := s.opts.Actions.List(ctx, f)
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		d.Actions = append(d.Actions, row(a))
	}
	if len(as) == actionsPage {
		d.OlderURL = "/actions" + queryString("state", d.State, "agent_id", d.AgentID, "group", d.Group, "before", as[len(as)-1].ID)
	}
	return d, nil
}

// clipOutput is a result's JSON for display, cut at maxActionOutput bytes
// on a rune boundary.
func clipOutput(b []byte) (string, bool) {
	if len(b) <= maxActionOutput {
		return string(b), false
	}
	return strings.ToValidUTF8(string(b[:maxActionOutput]), ""), true
}
