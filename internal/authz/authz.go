// Package authz decides who may do what: roles, the permissions each role
// holds, and API tokens. Every API route names exactly one Permission; a test
// in package web enumerates all routes × roles.
//
// Server-side packages may import authz; agents must not.
package authz

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"time"
)

// Role is a set of permissions.
type Role string

// Roles.
const (
	RoleAdmin   Role = "admin"
	RoleAnalyst Role = "analyst"
	RoleViewer  Role = "viewer"
)

// ParseRole accepts a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(strings.ToLower(s)); r {
	case RoleAdmin, RoleAnalyst, RoleViewer:
		return r, nil
	}
	return "", errors.New("unknown role " + s + " (want admin, analyst or viewer)")
}

// Permission is one kind of action.
type Permission string

// Permissions. Read permissions are held by every role; triage by analysts
// and admins; administration by admins only. PermNotifyAdmin covers reading
// notification channels too: their endpoints and addresses are sensitive.
const (
	PermAlertsRead      Permission = "alerts:read"
	PermAlertsTriage    Permission = "alerts:triage"
	PermEventsRead      Permission = "events:read"
	PermHostsRead       Permission = "hosts:read"
	PermHostsAdmin      Permission = "hosts:admin" // revoke agents
	PermRulesRead       Permission = "rules:read"
	PermRulesAdmin      Permission = "rules:admin" // enable/disable, reload
	PermEnrollAdmin     Permission = "enroll:admin"
	PermSuppressRead    Permission = "suppressions:read"
	PermSuppressWrite   Permission = "suppressions:write"
	PermTokensAdmin     Permission = "tokens:admin"
	PermNotifyAdmin     Permission = "notify:admin"
	PermSystemRead      Permission = "system:read"  // metrics, status
	PermPublic          Permission = "public"       // health checks, the OpenAPI document
	PermAgent           Permission = "agent"        // mTLS agent routes: identity from the certificate
	PermEnrollWithToken Permission = "enroll"       // agent enrolment: authorised by an enrolment token
	PermCasesRead       Permission = "cases:read"   // cases, their evidence, timelines and reports
	PermCasesWrite      Permission = "cases:write"  // open, change, comment on and add evidence to cases
	PermAuditRead       Permission = "audit:read"   // the hash-chained audit log
	PermUsersAdmin      Permission = "users:admin"  // console users and the settings page
	PermHygieneRead     Permission = "hygiene:read" // configuration assessment results (and the hygiene views built on them)
	// PermSession is held by every role: what any signed-in user may do to
	// their own session (see the console, sign out).
	PermSession Permission = "session"

	// Response actions (docs/actions.md). PermActionsRequest opens the
	// create and cancel routes; creating an action also needs the
	// permission of its type, checked by package respond on every path
	// (API and playbooks). Isolation and blocking are admin-only.
	PermActionsRead       Permission = "actions:read"
	PermActionsRequest    Permission = "actions:request"
	PermActionsKill       Permission = "actions:kill"
	PermActionsQuarantine Permission = "actions:quarantine" // and restore
	PermActionsCollect    Permission = "actions:collect"    // and downloading collected files
	PermActionsQuery      Permission = "actions:query"
	PermActionsBlock      Permission = "actions:block"   // and unblock
	PermActionsIsolate    Permission = "actions:isolate" // and release
	PermActionsApprove    Permission = "actions:approve" // second approver
	PermPlaybooksWrite    Permission = "playbooks:write" // create and delete playbooks; each also needs its action's permission
)

var rolePerms = map[Role]map[Permission]bool{
	RoleViewer: set(PermAlertsRead, PermEventsRead, PermHostsRead, PermRulesRead, PermSuppressRead, PermSystemRead,
		PermCasesRead, PermHygieneRead, PermSession),
	RoleAnalyst: set(PermAlertsRead, PermEventsRead, PermHostsRead, PermRulesRead, PermSuppressRead, PermSystemRead,
		PermCasesRead, PermHygieneRead, PermSession, PermAlertsTriage, PermSuppressWrite, PermCasesWrite,
		PermActionsRead, PermActionsRequest, PermActionsKill, PermActionsQuarantine, PermActionsCollect, PermActionsQuery,
		PermPlaybooksWrite),
	RoleAdmin: set(PermAlertsRead, PermEventsRead, PermHostsRead, PermRulesRead, PermSuppressRead, PermSystemRead,
		PermCasesRead, PermHygieneRead, PermSession, PermAlertsTriage, PermSuppressWrite, PermCasesWrite, PermHostsAdmin, PermRulesAdmin,
		PermEnrollAdmin, PermTokensAdmin, PermNotifyAdmin, PermAuditRead, PermUsersAdmin,
		PermActionsRead, PermActionsRequest, PermActionsKill, PermActionsQuarantine, PermActionsCollect, PermActionsQuery,
		PermActionsBlock, PermActionsIsolate, PermActionsApprove, PermPlaybooksWrite),
}

func set(ps ...Permission) map[Permission]bool {
	m := map[Permission]bool{}
	for _, p := range ps {
		m[p] = true
	}
	return m
}

// Allows reports whether role r holds permission p. Public, agent and
// enrolment permissions are not held by any role: those routes authenticate
// differently.
func (r Role) Allows(p Permission) bool { return rolePerms[r][p] }

// Token is an API token. Only the SHA-256 of its secret is stored; the
// secret has 256 bits of entropy, so a fast hash is sufficient.
type Token struct {
	ID        string
	Name      string
	Role      Role
	Hash      []byte
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
	LastUsed  time.Time
	Revoked   bool
}

// Store is what authz needs from storage.
type Store interface {
	CreateToken(ctx context.Context, t Token) error
	// TokenByHash returns store.ErrNotFound for an unknown hash.
	TokenByHash(ctx context.Context, hash []byte) (Token, error)
	ListTokens(ctx context.Context) ([]Token, error)
	RevokeToken(ctx context.Context, id string) error
	TouchToken(ctx context.Context, id string, t time.Time) error
}

// NewSecret returns a random token secret, printable, 43 characters.
func NewSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Hash is how token secrets are stored and looked up.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}
