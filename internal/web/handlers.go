package web

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/store"
	"github.com/vigil-edr/vigil/internal/transport"
)

// Bounds on what callers may ask for.
const (
	maxFieldFilters   = 16
	defaultEnrollTTL  = 24 * time.Hour
	maxEnrollTTL      = 365 * 24 * time.Hour
	maxSuppressionTTL = 365 * 24 * time.Hour
)

var levels = []string{"informational", "low", "medium", "high", "critical"}

func notConfigured(what string) error {
	return errorf(CodeUnavailable, "%s are not available on this server", what)
}

// ---- system ----

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, statusResp{Status: "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Ready != nil {
		if err := s.opts.Ready(); err != nil {
			s.log.Warn("not ready", "err", err)
			return errorf(CodeUnavailable, "not ready")
		}
	}
	writeJSON(w, http.StatusOK, statusResp{Status: "ready"})
	return nil
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	s.metrics.ServeHTTP(w, r)
	return nil
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	setCommonHeaders(h)
	w.Write(s.openapi)
	return nil
}

// ---- alerts ----

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Alerts == nil {
		return notConfigured("alerts")
	}
	q := newQuery(r)
	f := alert.Filter{Host: q.str("host"), RuleID: q.str("rule_id"), Since: q.time("since"),
		Limit: q.limit(), Before: q.before()}
	for _, st := range q.v["state"] {
		state, e := parseState(st)
		if e != nil {
			return e
		}
		if !slices.Contains(f.States, state) {
			f.States = append(f.States, state)
		}
	}
	if lv := q.v.Get("min_level"); lv != "" {
		if !slices.Contains(levels, lv) {
			return errorf(CodeBadRequest, "min_level must be one of %s", strings.Join(levels, ", "))
		}
		f.MinLevel = lv
	}
	if q.err != nil {
		return q.err
	}
	as, err := s.opts.Alerts.ListAlerts(r.Context(), f)
	if err != nil {
		return err
	}
	page := alertPage{Items: make([]alertJSON, len(as))}
	for i := range as {
		page.Items[i] = toAlertJSON(&as[i])
	}
	if len(as) == f.Limit {
		page.NextBefore = as[len(as)-1].ID
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func parseState(s string) (alert.State, *Error) {
	switch st := alert.State(s); st {
	case alert.StateNew, alert.StateAcknowledged, alert.StateResolved, alert.StateFalsePositive:
		return st, nil
	}
	return "", errorf(CodeBadRequest, "state must be one of new, acknowledged, resolved, false_positive")
}

// alertByPath loads the alert named by the {id} path parameter.
func (s *Server) alertByPath(r *http.Request) (*alert.Alert, error) {
	if s.opts.Alerts == nil {
		return nil, notConfigured("alerts")
	}
	id, e := pathInt(r, "id")
	if e != nil {
		return nil, e
	}
	return s.opts.Alerts.GetAlert(r.Context(), id)
}

func (s *Server) getAlert(w http.ResponseWriter, r *http.Request) error {
	a, err := s.alertByPath(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toAlertJSON(a))
	return nil
}

func (s *Server) setAlertState(w http.ResponseWriter, r *http.Request) error {
	a, err := s.alertByPath(r)
	if err != nil {
		return err
	}
	var req stateReq
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	to, e := parseState(string(req.State))
	if e != nil {
		return e
	}
	if e := checkString("reason", req.Reason, maxTextLen, true); e != nil {
		return e
	}
	if to == alert.StateFalsePositive && strings.TrimSpace(req.Reason) == "" {
		return errorf(CodeBadRequest, "closing as false_positive needs a reason")
	}
	noteAudit(r, alertTarget(a.ID), "to="+string(to))
	if req.Reason != "" {
		noteAudit(r, "", "reason="+strconv.Quote(req.Reason))
	}
	if err := s.opts.Alerts.Transition(r.Context(), a.ID, to, actor(r), req.Reason); err != nil {
		return err
	}
	s.AlertsChanged()
	return s.writeAlert(w, r, a.ID)
}

func (s *Server) writeAlert(w http.ResponseWriter, r *http.Request, id int64) error {
	a, err := s.opts.Alerts.GetAlert(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toAlertJSON(a))
	return nil
}

func (s *Server) assignAlert(w http.ResponseWriter, r *http.Request) error {
	a, err := s.alertByPath(r)
	if err != nil {
		return err
	}
	var req assignReq
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if e := checkString("assignee", req.Assignee, maxNameLen, false); e != nil {
		return e
	}
	noteAudit(r, alertTarget(a.ID), "assignee="+req.Assignee)
	if err := s.opts.Alerts.SetAssignee(r.Context(), a.ID, req.Assignee); err != nil {
		return err
	}
	s.AlertsChanged()
	return s.writeAlert(w, r, a.ID)
}

func (s *Server) listComments(w http.ResponseWriter, r *http.Request) error {
	a, err := s.alertByPath(r)
	if err != nil {
		return err
	}
	cs, err := s.opts.Alerts.Comments(r.Context(), a.ID)
	if err != nil {
		return err
	}
	out := commentList{Items: make([]commentJSON, len(cs))}
	for i, c := range cs {
		out.Items[i] = toCommentJSON(c)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) addComment(w http.ResponseWriter, r *http.Request) error {
	a, err := s.alertByPath(r)
	if err != nil {
		return err
	}
	var req commentReq
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Text) == "" {
		return errorf(CodeBadRequest, "text is empty")
	}
	if e := checkString("text", req.Text, maxTextLen, true); e != nil {
		return e
	}
	noteAudit(r, alertTarget(a.ID), "comment")
	c := alert.Comment{AlertID: a.ID, Author: actor(r), Text: req.Text, At: s.now().UTC()}
	if err := s.opts.Alerts.AddComment(r.Context(), &c); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toCommentJSON(c))
	return nil
}

// ---- suppressions ----

func (s *Server) listSuppressions(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Alerts == nil {
		return notConfigured("suppressions")
	}
	ss, err := s.opts.Alerts.ActiveSuppressions(r.Context(), s.now())
	if err != nil {
		return err
	}
	out := suppressionList{Items: make([]suppressionJSON, len(ss))}
	for i, sp := range ss {
		out.Items[i] = toSuppressionJSON(sp)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) createSuppression(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Alerts == nil {
		return notConfigured("suppressions")
	}
	var req suppressionReq
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{
		{"rule_id", req.RuleID}, {"host", req.Host}, {"field", req.Field}, {"value", req.Value},
	} {
		if e := checkString(f.name, f.v, maxNameLen, false); e != nil {
			return e
		}
	}
	if e := checkString("reason", req.Reason, maxTextLen, true); e != nil {
		return e
	}
	now := s.now()
	switch {
	case req.RuleID == "":
		return errorf(CodeBadRequest, "rule_id is required")
	case req.Host == "" && req.Field == "":
		return errorf(CodeBadRequest, "a suppression needs a host or a field and value; to silence a rule everywhere, disable it")
	case (req.Field == "") != (req.Value == ""):
		return errorf(CodeBadRequest, "field and value go together")
	case strings.TrimSpace(req.Reason) == "":
		return errorf(CodeBadRequest, "reason is required")
	case !req.ExpiresAt.After(now):
		return errorf(CodeBadRequest, "expires_at must be in the future")
	case req.ExpiresAt.Sub(now) > maxSuppressionTTL:
		return errorf(CodeBadRequest, "expires_at must be within a year")
	}
	sp := alert.Suppression{RuleID: req.RuleID, Host: req.Host, Field: req.Field, Value: req.Value,
		Reason: req.Reason, CreatedBy: actor(r), ExpiresAt: req.ExpiresAt.UTC()}
	if err := s.opts.Alerts.Suppress(r.Context(), &sp); err != nil {
		return err
	}
	noteAudit(r, "suppression:"+strconv.FormatInt(sp.ID, 10), fmt.Sprintf("rule=%s host=%q field=%q until=%s reason=%q",
		sp.RuleID, sp.Host, sp.Field, sp.ExpiresAt.Format(time.RFC3339), sp.Reason))
	writeJSON(w, http.StatusCreated, toSuppressionJSON(sp))
	return nil
}

func (s *Server) deleteSuppression(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Alerts == nil {
		return notConfigured("suppressions")
	}
	id, e := pathInt(r, "id")
	if e != nil {
		return e
	}
	if err := s.opts.Alerts.DeleteSuppression(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- events ----

func (s *Server) searchEvents(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Events == nil {
		return notConfigured("events")
	}
	q := newQuery(r)
	eq, e := eventQuery(q)
	if e != nil {
		return e
	}
	eq.Limit, eq.Before = q.limit(), q.before()
	if q.err != nil {
		return q.err
	}
	recs, err := s.opts.Events.Search(r.Context(), eq)
	if err != nil {
		return err
	}
	page := eventPage{Items: make([]eventJSON, len(recs))}
	for i, rec := range recs {
		page.Items[i] = toEventJSON(rec)
	}
	if len(recs) == eq.Limit {
		page.NextBefore = recs[len(recs)-1].ID
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// eventQuery reads the filters shared by the event search and its export:
// host, agent_id, category, from, to, field (Name=Value, repeated) and q.
func eventQuery(q *query) (eventstore.Query, *Error) {
	eq := eventstore.Query{Host: q.str("host"), AgentID: q.str("agent_id"), Category: q.str("category"),
		From: q.time("from"), To: q.time("to"), Text: q.str("q")}
	if q.err != nil {
		return eq, q.err
	}
	if !eq.From.IsZero() && !eq.To.IsZero() && !eq.From.Before(eq.To) {
		return eq, errorf(CodeBadRequest, "from must be before to")
	}
	fields := q.v["field"]
	if len(fields) > maxFieldFilters {
		return eq, errorf(CodeBadRequest, "at most %d field filters", maxFieldFilters)
	}
	for _, f := range fields {
		name, value, ok := strings.Cut(f, "=")
		if !ok || name == "" {
			return eq, errorf(CodeBadRequest, "field must be Name=Value")
		}
		if e := checkString("field", f, maxNameLen, false); e != nil {
			return eq, e
		}
		eq.Fields = append(eq.Fields, eventstore.FieldFilter{Name: name, Value: value})
	}
	return eq, nil
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Events == nil {
		return notConfigured("events")
	}
	id, e := pathInt(r, "id")
	if e != nil {
		return e
	}
	rec, err := s.opts.Events.Get(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toEventJSON(rec))
	return nil
}

// ---- hosts ----

func (s *Server) listHosts(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Hosts == nil {
		return notConfigured("hosts")
	}
	as, err := s.opts.Hosts.ListAgents(r.Context())
	if err != nil {
		return err
	}
	out := hostList{Items: make([]hostJSON, len(as))}
	for i, a := range as {
		out.Items[i] = toHostJSON(a, s.now())
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) hostByPath(r *http.Request) (transport.Agent, error) {
	if s.opts.Hosts == nil {
		return transport.Agent{}, notConfigured("hosts")
	}
	id, e := pathID(r, "id")
	if e != nil {
		return transport.Agent{}, e
	}
	return s.opts.Hosts.GetAgent(r.Context(), id)
}

func (s *Server) getHost(w http.ResponseWriter, r *http.Request) error {
	a, err := s.hostByPath(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toHostJSON(a, s.now()))
	return nil
}

func (s *Server) revokeHost(w http.ResponseWriter, r *http.Request) error {
	a, err := s.hostByPath(r)
	if err != nil {
		return err
	}
	if !a.Revoked {
		if err := s.opts.Hosts.RevokeAgent(r.Context(), a.ID, s.now().UTC()); err != nil {
			return err
		}
		if a, err = s.opts.Hosts.GetAgent(r.Context(), a.ID); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, toHostJSON(a, s.now()))
	return nil
}

// ---- enrolment tokens ----

func (s *Server) listEnrollTokens(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Enrollment == nil {
		return notConfigured("enrolment tokens")
	}
	ts, err := s.opts.Enrollment.ListEnrollTokens(r.Context())
	if err != nil {
		return err
	}
	out := enrollTokenList{Items: make([]enrollTokenJSON, len(ts))}
	for i, t := range ts {
		out.Items[i] = toEnrollTokenJSON(t)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) createEnrollToken(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Enrollment == nil {
		return notConfigured("enrolment tokens")
	}
	var req enrollTokenReq
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if e := checkString("note", req.Note, maxNameLen, false); e != nil {
		return e
	}
	now := s.now().UTC()
	exp := now.Add(defaultEnrollTTL)
	if req.ExpiresAt != nil {
		exp = req.ExpiresAt.UTC()
	}
	switch {
	case !exp.After(now):
		return errorf(CodeBadRequest, "expires_at must be in the future")
	case exp.Sub(now) > maxEnrollTTL:
		return errorf(CodeBadRequest, "expires_at must be within a year")
	case req.MaxUses < 0 || req.MaxUses > 1_000_000:
		return errorf(CodeBadRequest, "max_uses must be from 0 (unlimited) to 1000000")
	}
	plaintext, t := transport.NewToken(now, exp.Sub(now), req.MaxUses, req.Note)
	if err := s.opts.Enrollment.CreateEnrollToken(r.Context(), t); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, enrollTokenCreated{Token: toEnrollTokenJSON(t), Secret: plaintext})
	return nil
}

func (s *Server) revokeEnrollToken(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Enrollment == nil {
		return notConfigured("enrolment tokens")
	}
	id, e := pathID(r, "id")
	if e != nil {
		return e
	}
	if err := s.opts.Enrollment.RevokeEnrollToken(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// newID returns 16 random lower-case hex digits.
func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ---- rules ----

func (s *Server) listRules(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Rules == nil {
		return notConfigured("rules")
	}
	writeJSON(w, http.StatusOK, s.ruleList())
	return nil
}

func (s *Server) ruleList() ruleList {
	infos := s.opts.Rules.List()
	out := ruleList{Items: make([]ruleJSON, len(infos))}
	for i, in := range infos {
		out.Items[i] = toRuleJSON(in)
	}
	return out
}

func (s *Server) reloadRules(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Rules == nil {
		return notConfigured("rules")
	}
	if err := s.opts.Rules.Load(r.Context()); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.ruleList())
	return nil
}

func (s *Server) enableRule(w http.ResponseWriter, r *http.Request) error {
	return s.setRule(w, r, true)
}
func (s *Server) disableRule(w http.ResponseWriter, r *http.Request) error {
	return s.setRule(w, r, false)
}

func (s *Server) setRule(w http.ResponseWriter, r *http.Request, enabled bool) error {
	if s.opts.Rules == nil {
		return notConfigured("rules")
	}
	id, e := pathID(r, "id")
	if e != nil {
		return e
	}
	if !s.ruleKnown(id) {
		return store.ErrNotFound
	}
	if err := s.opts.Rules.SetEnabled(r.Context(), id, enabled); err != nil {
		return err
	}
	for _, in := range s.opts.Rules.List() {
		if in.ID == id && in.Kind != "rejected" {
			writeJSON(w, http.StatusOK, toRuleJSON(in))
			return nil
		}
	}
	return store.ErrNotFound // removed by a concurrent reload
}

func (s *Server) ruleKnown(id string) bool {
	for _, in := range s.opts.Rules.List() {
		if in.ID == id && in.Kind != "rejected" {
			return true
		}
	}
	return false
}

// ---- API tokens ----

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.opts.Tokens.ListTokens(r.Context())
	if err != nil {
		return err
	}
	out := tokenList{Items: make([]tokenJSON, len(ts))}
	for i, t := range ts {
		out.Items[i] = toTokenJSON(t)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	var req tokenReq
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Name) == "" {
		return errorf(CodeBadRequest, "name is required")
	}
	if e := checkString("name", req.Name, maxNameLen, false); e != nil {
		return e
	}
	role, err := authz.ParseRole(string(req.Role))
	if err != nil {
		return errorf(CodeBadRequest, "role must be admin, analyst or viewer")
	}
	now := s.now().UTC()
	t := authz.Token{ID: newID(), Name: req.Name, Role: role, CreatedAt: now}
	if req.ExpiresAt != nil {
		if !req.ExpiresAt.After(now) {
			return errorf(CodeBadRequest, "expires_at must be in the future")
		}
		t.ExpiresAt = req.ExpiresAt.UTC()
	}
	secret := authz.NewSecret()
	t.Hash = authz.Hash(secret)
	if err := s.opts.Tokens.CreateToken(r.Context(), t); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, tokenCreated{Token: toTokenJSON(t), Secret: secret})
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	id, e := pathID(r, "id")
	if e != nil {
		return e
	}
	if err := s.opts.Tokens.RevokeToken(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func alertTarget(id int64) string { return "alert:" + strconv.FormatInt(id, 10) }
