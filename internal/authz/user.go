package authz

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"
)

// User is a local console account.
type User struct {
	Name         string // login name: 1 to 64 of a-z 0-9 . _ - (CheckUserName)
	Role         Role
	PasswordHash string // argon2id PHC string (HashPassword)
	// TOTPSecret is the enrolled second factor; empty means none. Admins
	// cannot finish a login without one: they enrol it at their first.
	TOTPSecret   []byte
	TOTPLastStep int64 // the last accepted time step (replay guard)
	Failed       int   // login attempts since the last success (see Authenticator)
	LockedUntil  time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// NeedsTOTP reports whether the user must enrol a second factor before a
// login completes.
func (u User) NeedsTOTP() bool { return u.Role == RoleAdmin && len(u.TOTPSecret) == 0 }

// CheckUserName is the login-name rule; its errors are safe to show.
func CheckUserName(name string) error {
	if name == "" || len(name) > 64 {
		return UserError("a user name has 1 to 64 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return UserError("a user name may contain only a-z, 0-9, '.', '_' and '-'")
		}
	}
	return nil
}

// UserStore is what authz needs to keep users. Implementations must be safe
// for concurrent use; UpdateUser must run fn and store its result atomically
// with respect to every other write of the same user (also from another
// process), so login attempts cannot race past the lockout.
type UserStore interface {
	// CreateUser returns store.ErrConflict for an existing name.
	CreateUser(ctx context.Context, u User) error
	// GetUser returns store.ErrNotFound for an unknown name.
	GetUser(ctx context.Context, name string) (User, error)
	// ListUsers returns every user ordered by name.
	ListUsers(ctx context.Context) ([]User, error)
	// UpdateUser reads the user, calls fn on it and, if fn returns nil,
	// stores the result durably; fn's error is returned unchanged and
	// nothing is stored. Unknown names are store.ErrNotFound. fn must not
	// change Name.
	UpdateUser(ctx context.Context, name string, fn func(*User) error) error
}

// Session is a console login. Only the SHA-256 of the cookie value is
// stored, so a copy of the database does not hold usable sessions.
type Session struct {
	Hash []byte // SHA-256 of the cookie secret
	User string
	// Pending marks a session that has passed the password (and TOTP, if
	// enrolled) but still has to enrol TOTP: it grants nothing else.
	Pending   bool
	CSRF      string // the synchronizer token sent with every state change
	CreatedAt time.Time
	LastSeen  time.Time
	ExpiresAt time.Time // absolute expiry
	IP        string
	UserAgent string
}

// SessionStore keeps sessions. Implementations must be safe for concurrent use.
type SessionStore interface {
	CreateSession(ctx context.Context, s Session) error
	// SessionByHash returns store.ErrNotFound for an unknown hash.
	SessionByHash(ctx context.Context, hash []byte) (Session, error)
	TouchSession(ctx context.Context, hash []byte, at time.Time) error
	// DeleteSession removes one session; an unknown hash is not an error.
	DeleteSession(ctx context.Context, hash []byte) error
	// DeleteUserSessions ends every session of a user (after a password,
	// role or TOTP change).
	DeleteUserSessions(ctx context.Context, user string) error
	// DeleteExpiredSessions removes sessions whose absolute expiry is at or
	// before now or that were last seen at or before idleBefore.
	DeleteExpiredSessions(ctx context.Context, now, idleBefore time.Time) (int64, error)
}

// NewSessionSecret returns a cookie secret (256 bits, base64url) and the hash
// stored for it.
func NewSessionSecret() (secret string, hash []byte) {
	b := make([]byte, 32)
	rand.Read(b)
	secret = base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(secret))
	return secret, h[:]
}

// NewPassword returns a random password for a new account or a reset: 24
// characters of a-z and 2-9 in groups of six (about 120 bits).
func NewPassword() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyz23456789" // 32 symbols, no l, o, 0, 1
	b := make([]byte, 24)
	rand.Read(b)
	out := make([]byte, 0, 27)
	for i, c := range b {
		if i > 0 && i%6 == 0 {
			out = append(out, '-')
		}
		out = append(out, alphabet[c&31])
	}
	return string(out)
}
