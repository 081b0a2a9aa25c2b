package authz_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
)

var fast = authz.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func openDB(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func setup(t *testing.T, opts authz.LoginOptions) (*authz.Authenticator, *sqlite.DB, *clock) {
	t.Helper()
	db := openDB(t)
	c := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	opts.Users, opts.Argon2, opts.Now = db, fast, c.now
	a, err := authz.NewAuthenticator(opts)
	if err != nil {
		t.Fatal(err)
	}
	return a, db, c
}

func addUser(t *testing.T, db *sqlite.DB, name string, role authz.Role, pw string, secret []byte) {
	t.Helper()
	u, err := authz.NewUser(name, role, pw, fast, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	u.TOTPSecret = secret
	if err := db.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
}

func TestLogin(t *testing.T) {
	a, db, c := setup(t, authz.LoginOptions{})
	ctx := context.Background()
	secret := authz.NewTOTPSecret()
	addUser(t, db, "alice", authz.RoleAdmin, "alice password 1", secret)
	addUser(t, db, "bob", authz.RoleViewer, "bob password 12", nil)
	addUser(t, db, "carol", authz.RoleAdmin, "carol password 1", nil)
	code := func() string { return authz.NewTOTP(secret).Code(c.now()) }

	for _, tc := range []struct {
		name, user, pw string
		code           func() string
		want           error
		needsTOTP      bool
	}{
		{"wrong password", "alice", "alice password 2", code, authz.ErrBadLogin, false},
		{"no code", "alice", "alice password 1", func() string { return "" }, authz.ErrBadLogin, false},
		{"wrong code", "alice", "alice password 1", func() string { return "000000" }, authz.ErrBadLogin, false},
		{"unknown user", "mallory", "alice password 1", code, authz.ErrBadLogin, false},
		{"bad name", "Alice<script>", "alice password 1", code, authz.ErrBadLogin, false},
		{"ok", "alice", "alice password 1", code, nil, false},
		{"code replayed", "alice", "alice password 1", code, authz.ErrBadLogin, false},
		{"no totp needed for a viewer", "bob", "bob password 12", func() string { return "" }, nil, false},
		{"admin without totp must enrol", "carol", "carol password 1", func() string { return "" }, nil, true},
	} {
		u, err := a.Login(ctx, tc.user, tc.pw, tc.code(), "192.0.2.1")
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
			continue
		}
		if err == nil && (u.Name != tc.user || u.NeedsTOTP() != tc.needsTOTP || u.Failed != 0) {
			t.Errorf("%s: user %+v", tc.name, u)
		}
	}
	// Enrolment: a wrong code is refused, the right one stored and spent.
	carolSecret := authz.NewTOTPSecret()
	if err := a.EnrolTOTP(ctx, "carol", carolSecret, "123456"); err == nil {
		t.Error("EnrolTOTP accepted a wrong code")
	}
	enrolCode := authz.NewTOTP(carolSecret).Code(c.now())
	if err := a.EnrolTOTP(ctx, "carol", carolSecret, enrolCode); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Login(ctx, "carol", "carol password 1", enrolCode, "192.0.2.1"); !errors.Is(err, authz.ErrBadLogin) {
		t.Errorf("the enrolment code logged in again: %v", err)
	}
	c.add(30 * time.Second)
	if u, err := a.Login(ctx, "carol", "carol password 1", authz.NewTOTP(carolSecret).Code(c.now()), "192.0.2.1"); err != nil || u.NeedsTOTP() {
		t.Errorf("carol after enrolment: %+v, %v", u, err)
	}
}

// TestLoginFloodAccount sends a flood of wrong passwords for one account
// from many addresses at once: at most MaxFailures of them are checked, the
// rest are refused as locked, and while locked even the right password
// fails. After the lock expires the right password works.
func TestLoginFloodAccount(t *testing.T) {
	a, db, c := setup(t, authz.LoginOptions{MaxFailures: 5, LockFor: time.Minute, IPBurst: 1000})
	addUser(t, db, "alice", authz.RoleAnalyst, "alice password 1", nil)
	var bad, locked, other atomic.Int64
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				_, err := a.Login(context.Background(), "alice", fmt.Sprintf("guess %d %d", g, i), "", fmt.Sprintf("198.51.100.%d", g))
				switch {
				case errors.Is(err, authz.ErrBadLogin):
					bad.Add(1)
				case errors.Is(err, authz.ErrLocked):
					locked.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 5 || locked.Load() != 320-5 || other.Load() != 0 {
		t.Fatalf("flood: %d checked, %d locked, %d other; want 5, 315, 0", bad.Load(), locked.Load(), other.Load())
	}
	if _, err := a.Login(context.Background(), "alice", "alice password 1", "", "203.0.113.1"); !errors.Is(err, authz.ErrLocked) {
		t.Fatalf("right password during the lock: %v", err)
	}
	c.add(time.Minute)
	u, err := a.Login(context.Background(), "alice", "alice password 1", "", "203.0.113.1")
	if err != nil || u.Failed != 0 || !u.LockedUntil.IsZero() {
		t.Fatalf("after the lock: %+v, %v", u, err)
	}
}

// TestLoginFloodAddress: one address gets IPBurst attempts, whichever names
// it tries, then one per IPInterval.
func TestLoginFloodAddress(t *testing.T) {
	a, db, c := setup(t, authz.LoginOptions{IPBurst: 10, IPInterval: 6 * time.Second, MaxFailures: 1000})
	addUser(t, db, "alice", authz.RoleAnalyst, "alice password 1", nil)
	var limited, tried atomic.Int64
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				_, err := a.Login(context.Background(), fmt.Sprintf("user%d", (g+i)%3), "wrong password!", "", "2001:db8::1")
				if errors.Is(err, authz.ErrRateLimited) {
					limited.Add(1)
				} else {
					tried.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if tried.Load() != 10 || limited.Load() != 190 {
		t.Fatalf("%d tried, %d limited; want 10, 190", tried.Load(), limited.Load())
	}
	// The same /64 shares the bucket; another address does not.
	if _, err := a.Login(context.Background(), "alice", "alice password 1", "", "2001:db8::2"); !errors.Is(err, authz.ErrRateLimited) {
		t.Errorf("same /64: %v", err)
	}
	if _, err := a.Login(context.Background(), "alice", "alice password 1", "", "192.0.2.7"); err != nil {
		t.Errorf("other address: %v", err)
	}
	c.add(6 * time.Second)
	if _, err := a.Login(context.Background(), "alice", "alice password 1", "", "2001:db8::1"); err != nil {
		t.Errorf("after one interval: %v", err)
	}
}

func TestThrottleBoundedKeys(t *testing.T) {
	th := authz.NewThrottle(1, time.Minute, 2)
	t0 := time.Unix(1000, 0)
	if !th.Allow("a", t0) || !th.Allow("b", t0) {
		t.Fatal("first use refused")
	}
	if th.Allow("c", t0) {
		t.Error("a third key was tracked while the table was full of active keys")
	}
	if !th.Allow("c", t0.Add(time.Minute)) {
		t.Error("idle keys were not evicted")
	}
}
