package respond

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/authz"
)

// Playbook runs one action on the agent of every alert that matches it:
// level at least MinLevel and, if Tags is set, one of the tags. It acts as
// the principal who created it, with that principal's role at the time it
// triggers: a creator who lost the permission (or was removed) makes the
// playbook's actions refused and audited, never run.
type Playbook struct {
	ID         string
	Name       string
	MinLevel   string
	Tags       []string
	Action     string
	Args       map[string]string
	DryRun     bool // record what would run, run nothing
	MaxPerHour int  // actions per rolling hour (default 10, at most 1000)
	CreatedBy  string
	CreatedAt  time.Time
}

// PlaybookStore keeps playbooks.
type PlaybookStore interface {
	CreatePlaybook(ctx context.Context, p *Playbook) error
	ListPlaybooks(ctx context.Context) ([]Playbook, error)
	// DeletePlaybook returns store.ErrNotFound for an unknown id.
	DeletePlaybook(ctx context.Context, id string) error
}

// RoleOf resolves the current role of an actor ("token:NAME",
// "user:NAME"); an error means the actor no longer exists or may not act
// (revoked, expired).
type RoleOf func(ctx context.Context, actor string) (authz.Role, error)

var levels = []string{"informational", "low", "medium", "high", "critical"}

func levelRank(l string) int { return slices.Index(levels, strings.ToLower(l)) }

// CreatePlaybook validates and stores pb for p, who must hold the
// permission of its action (the same check as a direct request).
func (s *Service) CreatePlaybook(ctx context.Context, p Principal, pb Playbook) (*Playbook, error) {
	if s.opts.Playbooks == nil {
		return nil, errorf("bad_request", "playbooks are not available on this server")
	}
	if pb.Name == "" || len(pb.Name) > 256 || !printableText(pb.Name) {
		return nil, errorf("bad_request", "name must be 1–256 printable characters")
	}
	if levelRank(pb.MinLevel) < 0 {
		return nil, errorf("bad_request", "min_level must be one of %s", strings.Join(levels, ", "))
	}
	if len(pb.Tags) > 32 {
		return nil, errorf("bad_request", "at most 32 tags")
	}
	for _, t := range pb.Tags {
		if t == "" || len(t) > 128 || !printableText(t) {
			return nil, errorf("bad_request", "tags must be 1–128 printable characters")
		}
	}
	if err := checkArgs(pb.Action, pb.Args); err != nil {
		return nil, err
	}
	if pb.MaxPerHour == 0 {
		pb.MaxPerHour = 10
	}
	if pb.MaxPerHour < 1 || pb.MaxPerHour > 1000 {
		return nil, errorf("bad_request", "max_per_hour must be 1 to 1000")
	}
	perm := Permission(pb.Action)
	if !p.Role.Allows(perm) {
		s.audit(ctx, p, "action.denied", "playbook:"+pb.Name, "create playbook type=%s reason=%q", pb.Action, "role "+string(p.Role)+" lacks "+string(perm))
		return nil, errorf("forbidden", "a playbook that runs %s needs permission %s, which role %s lacks", pb.Action, perm, p.Role)
	}
	pb.ID, pb.CreatedBy, pb.CreatedAt = newID(), p.Actor, s.opts.Now().UTC()
	if err := s.opts.Playbooks.CreatePlaybook(ctx, &pb); err != nil {
		return nil, err
	}
	s.audit(ctx, p, "playbook.create", "playbook:"+pb.ID, "name=%q min_level=%s tags=%q type=%s args=%s dry_run=%v max_per_hour=%d",
		pb.Name, pb.MinLevel, pb.Tags, pb.Action, argString(pb.Args), pb.DryRun, pb.MaxPerHour)
	s.pbMu.Lock()
	s.pbLoaded = time.Time{} // reload
	s.pbMu.Unlock()
	return &pb, nil
}

// DeletePlaybook removes a playbook; p needs the permission of its action.
func (s *Service) DeletePlaybook(ctx context.Context, p Principal, id string) error {
	if s.opts.Playbooks == nil {
		return errorf("bad_request", "playbooks are not available on this server")
	}
	pbs, err := s.opts.Playbooks.ListPlaybooks(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(pbs, func(pb Playbook) bool { return pb.ID == id })
	if i < 0 {
		return errorf("not_found", "no playbook %q", clip(id))
	}
	if perm := Permission(pbs[i].Action); !p.Role.Allows(perm) {
		s.audit(ctx, p, "action.denied", "playbook:"+id, "delete playbook reason=%q", "role "+string(p.Role)+" lacks "+string(perm))
		return errorf("forbidden", "role %s lacks permission %s", p.Role, perm)
	}
	if err := s.opts.Playbooks.DeletePlaybook(ctx, id); err != nil {
		return err
	}
	s.audit(ctx, p, "playbook.delete", "playbook:"+id, "name=%q", pbs[i].Name)
	s.pbMu.Lock()
	s.pbLoaded = time.Time{}
	s.pbMu.Unlock()
	return nil
}

// ListPlaybooks lists the playbooks.
func (s *Service) ListPlaybooks(ctx context.Context) ([]Playbook, error) {
	if s.opts.Playbooks == nil {
		return nil, nil
	}
	return s.opts.Playbooks.ListPlaybooks(ctx)
}

// OnAlert queues an alert occurrence for the playbooks. It never blocks
// (detection workers call it); when the queue of 1,024 is full the
// occurrence is dropped and counted (PlaybookDrops).
func (s *Service) OnAlert(f alert.Finding) {
	if s.opts.Playbooks == nil {
		return
	}
	select {
	case s.alerts <- f:
	default:
		s.pbDrops.Add(1)
	}
}

// PlaybookDrops counts alert occurrences the playbooks never saw.
func (s *Service) PlaybookDrops() uint64 { return s.pbDrops.Load() }

// RunPlaybooks evaluates queued alerts until ctx ends.
func (s *Service) RunPlaybooks(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-s.alerts:
			s.evaluate(ctx, f)
		}
	}
}

// playbookState is the rate limiter of one playbook: the times of its
// actions in the last hour.
type playbookState struct {
	runs    []time.Time
	limited bool // the limit was hit and audited in this window
}

func (s *Service) evaluate(ctx context.Context, f alert.Finding) {
	if f.AgentID == "" || strings.HasPrefix(f.AgentID, "syslog:") {
		return // no agent to act on
	}
	pbs := s.playbooks(ctx)
	for _, pb := range pbs {
		if levelRank(f.Level) < levelRank(pb.MinLevel) || !tagsMatch(pb.Tags, f.Tags) {
			continue
		}
		s.trigger(ctx, pb, f)
	}
}

func (s *Service) playbooks(ctx context.Context) []Playbook {
	s.pbMu.Lock()
	defer s.pbMu.Unlock()
	if now := time.Now(); now.Sub(s.pbLoaded) > 5*time.Second {
		pbs, err := s.opts.Playbooks.ListPlaybooks(ctx)
		if err != nil {
			s.log.Warn("loading playbooks", "err", err)
			return s.pbCache
		}
		s.pbCache, s.pbLoaded = pbs, now
	}
	return s.pbCache
}

func tagsMatch(want, have []string) bool {
	if len(want) == 0 {
		return true
	}
	for _, w := range want {
		for _, h := range have {
			if strings.EqualFold(w, h) {
				return true
			}
		}
	}
	return false
}

func (s *Service) trigger(ctx context.Context, pb Playbook, f alert.Finding) {
	via := "playbook:" + pb.ID
	sys := Principal{Actor: "system", Source: via}
	now := s.opts.Now()
	s.pbMu.Lock()
	st := s.pbState[pb.ID]
	if st == nil {
		st = &playbookState{}
		s.pbState[pb.ID] = st
	}
	st.runs = slices.DeleteFunc(st.runs, func(t time.Time) bool { return now.Sub(t) >= time.Hour })
	if len(st.runs) == 0 {
		st.limited = false
	}
	over := len(st.runs) >= pb.MaxPerHour
	first := over && !st.limited
	if over {
		st.limited = true
	} else {
		st.runs = append(st.runs, now)
	}
	s.pbMu.Unlock()
	if over {
		if first {
			s.audit(ctx, sys, "playbook.rate_limited", via, "name=%q max_per_hour=%d agent=%s rule=%s", pb.Name, pb.MaxPerHour, f.AgentID, f.RuleID)
		}
		return
	}
	if pb.DryRun {
		s.audit(ctx, sys, "playbook.dry_run", via, "name=%q would run type=%s args=%s agent=%s rule=%s level=%s as=%s",
			pb.Name, pb.Action, argString(pb.Args), f.AgentID, f.RuleID, f.Level, pb.CreatedBy)
		return
	}
	p := Principal{Actor: pb.CreatedBy, Source: via}
	role, err := s.roleOf(ctx, pb.CreatedBy)
	if err != nil {
		s.audit(ctx, p, "action.denied", "agent:"+f.AgentID, "type=%s via=%s reason=%q", pb.Action, via, "the playbook's creator cannot act: "+err.Error())
		return
	}
	p.Role = role
	if _, err := s.Request(ctx, p, Request{Type: pb.Action, AgentID: f.AgentID, Args: pb.Args, Via: via,
		Note: clip("playbook " + pb.Name + ": " + f.RuleTitle)}); err != nil {
		var re *Error
		if !errors.As(err, &re) {
			s.log.Error("playbook action", "playbook", pb.ID, "err", err)
		}
	}
}

func (s *Service) roleOf(ctx context.Context, actor string) (authz.Role, error) {
	if s.opts.RoleOf == nil {
		return "", errors.New("no role resolver")
	}
	r, err := s.opts.RoleOf(ctx, actor)
	if err != nil {
		return "", fmt.Errorf("%s: %w", actor, err)
	}
	return r, nil
}

func printableText(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return false
		}
	}
	return true
}
