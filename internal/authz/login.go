package authz

import (
	"context"
	"errors"
	"runtime"
	"time"

	"github.com/vigil-edr/vigil/internal/store"
)

// Login errors. The console shows ErrBadLogin and ErrLocked with the same
// text, so a guesser does not learn which names exist from the message.
var (
	ErrBadLogin    = errors.New("invalid user name, password or one-time code")
	ErrLocked      = errors.New("account locked after too many failed logins")
	ErrRateLimited = errors.New("too many login attempts from this address")
)

// LoginOptions configure an Authenticator. Zero fields take the defaults
// shown.
type LoginOptions struct {
	Users  UserStore
	Argon2 Argon2Params // DefaultArgon2
	// MaxFailures failed attempts in a row lock an account for LockFor.
	MaxFailures int           // 5
	LockFor     time.Duration // 15 min
	// Each source address (an IPv6 /64) may try IPBurst logins at once and
	// then one per IPInterval; at most IPKeys addresses are tracked.
	IPBurst    int           // 10
	IPInterval time.Duration // 6 s: 10 a minute
	IPKeys     int           // 100000
	// Hashing bounds the argon2id computations running at once (each
	// holds Argon2.Memory); more attempts wait. Default GOMAXPROCS.
	Hashing int
	Now     func() time.Time
}

// Authenticator checks logins: source-address rate limit, per-account
// lockout, argon2id password, TOTP. It is safe for concurrent use.
//
// How the lockout holds under a flood: an attempt is counted (User.Failed,
// stored through UserStore.UpdateUser) before its password is hashed, and the
// attempt that reaches MaxFailures sets LockedUntil at once. However many
// attempts arrive together, at most MaxFailures per LockFor window are ever
// checked against the real hash, and a success resets the count.
type Authenticator struct {
	opts  LoginOptions
	ip    *Throttle
	sem   chan struct{}
	dummy string // a hash to verify against for unknown names (same timing)
}

// NewAuthenticator validates opts and fills in defaults.
func NewAuthenticator(opts LoginOptions) (*Authenticator, error) {
	if opts.Users == nil {
		return nil, errors.New("authz: LoginOptions.Users is required")
	}
	if opts.Argon2 == (Argon2Params{}) {
		opts.Argon2 = DefaultArgon2
	}
	if err := opts.Argon2.check(); err != nil {
		return nil, err
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&opts.MaxFailures, 5)
	def(&opts.IPBurst, 10)
	def(&opts.IPKeys, 100000)
	def(&opts.Hashing, runtime.GOMAXPROCS(0))
	if opts.LockFor <= 0 {
		opts.LockFor = 15 * time.Minute
	}
	if opts.IPInterval <= 0 {
		opts.IPInterval = 6 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	dummy, err := HashPassword(NewSecret(), opts.Argon2)
	if err != nil {
		return nil, err
	}
	return &Authenticator{
		opts:  opts,
		ip:    NewThrottle(opts.IPBurst, opts.IPInterval, opts.IPKeys),
		sem:   make(chan struct{}, opts.Hashing),
		dummy: dummy,
	}, nil
}

// Argon2 is the parameter set new password hashes are made with.
func (a *Authenticator) Argon2() Argon2Params { return a.opts.Argon2 }

// errLockedNow aborts the attempt reservation without storing anything.
var errLockedNow = errors.New("locked")

// Login checks name, password and (for a user with TOTP enrolled) code from
// source address ip. It returns the user as stored after the login; a user
// for whom NeedsTOTP is true has passed the password and must enrol a second
// factor before getting a full session. Errors: ErrRateLimited, ErrLocked,
// ErrBadLogin, or a storage error.
func (a *Authenticator) Login(ctx context.Context, name, password, code, ip string) (User, error) {
	now := a.opts.Now()
	if !a.ip.Allow(AddrKey(ip), now) {
		return User{}, ErrRateLimited
	}
	if CheckUserName(name) != nil || len(password) > MaxPasswordLen {
		a.verify(ctx, a.dummy, password)
		return User{}, ErrBadLogin
	}
	// Reserve the attempt.
	var u User
	err := a.opts.Users.UpdateUser(ctx, name, func(x *User) error {
		if now.Before(x.LockedUntil) {
			return errLockedNow
		}
		if x.Failed >= a.opts.MaxFailures {
			x.Failed = 0 // the lock has expired: a new window
		}
		x.Failed++
		if x.Failed >= a.opts.MaxFailures {
			x.LockedUntil = now.Add(a.opts.LockFor)
		}
		u = *x
		return nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		a.verify(ctx, a.dummy, password)
		return User{}, ErrBadLogin
	case errors.Is(err, errLockedNow):
		return User{}, ErrLocked
	case err != nil:
		return User{}, err
	}
	ok, stale, err := a.verify(ctx, u.PasswordHash, password)
	if err != nil {
		return User{}, err
	}
	if !ok {
		return User{}, ErrBadLogin
	}
	var step int64
	if len(u.TOTPSecret) > 0 {
		if step, ok = NewTOTP(u.TOTPSecret).Verify(code, now, u.TOTPLastStep); !ok {
			return User{}, ErrBadLogin
		}
	}
	var rehash string
	if stale {
		rehash, _ = HashPassword(password, a.opts.Argon2)
	}
	err = a.opts.Users.UpdateUser(ctx, name, func(x *User) error {
		if step != 0 {
			if step <= x.TOTPLastStep {
				return ErrBadLogin // the same code won a concurrent login
			}
			x.TOTPLastStep = step
		}
		if rehash != "" && x.PasswordHash == u.PasswordHash {
			x.PasswordHash = rehash
		}
		x.Failed, x.LockedUntil = 0, time.Time{}
		u = *x
		return nil
	})
	if err != nil {
		return User{}, err
	}
	return u, nil
}

// verify runs one argon2id check, at most opts.Hashing at a time.
func (a *Authenticator) verify(ctx context.Context, encoded, password string) (ok, stale bool, err error) {
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return false, false, ctx.Err()
	}
	defer func() { <-a.sem }()
	return VerifyPassword(encoded, password, a.opts.Argon2)
}

// EnrolTOTP stores secret as name's second factor if code is valid for it
// now. The code's step is recorded, so it cannot log in again.
func (a *Authenticator) EnrolTOTP(ctx context.Context, name string, secret []byte, code string) error {
	step, ok := NewTOTP(secret).Verify(code, a.opts.Now(), 0)
	if !ok {
		return UserError("the code does not match; check the clock of the device and try the next code")
	}
	return a.opts.Users.UpdateUser(ctx, name, func(u *User) error {
		u.TOTPSecret = secret
		u.TOTPLastStep = step
		u.UpdatedAt = a.opts.Now().UTC()
		return nil
	})
}

// NewUser validates and builds a user with a hashed password.
func NewUser(name string, role Role, password string, p Argon2Params, now time.Time) (User, error) {
	if err := CheckUserName(name); err != nil {
		return User{}, err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return User{}, UserError(err.Error())
	}
	if err := CheckPassword(password); err != nil {
		return User{}, err
	}
	h, err := HashPassword(password, p)
	if err != nil {
		return User{}, err
	}
	now = now.UTC()
	return User{Name: name, Role: role, PasswordHash: h, CreatedAt: now, UpdatedAt: now}, nil
}
