package respond

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/audit"
	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/command"
	"github.com/vigil-edr/vigil/internal/store"
	"github.com/vigil-edr/vigil/internal/transport"
)

// State is where an action is in its life (docs/actions.md).
type State string

// States.
const (
	AwaitingApproval State = "awaiting_approval"
	Pending          State = "pending"
	Delivered        State = "delivered"
	Succeeded        State = "succeeded"
	Failed           State = "failed"
	Refused          State = "refused"
	Expired          State = "expired"
	Cancelled        State = "cancelled"
)

// States lists every state.
var States = []State{AwaitingApproval, Pending, Delivered, Succeeded, Failed, Refused, Expired, Cancelled}

// Final reports whether no further change can happen in s.
func (s State) Final() bool {
	return s == Succeeded || s == Failed || s == Refused || s == Expired || s == Cancelled
}

// Action is one command for one agent and what became of it.
type Action struct {
	ID          string
	Group       string // shared by the actions of one fleet-wide request; else the ID
	AgentID     string
	Type        string // a command action name
	Args        map[string]string
	Note        string // why it was requested
	State       State
	RequestedBy string
	RequestedAt time.Time
	ApprovedBy  string
	ApprovedAt  time.Time
	// Signed is the signed command's JSON, set when the action becomes
	// pending; ExpiresAt is its expiry.
	Signed      []byte
	ExpiresAt   time.Time
	DeliveredAt time.Time
	CompletedAt time.Time
	// The agent's result: a refusal reason code, an error, the action's
	// JSON output, and for collect the stored file.
	Reason     string
	Error      string
	Output     []byte
	FileSHA256 string
	FileSize   int64
	UpdatedBy  string // who made the last change (for the audit trail of cancels)
}

// Filter selects actions for List.
type Filter struct {
	AgentID string
	Group   string
	States  []State
	Limit   int    // default 100, at most 1000
	Before  string // only actions requested before this one (paging by RequestedAt, ID)
}

// Store is what respond needs from storage. UpdateAction is a
// compare-and-set on the state.
type Store interface {
	CreateActions(ctx context.Context, as []Action) error
	// GetAction returns store.ErrNotFound for an unknown id.
	GetAction(ctx context.Context, id string) (*Action, error)
	// ListActions returns actions newest first.
	ListActions(ctx context.Context, f Filter) ([]Action, error)
	// UpdateAction stores a's mutable fields (state, approval, signed
	// command, times, result, file) if the stored state is from, and
	// store.ErrConflict otherwise.
	UpdateAction(ctx context.Context, a *Action, from State) error
	// ClaimActions moves up to max pending, unexpired (at now) actions of
	// agentID to delivered at now and returns them, oldest first.
	ClaimActions(ctx context.Context, agentID string, now time.Time, max int) ([]Action, error)
	// ExpiredActions lists pending actions whose command expired at now
	// and delivered ones without a result grace after that.
	ExpiredActions(ctx context.Context, now time.Time, grace time.Duration) ([]Action, error)
}

// Agents looks up enrolled agents; transport.Store satisfies it.
type Agents interface {
	GetAgent(ctx context.Context, id string) (transport.Agent, error)
	ListAgents(ctx context.Context) ([]transport.Agent, error)
}

// Options configure a Service. Store, Audit, Agents, Key and Files are
// required.
type Options struct {
	Store  Store
	Audit  *audit.Log
	Agents Agents
	Key    ed25519.PrivateKey
	Files  *FileStore
	// Approval lists the action types that need a second approver.
	Approval []string
	// Lifetime of a signed command (default 5 min, at most
	// command.MaxLifetime).
	Lifetime time.Duration
	// Playbooks keeps playbooks (nil: none); RoleOf resolves their
	// creators' current roles when they trigger.
	Playbooks PlaybookStore
	RoleOf    RoleOf
	// MaxFileBytes bounds a collected file (default 64 MiB).
	MaxFileBytes int64
	Logger       *slog.Logger
	Now          func() time.Time
}

// ResultGrace is how long after its command expired a delivered action
// waits for a result before it is expired.
const ResultGrace = 5 * time.Minute

// Service authorises, signs, queues and tracks actions.
type Service struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	waiters map[string][]chan struct{} // agent id → waiting polls

	alerts   chan alert.Finding // for the playbooks
	pbDrops  atomic.Uint64
	pbMu     sync.Mutex
	pbCache  []Playbook
	pbLoaded time.Time
	pbState  map[string]*playbookState
}

// New checks opts and returns a Service.
func New(opts Options) (*Service, error) {
	if opts.Store == nil || opts.Audit == nil || opts.Agents == nil || opts.Files == nil || len(opts.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("respond: Options needs Store, Audit, Agents, Files and an Ed25519 Key")
	}
	for _, t := range opts.Approval {
		if !slices.Contains(command.Actions, t) {
			return nil, fmt.Errorf("respond: approval for unknown action type %q (want one of %s)", t, strings.Join(command.Actions, ", "))
		}
	}
	if opts.Lifetime == 0 {
		opts.Lifetime = 5 * time.Minute
	}
	if opts.Lifetime < 30*time.Second || opts.Lifetime > command.MaxLifetime {
		return nil, fmt.Errorf("respond: command lifetime %v must be between 30s and %v", opts.Lifetime, command.MaxLifetime)
	}
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = 64 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{opts: opts, log: log, waiters: map[string][]chan struct{}{}, alerts: make(chan alert.Finding, 1024),
		pbState: map[string]*playbookState{}}, nil
}

// PublicKey is the key agents verify commands with.
func (s *Service) PublicKey() ed25519.PublicKey { return s.opts.Key.Public().(ed25519.PublicKey) }

// Error is a refusal safe to show the caller: Code is one of the web
// API's codes (bad_request, forbidden, not_found, conflict).
type Error struct {
	Code string
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Principal is who asks: the actor named in the audit log, the role whose
// permissions apply, and where the request came from.
type Principal struct {
	Actor  string
	Role   authz.Role
	Source string
}

// Permission is the permission an action type needs. Undoing actions need
// the permission of what they undo.
func Permission(actionType string) authz.Permission {
	switch actionType {
	case command.Kill:
		return authz.PermActionsKill
	case command.Quarantine, command.Restore:
		return authz.PermActionsQuarantine
	case command.Block, command.Unblock:
		return authz.PermActionsBlock
	case command.Isolate, command.Release:
		return authz.PermActionsIsolate
	case command.Collect:
		return authz.PermActionsCollect
	case command.Query:
		return authz.PermActionsQuery
	}
	return "" // no role holds it
}

// Request asks for one action on one agent, or a query on every agent.
type Request struct {
	Type     string
	AgentID  string
	AllHosts bool // only for query
	Args     map[string]string
	Note     string
	// Via names an indirect path (e.g. "playbook:7") for the audit log.
	Via string
}

// Request authorises req for p and queues it: one action, or one per
// enrolled, non-revoked agent for a fleet-wide query. A principal lacking
// the type's permission is refused and the refusal audited.
func (s *Service) Request(ctx context.Context, p Principal, req Request) ([]Action, error) {
	if err := checkArgs(req.Type, req.Args); err != nil {
		return nil, err
	}
	target := req.AgentID
	if req.AllHosts {
		target = "*"
	}
	perm := Permission(req.Type)
	if !p.Role.Allows(perm) {
		s.audit(ctx, p, "action.denied", "agent:"+target, "type=%s via=%s reason=%q", req.Type, via(req.Via), "role "+string(p.Role)+" lacks "+string(perm))
		return nil, errorf("forbidden", "role %s lacks permission %s", p.Role, perm)
	}
	if len(req.Note) > 1024 {
		return nil, errorf("bad_request", "note: at most 1024 bytes")
	}
	var agents []string
	switch {
	case req.AllHosts && req.AgentID != "":
		return nil, errorf("bad_request", "give agent_id or all_hosts, not both")
	case req.AllHosts:
		if req.Type != command.Query {
			return nil, errorf("bad_request", "only queries can run on all hosts")
		}
		all, err := s.opts.Agents.ListAgents(ctx)
		if err != nil {
			return nil, err
		}
		for _, a := range all {
			if !a.Revoked {
				agents = append(agents, a.ID)
			}
		}
		if len(agents) == 0 {
			return nil, errorf("bad_request", "no enrolled agents")
		}
	default:
		a, err := s.opts.Agents.GetAgent(ctx, req.AgentID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errorf("not_found", "no agent %q", clip(req.AgentID))
		}
		if err != nil {
			return nil, err
		}
		if a.Revoked {
			return nil, errorf("conflict", "agent %s is revoked", a.ID)
		}
		agents = []string{a.ID}
	}
	now := s.opts.Now().UTC()
	group := newID()
	needsApproval := slices.Contains(s.opts.Approval, req.Type)
	out := make([]Action, 0, len(agents))
	for _, agentID := range agents {
		a := Action{ID: newID(), Group: group, AgentID: agentID, Type: req.Type, Args: req.Args, Note: req.Note,
			State: Pending, RequestedBy: p.Actor, RequestedAt: now, UpdatedBy: p.Actor}
		if len(agents) == 1 {
			a.ID = group
		}
		if needsApproval {
			a.State = AwaitingApproval
		} else if err := s.sign(&a, now); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if err := s.opts.Store.CreateActions(ctx, out); err != nil {
		return nil, err
	}
	for _, a := range out {
		s.audit(ctx, p, "action.request", "action:"+a.ID, "agent=%s type=%s args=%s via=%s state=%s note=%q", a.AgentID, a.Type, argString(a.Args), via(req.Via), a.State, a.Note)
		if a.State == Pending {
			s.audit(ctx, p, "action.sign", "action:"+a.ID, "agent=%s nonce=%s expires=%s", a.AgentID, nonceOf(a.Signed), a.ExpiresAt.Format(time.RFC3339))
			s.wake(a.AgentID)
		}
	}
	return out, nil
}

// Approve signs an action waiting for a second approver. The approver
// needs actions:approve and the type's permission, and cannot be the
// requester.
func (s *Service) Approve(ctx context.Context, p Principal, id string) (*Action, error) {
	a, err := s.opts.Store.GetAction(ctx, id)
	if err != nil {
		return nil, err
	}
	perm := Permission(a.Type)
	switch {
	case !p.Role.Allows(authz.PermActionsApprove) || !p.Role.Allows(perm):
		s.audit(ctx, p, "action.denied", "action:"+a.ID, "approve type=%s reason=%q", a.Type, "role "+string(p.Role)+" lacks "+string(authz.PermActionsApprove)+" or "+string(perm))
		return nil, errorf("forbidden", "approving a %s needs permissions %s and %s", a.Type, authz.PermActionsApprove, perm)
	case p.Actor == a.RequestedBy:
		s.audit(ctx, p, "action.denied", "action:"+a.ID, "approve type=%s reason=%q", a.Type, "the requester cannot approve their own action")
		return nil, errorf("forbidden", "the requester cannot approve their own action; another person must")
	case a.State != AwaitingApproval:
		return nil, errorf("conflict", "action is %s, not awaiting approval", a.State)
	}
	now := s.opts.Now().UTC()
	a.ApprovedBy, a.ApprovedAt, a.UpdatedBy = p.Actor, now, p.Actor
	if err := s.sign(a, now); err != nil {
		return nil, err
	}
	if err := s.opts.Store.UpdateAction(ctx, a, AwaitingApproval); err != nil {
		return nil, err
	}
	s.audit(ctx, p, "action.approve", "action:"+a.ID, "agent=%s type=%s requested_by=%s", a.AgentID, a.Type, a.RequestedBy)
	s.audit(ctx, p, "action.sign", "action:"+a.ID, "agent=%s nonce=%s expires=%s", a.AgentID, nonceOf(a.Signed), a.ExpiresAt.Format(time.RFC3339))
	s.wake(a.AgentID)
	return a, nil
}

// Cancel withdraws an action not yet delivered. It needs the type's
// permission.
func (s *Service) Cancel(ctx context.Context, p Principal, id string) (*Action, error) {
	a, err := s.opts.Store.GetAction(ctx, id)
	if err != nil {
		return nil, err
	}
	if perm := Permission(a.Type); !p.Role.Allows(perm) {
		s.audit(ctx, p, "action.denied", "action:"+a.ID, "cancel type=%s reason=%q", a.Type, "role "+string(p.Role)+" lacks "+string(perm))
		return nil, errorf("forbidden", "role %s lacks permission %s", p.Role, perm)
	}
	from := a.State
	if from != AwaitingApproval && from != Pending {
		return nil, errorf("conflict", "action is %s; only actions awaiting approval or pending can be cancelled", a.State)
	}
	a.State, a.CompletedAt, a.UpdatedBy = Cancelled, s.opts.Now().UTC(), p.Actor
	if err := s.opts.Store.UpdateAction(ctx, a, from); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, errorf("conflict", "the action changed meanwhile (delivered?); reload it")
		}
		return nil, err
	}
	s.audit(ctx, p, "action.cancel", "action:"+a.ID, "agent=%s type=%s was=%s", a.AgentID, a.Type, from)
	return a, nil
}

// Get returns one action.
func (s *Service) Get(ctx context.Context, id string) (*Action, error) {
	return s.opts.Store.GetAction(ctx, id)
}

// List returns actions newest first.
func (s *Service) List(ctx context.Context, f Filter) ([]Action, error) {
	s.expire(ctx)
	return s.opts.Store.ListActions(ctx, f)
}

// File opens an action's collected file, for a principal holding
// actions:collect; the read is audited.
func (s *Service) File(ctx context.Context, p Principal, id string) (*Action, io.ReadCloser, error) {
	a, err := s.opts.Store.GetAction(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if !p.Role.Allows(authz.PermActionsCollect) {
		return nil, nil, errorf("forbidden", "role %s lacks permission %s", p.Role, authz.PermActionsCollect)
	}
	if a.FileSHA256 == "" {
		return nil, nil, errorf("not_found", "this action has no collected file")
	}
	f, err := s.opts.Files.Open(a.FileSHA256)
	if err != nil {
		return nil, nil, err
	}
	s.audit(ctx, p, "action.file_read", "action:"+a.ID, "sha256=%s", a.FileSHA256)
	return a, f, nil
}

// sign builds, signs and attaches a's command, making it pending.
func (s *Service) sign(a *Action, now time.Time) error {
	var nonce [16]byte
	rand.Read(nonce[:])
	c := command.Command{Version: command.Version, ID: a.ID, Nonce: hex.EncodeToString(nonce[:]), Target: a.AgentID,
		Action: a.Type, Args: a.Args, IssuedAt: now, ExpiresAt: now.Add(s.opts.Lifetime),
		RequestedBy: a.RequestedBy, ApprovedBy: a.ApprovedBy}
	if c.Args == nil {
		c.Args = map[string]string{}
	}
	b, err := command.Sign(s.opts.Key, c)
	if err != nil {
		return fmt.Errorf("respond: sign: %w", err)
	}
	a.Signed, a.ExpiresAt, a.State = b, c.ExpiresAt, Pending
	return nil
}

// ---- the agent side (transport.Actions) ----

var _ transport.Actions = (*Service)(nil)

// Poll hands the agent its pending commands, waiting up to wait.
func (s *Service) Poll(ctx context.Context, agentID string, wait time.Duration) ([]transport.Delivery, error) {
	deadline := time.Now().Add(wait)
	for {
		s.expire(ctx)
		ch := s.waiter(agentID)
		as, err := s.opts.Store.ClaimActions(ctx, agentID, s.opts.Now().UTC(), 16)
		if err != nil {
			s.unwait(agentID, ch)
			return nil, err
		}
		if len(as) > 0 || !time.Now().Before(deadline) {
			s.unwait(agentID, ch)
			out := make([]transport.Delivery, len(as))
			for i, a := range as {
				out[i] = transport.Delivery{ID: a.ID, Signed: a.Signed}
				s.audit(ctx, Principal{Actor: "agent:" + agentID}, "action.deliver", "action:"+a.ID, "agent=%s type=%s", agentID, a.Type)
			}
			return out, nil
		}
		t := time.NewTimer(min(time.Second, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			s.unwait(agentID, ch)
			return nil, ctx.Err()
		case <-ch:
		case <-t.C:
		}
		t.Stop()
		s.unwait(agentID, ch)
	}
}

func (s *Service) waiter(agentID string) chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.waiters[agentID] = append(s.waiters[agentID], ch)
	s.mu.Unlock()
	return ch
}

func (s *Service) unwait(agentID string, ch chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := slices.DeleteFunc(s.waiters[agentID], func(c chan struct{}) bool { return c == ch })
	if len(w) == 0 {
		delete(s.waiters, agentID)
	} else {
		s.waiters[agentID] = w
	}
}

// wake tells the agent's waiting polls to look again.
func (s *Service) wake(agentID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.waiters[agentID] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Report records an agent's result for one of its delivered actions.
func (s *Service) Report(ctx context.Context, agentID string, body []byte) error {
	var r command.Result
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return transport.BadRequest("result: " + err.Error())
	}
	switch r.Status {
	case command.Succeeded, command.Failed, command.Refused:
	default:
		return transport.BadRequest("result: status must be succeeded, failed or refused")
	}
	if len(r.Error) > 4096 || len(r.Reason) > 64 {
		return transport.BadRequest("result: error at most 4096 bytes, reason at most 64")
	}
	a, err := s.opts.Store.GetAction(ctx, r.ID)
	if errors.Is(err, store.ErrNotFound) || err == nil && (a.AgentID != agentID || a.State != Delivered) {
		s.audit(ctx, Principal{Actor: "agent:" + agentID}, "action.result_refused", "action:"+clip(r.ID), "status=%s reason=%q", r.Status, "not a delivered action of this agent")
		return transport.ErrUnknownAction
	}
	if err != nil {
		return err
	}
	a.State, a.Reason, a.Error, a.Output = State(r.Status), r.Reason, strings.ToValidUTF8(r.Error, "\uFFFD"), r.Output
	a.CompletedAt, a.UpdatedBy = s.opts.Now().UTC(), "agent:"+agentID
	if err := s.opts.Store.UpdateAction(ctx, a, Delivered); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return transport.ErrUnknownAction
		}
		return err
	}
	verb := "action.result"
	if a.State == Refused {
		verb = "action.refused"
	}
	s.audit(ctx, Principal{Actor: "agent:" + agentID}, verb, "action:"+a.ID, "agent=%s type=%s status=%s reason=%s error=%q", agentID, a.Type, a.State, a.Reason, a.Error)
	return nil
}

// StoreFile stores the file of a delivered collect action.
func (s *Service) StoreFile(ctx context.Context, agentID, actionID string, r io.Reader) (string, int64, error) {
	a, err := s.opts.Store.GetAction(ctx, actionID)
	if errors.Is(err, store.ErrNotFound) || err == nil && (a.AgentID != agentID || a.State != Delivered || a.Type != command.Collect || a.FileSHA256 != "") {
		return "", 0, transport.ErrUnknownAction
	}
	if err != nil {
		return "", 0, err
	}
	sum, n, err := s.opts.Files.Put(r, s.opts.MaxFileBytes)
	if err != nil {
		return "", 0, err
	}
	a.FileSHA256, a.FileSize, a.UpdatedBy = sum, n, "agent:"+agentID
	if err := s.opts.Store.UpdateAction(ctx, a, Delivered); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return "", 0, transport.ErrUnknownAction
		}
		return "", 0, err
	}
	s.audit(ctx, Principal{Actor: "agent:" + agentID}, "action.file", "action:"+a.ID, "sha256=%s size=%d path=%q", sum, n, a.Args["path"])
	return sum, n, nil
}

// MaxFileBytes is the collected file limit.
func (s *Service) MaxFileBytes() int64 { return s.opts.MaxFileBytes }

// expire moves actions past their time to expired.
func (s *Service) expire(ctx context.Context) {
	now := s.opts.Now().UTC()
	as, err := s.opts.Store.ExpiredActions(ctx, now, ResultGrace)
	if err != nil {
		s.log.Warn("expiring actions", "err", err)
		return
	}
	for i := range as {
		a := &as[i]
		from := a.State
		a.State, a.CompletedAt, a.UpdatedBy = Expired, now, "system"
		if err := s.opts.Store.UpdateAction(ctx, a, from); err != nil {
			continue // delivered or answered meanwhile
		}
		s.audit(ctx, Principal{Actor: "system"}, "action.expire", "action:"+a.ID, "agent=%s type=%s was=%s", a.AgentID, a.Type, from)
	}
}

func (s *Service) audit(ctx context.Context, p Principal, verb, target, format string, args ...any) {
	src := p.Source
	if src == "" {
		src = "server"
	}
	e := audit.Entry{Actor: p.Actor, Source: src, Action: verb, Target: target, Detail: fmt.Sprintf(format, args...)}
	if err := s.opts.Audit.Record(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("audit", "action", verb, "target", target, "err", err)
	}
}

// checkArgs validates an action's arguments on the server, so a bad
// request is a 400 rather than a refusal on the agent.
func checkArgs(t string, args map[string]string) error {
	spec, ok := argSpecs[t]
	if !ok {
		return errorf("bad_request", "unknown action type %q (want one of %s)", clip(t), strings.Join(command.Actions, ", "))
	}
	for k := range args {
		if !slices.Contains(spec.required, k) && !slices.Contains(spec.optional, k) {
			return errorf("bad_request", "%s takes no argument %q", t, clip(k))
		}
	}
	for _, k := range spec.required {
		if args[k] == "" {
			return errorf("bad_request", "%s needs argument %s", t, k)
		}
	}
	if spec.check != nil {
		if err := spec.check(args); err != "" {
			return errorf("bad_request", "%s: %s", t, err)
		}
	}
	// The command format's limits (names, printable values, count).
	c := command.Command{Version: 1, ID: "x", Nonce: strings.Repeat("0", 32), Target: "x", Action: t, Args: args,
		IssuedAt: time.Unix(1, 0), ExpiresAt: time.Unix(2, 0), RequestedBy: "x"}
	if err := c.Validate(); err != nil {
		return errorf("bad_request", "%v", err)
	}
	return nil
}

type argSpec struct {
	required, optional []string
	check              func(map[string]string) string
}

func absPath(a map[string]string) string {
	if p := a["path"]; !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return "path must be a clean absolute path"
	}
	return ""
}

func cidr(a map[string]string) string {
	v := a["cidr"]
	if _, err := netip.ParsePrefix(v); err != nil {
		if _, err := netip.ParseAddr(v); err != nil {
			return "cidr must be an IP address or CIDR"
		}
	}
	return ""
}

var argSpecs = map[string]argSpec{
	command.Kill: {required: []string{"pid", "start_time"}, optional: []string{"tree"}, check: func(a map[string]string) string {
		if n, err := strconv.Atoi(a["pid"]); err != nil || n <= 1 {
			return "pid must be a process id above 1"
		}
		if _, err := strconv.ParseUint(a["start_time"], 10, 64); err != nil {
			return "start_time must be the process start time in clock ticks (the processes query gives it)"
		}
		if t := a["tree"]; t != "" && t != "true" && t != "false" {
			return "tree must be true or false"
		}
		return ""
	}},
	command.Quarantine: {required: []string{"path"}, check: absPath},
	command.Restore: {required: []string{"quarantine_id"}, check: func(a map[string]string) string {
		if len(a["quarantine_id"]) != 32 {
			return "quarantine_id must be the 32-digit id the quarantine answered"
		}
		return ""
	}},
	command.Block: {required: []string{"cidr", "duration"}, check: func(a map[string]string) string {
		if e := cidr(a); e != "" {
			return e
		}
		if d, err := time.ParseDuration(a["duration"]); err != nil || d < time.Second || d > 720*time.Hour {
			return "duration must be between 1s and 720h"
		}
		return ""
	}},
	command.Unblock: {required: []string{"cidr"}, check: cidr},
	command.Isolate: {optional: []string{"allow"}, check: func(a map[string]string) string {
		for _, f := range strings.Split(a["allow"], ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			if e := cidr(map[string]string{"cidr": f}); e != "" {
				return "allow: " + e
			}
		}
		return ""
	}},
	command.Release: {},
	command.Collect: {required: []string{"path"}, check: absPath},
	command.Query: {required: []string{"name"}, optional: []string{"path"}, check: func(a map[string]string) string {
		if !slices.Contains(command.Queries, a["name"]) {
			return "name must be one of " + strings.Join(command.Queries, ", ")
		}
		if (a["name"] == "file_hash") != (a["path"] != "") {
			return "path goes with file_hash, and only with it"
		}
		if a["path"] != "" {
			return absPath(a)
		}
		return ""
	}},
}

func argString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return "{" + b.String() + "}"
}

func nonceOf(signed []byte) string {
	var s struct {
		Command struct {
			Nonce string `json:"nonce"`
		} `json:"command"`
	}
	json.Unmarshal(signed, &s)
	return s.Command.Nonce
}

func via(v string) string {
	if v == "" {
		return "api"
	}
	return v
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func clip(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
