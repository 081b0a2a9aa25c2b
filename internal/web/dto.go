package web

import (
	"encoding/json"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/overview"
	"github.com/vigil-edr/vigil/internal/ruleset"
	"github.com/vigil-edr/vigil/internal/transport"
)

// The JSON shapes of the API. Storage types are never encoded directly, so
// a new storage field (a secret hash, say) cannot leak by accident. Times
// are RFC 3339 in UTC; a zero time is omitted.

type statusResp struct {
	Status string `json:"status"`
}

type fieldJSON struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func fieldsJSON(fs []event.Field) []fieldJSON {
	out := make([]fieldJSON, len(fs))
	for i, f := range fs {
		out[i] = fieldJSON{f.Name, f.Value}
	}
	return out
}

// tm is a time that encodes as RFC 3339 UTC, or is omitted when zero.
func tm(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

type alertJSON struct {
	ID          int64       `json:"id"`
	RuleID      string      `json:"rule_id"`
	RuleTitle   string      `json:"rule_title"`
	Level       string      `json:"level"`
	Tags        []string    `json:"tags"`
	Host        string      `json:"host"`
	AgentID     string      `json:"agent_id,omitempty"`
	Correlation bool        `json:"correlation"`
	State       alert.State `json:"state"`
	Count       int         `json:"count"`
	FirstSeen   *time.Time  `json:"first_seen,omitempty"`
	LastSeen    *time.Time  `json:"last_seen,omitempty"`
	Fields      []fieldJSON `json:"fields"`
	EventIDs    []int64     `json:"event_ids"`
	Assignee    string      `json:"assignee,omitempty"`
	StateBy     string      `json:"state_by,omitempty"`
	StateAt     *time.Time  `json:"state_at,omitempty"`
	Reason      string      `json:"reason,omitempty"`
}

func toAlertJSON(a *alert.Alert) alertJSON {
	return alertJSON{
		ID: a.ID, RuleID: a.RuleID, RuleTitle: a.RuleTitle, Level: a.Level, Tags: nonNil(a.Tags),
		Host: a.Host, AgentID: a.AgentID, Correlation: a.Correlation, State: a.State, Count: a.Count,
		FirstSeen: tm(a.FirstSeen), LastSeen: tm(a.LastSeen), Fields: fieldsJSON(a.Fields),
		EventIDs: nonNil(a.EventIDs), Assignee: a.Assignee, StateBy: a.StateBy, StateAt: tm(a.StateAt),
		Reason: a.Reason,
	}
}

type alertPage struct {
	Items      []alertJSON `json:"items"`
	NextBefore int64       `json:"next_before,omitempty"` // absent on the last page
}

type stateReq struct {
	State  alert.State `json:"state"`
	Reason string      `json:"reason,omitempty"`
}

type assignReq struct {
	Assignee string `json:"assignee"`
}

type commentReq struct {
	Text string `json:"text"`
}

type commentJSON struct {
	ID      int64      `json:"id"`
	AlertID int64      `json:"alert_id"`
	Author  string     `json:"author"`
	Text    string     `json:"text"`
	At      *time.Time `json:"at,omitempty"`
}

func toCommentJSON(c alert.Comment) commentJSON {
	return commentJSON{ID: c.ID, AlertID: c.AlertID, Author: c.Author, Text: c.Text, At: tm(c.At)}
}

type commentList struct {
	Items []commentJSON `json:"items"`
}

type eventJSON struct {
	ID         int64       `json:"id"`
	AgentID    string      `json:"agent_id"`
	BootEpoch  uint64      `json:"boot_epoch"`
	Seq        uint64      `json:"seq"`
	Host       string      `json:"host"`
	Time       *time.Time  `json:"time,omitempty"`
	Product    string      `json:"product"`
	Services   []string    `json:"services"`
	Categories []string    `json:"categories"`
	Fields     []fieldJSON `json:"fields"`
}

func toEventJSON(e eventstore.Record) eventJSON {
	return eventJSON{
		ID: e.ID, AgentID: e.AgentID, BootEpoch: e.BootEpoch, Seq: e.Seq, Host: e.Host, Time: tm(e.Time),
		Product: e.Product, Services: nonNil(e.Services), Categories: nonNil(e.Category), Fields: fieldsJSON(e.Fields),
	}
}

type eventPage struct {
	Items      []eventJSON `json:"items"`
	NextBefore int64       `json:"next_before,omitempty"`
}

type hostJSON struct {
	ID           string     `json:"id"`
	Hostname     string     `json:"hostname"`
	OS           string     `json:"os"`
	Arch         string     `json:"arch"`
	Version      string     `json:"version"`
	CertSerial   string     `json:"cert_serial"`
	CertNotAfter *time.Time `json:"cert_not_after,omitempty"`
	EnrolledAt   *time.Time `json:"enrolled_at,omitempty"`
	LastSeen     *time.Time `json:"last_seen,omitempty"`
	Revoked      bool       `json:"revoked"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
	// Online is true when the agent was seen within overview.OnlineWithin.
	Online bool `json:"online"`
	// Health is the agent's last heartbeat health (wire.Health, as the
	// server stored it), received at HealthAt.
	Health   json.RawMessage `json:"health,omitempty"`
	HealthAt *time.Time      `json:"health_at,omitempty"`
}

func toHostJSON(a transport.Agent, now time.Time) hostJSON {
	return hostJSON{
		ID: a.ID, Hostname: a.Hostname, OS: a.OS, Arch: a.Arch, Version: a.Version, CertSerial: a.CertSerial,
		CertNotAfter: tm(a.CertNotAfter), EnrolledAt: tm(a.EnrolledAt), LastSeen: tm(a.LastSeen),
		Revoked: a.Revoked, RevokedAt: tm(a.RevokedAt),
		Online: overview.Online(a, now),
		Health: json.RawMessage(a.Health), HealthAt: tm(a.HealthAt),
	}
}

type hostList struct {
	Items []hostJSON `json:"items"`
}

type enrollTokenReq struct {
	Note      string     `json:"note,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"` // default 24 hours from now, at most a year
	MaxUses   int        `json:"max_uses,omitempty"`   // 0: unlimited
}

type enrollTokenJSON struct {
	ID        string     `json:"id"`
	Note      string     `json:"note"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	MaxUses   int        `json:"max_uses"`
	Uses      int        `json:"uses"`
	Revoked   bool       `json:"revoked"`
}

func toEnrollTokenJSON(t transport.EnrollToken) enrollTokenJSON {
	return enrollTokenJSON{ID: t.ID, Note: t.Note, CreatedAt: tm(t.CreatedAt), ExpiresAt: tm(t.ExpiresAt),
		MaxUses: t.MaxUses, Uses: t.Uses, Revoked: t.Revoked}
}

type enrollTokenCreated struct {
	Token  enrollTokenJSON `json:"token"`
	Secret string          `json:"secret"` // "<id>.<secret>", shown only here
}

type enrollTokenList struct {
	Items []enrollTokenJSON `json:"items"`
}

type suppressionReq struct {
	RuleID    string    `json:"rule_id"`
	Host      string    `json:"host,omitempty"`
	Field     string    `json:"field,omitempty"`
	Value     string    `json:"value,omitempty"`
	Reason    string    `json:"reason"`
	ExpiresAt time.Time `json:"expires_at"`
}

type suppressionJSON struct {
	ID        int64      `json:"id"`
	RuleID    string     `json:"rule_id"`
	Host      string     `json:"host,omitempty"`
	Field     string     `json:"field,omitempty"`
	Value     string     `json:"value,omitempty"`
	Reason    string     `json:"reason"`
	CreatedBy string     `json:"created_by"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func toSuppressionJSON(s alert.Suppression) suppressionJSON {
	return suppressionJSON{ID: s.ID, RuleID: s.RuleID, Host: s.Host, Field: s.Field, Value: s.Value,
		Reason: s.Reason, CreatedBy: s.CreatedBy, CreatedAt: tm(s.CreatedAt), ExpiresAt: tm(s.ExpiresAt)}
}

type suppressionList struct {
	Items []suppressionJSON `json:"items"`
}

type ruleJSON struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Level       string   `json:"level"`
	Kind        string   `json:"kind"` // detection, correlation, filter, rejected
	Path        string   `json:"path"`
	Tags        []string `json:"tags"`
	Enabled     bool     `json:"enabled"`
	Matches     uint64   `json:"matches"`
	Evaluations uint64   `json:"evaluations"`
	CostNS      int64    `json:"cost_ns"` // estimated total evaluation time
	LastError   string   `json:"last_error,omitempty"`
}

func toRuleJSON(in ruleset.Info) ruleJSON {
	return ruleJSON{ID: in.ID, Title: in.Title, Level: in.Level, Kind: in.Kind, Path: in.Path, Tags: nonNil(in.Tags),
		Enabled: in.Enabled, Matches: in.Matches, Evaluations: in.Evaluations, CostNS: in.Cost.Nanoseconds(),
		LastError: in.LastError}
}

type ruleList struct {
	Items []ruleJSON `json:"items"`
}

type tokenReq struct {
	Name      string     `json:"name"`
	Role      authz.Role `json:"role"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"` // absent: never expires
}

type tokenJSON struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      authz.Role `json:"role"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	LastUsed  *time.Time `json:"last_used,omitempty"`
	Revoked   bool       `json:"revoked"`
}

func toTokenJSON(t authz.Token) tokenJSON {
	return tokenJSON{ID: t.ID, Name: t.Name, Role: t.Role, CreatedAt: tm(t.CreatedAt), ExpiresAt: tm(t.ExpiresAt),
		LastUsed: tm(t.LastUsed), Revoked: t.Revoked}
}

type tokenCreated struct {
	Token  tokenJSON `json:"token"`
	Secret string    `json:"secret"` // the bearer secret, shown only here
}

type tokenList struct {
	Items []tokenJSON `json:"items"`
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
