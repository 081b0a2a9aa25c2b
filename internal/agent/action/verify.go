package action

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-edr/vigil/internal/command"
)

// DefaultSkew is how far the agent's clock may be from the server's.
const DefaultSkew = 2 * time.Minute

// Refusal is a command the agent will not run, with the reason code sent
// to the server (command.Reason*).
type Refusal struct {
	Reason string
	Msg    string
}

func (r *Refusal) Error() string { return "command refused (" + r.Reason + "): " + r.Msg }

func refuse(reason, format string, args ...any) *Refusal {
	return &Refusal{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// Policy is which actions this host allows. The undoing actions (release,
// unblock) are allowed whenever isolate or block is, and restore whenever
// quarantine is.
type Policy struct {
	Allow []string // command action names
}

// DefaultAllow is the policy without configuration: the actions that touch
// one process or file, or only read. Isolation and blocking cut network
// access and must be enabled on the host (docs/actions.md).
var DefaultAllow = []string{command.Kill, command.Quarantine, command.Collect, command.Query}

// Allows reports whether the policy allows action a.
func (p Policy) Allows(a string) bool {
	switch a {
	case command.Restore:
		a = command.Quarantine
	case command.Release:
		a = command.Isolate
	case command.Unblock:
		a = command.Block
	}
	return slices.Contains(p.Allow, a)
}

// Verifier decides whether a delivered command may run.
type Verifier struct {
	Key    ed25519.PublicKey // the server's action key, learnt at enrolment
	Self   string            // this agent's id: its certificate's subject
	Policy Policy
	Nonces *NonceStore
	Skew   time.Duration    // default DefaultSkew
	Now    func() time.Time // default time.Now
}

// Check decodes and verifies raw (a signed command's JSON) delivered under
// id (the server's action id; "" skips that comparison) and records its
// nonce. It returns the command, or a *Refusal naming why it must not run.
// The checks run in the order of docs/actions.md; the nonce is recorded
// only for a command that passed every other check, so a refused command
// cannot use up a nonce.
func (v *Verifier) Check(id string, raw []byte) (*command.Command, error) {
	if len(v.Key) != ed25519.PublicKeySize {
		return nil, refuse(command.ReasonNoKey, "this agent has no server action key (enrolled before actions existed: renew or re-enrol)")
	}
	s, err := command.Decode(raw)
	if err != nil {
		return nil, refuse(command.ReasonMalformed, "%v", err)
	}
	if err := command.Verify(v.Key, s); err != nil {
		return nil, refuse(command.ReasonSignature, "the signature does not verify with the server's action key")
	}
	c := &s.Command
	if id != "" && c.ID != id {
		return nil, refuse(command.ReasonMalformed, "delivered as action %s but the signed command is %s", id, c.ID)
	}
	if c.Target != v.Self {
		return nil, refuse(command.ReasonTarget, "command is for agent %s, this is %s", c.Target, v.Self)
	}
	now, skew := v.now(), v.skew()
	if now.After(c.ExpiresAt.Add(skew)) {
		return nil, refuse(command.ReasonExpired, "expired at %s (now %s)", c.ExpiresAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if c.IssuedAt.After(now.Add(skew)) {
		return nil, refuse(command.ReasonExpired, "issued in the future (%s); clocks differ by more than %v", c.IssuedAt.UTC().Format(time.RFC3339), skew)
	}
	if !v.Policy.Allows(c.Action) {
		return nil, refuse(command.ReasonPolicy, "this host's policy does not allow %s", c.Action)
	}
	if err := v.Nonces.Use(c.Nonce, c.ExpiresAt.Add(skew), now); err != nil {
		if errors.Is(err, ErrReplay) {
			return nil, refuse(command.ReasonReplay, "nonce %s was already used", c.Nonce)
		}
		return nil, err
	}
	return c, nil
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) skew() time.Duration {
	if v.Skew > 0 {
		return v.Skew
	}
	return DefaultSkew
}

// ErrReplay: the nonce was used before.
var ErrReplay = errors.New("nonce already used")

// NonceStore remembers every nonce used until the command it came with can
// no longer pass the expiry check. It is a file of lines "NONCE UNIXSECONDS"
// (the time the entry may be forgotten), appended and fsynced on each use,
// and rewritten without the forgotten entries when they make up more than
// half of it.
type NonceStore struct {
	path string

	mu     sync.Mutex
	seen   map[string]time.Time
	f      *os.File
	lines  int
	closed bool
}

// OpenNonceStore opens (creating) the store at path (mode 0600).
func OpenNonceStore(path string) (*NonceStore, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("nonce store: %w", err)
	}
	s := &NonceStore{path: path, seen: map[string]time.Time{}}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("nonce store: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		nonce, exp, ok := strings.Cut(sc.Text(), " ")
		sec, err := strconv.ParseInt(exp, 10, 64)
		if !ok || err != nil || len(nonce) != 32 {
			// A torn last line from a crash: the append was not
			// acknowledged, so its command did not run.
			continue
		}
		s.seen[nonce] = time.Unix(sec, 0)
		s.lines++
	}
	if s.f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
		return nil, fmt.Errorf("nonce store: %w", err)
	}
	return s, nil
}

// Use records nonce, to be kept until forget, or returns ErrReplay if it
// was used before. It returns after the record is on disk.
func (s *NonceStore) Use(nonce string, forget, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("nonce store closed")
	}
	if _, ok := s.seen[nonce]; ok {
		return ErrReplay
	}
	s.pruneLocked(now)
	// Rounded up: the entry outlives the command's validity.
	line := nonce + " " + strconv.FormatInt(forget.Unix()+1, 10) + "\n"
	if _, err := s.f.WriteString(line); err != nil {
		return fmt.Errorf("nonce store: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("nonce store: %w", err)
	}
	s.seen[nonce] = time.Unix(forget.Unix()+1, 0)
	s.lines++
	return nil
}

// Len is the number of nonces remembered.
func (s *NonceStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

func (s *NonceStore) pruneLocked(now time.Time) {
	for n, t := range s.seen {
		if now.After(t) {
			delete(s.seen, n)
		}
	}
	if s.lines < 64 || len(s.seen) > s.lines/2 {
		return
	}
	var b strings.Builder
	for n, t := range s.seen {
		fmt.Fprintf(&b, "%s %d\n", n, t.Unix())
	}
	tmp := s.path + ".tmp"
	if err := writeSynced(tmp, []byte(b.String()), 0o600); err != nil {
		return // keep appending to the old file
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	s.f.Close()
	s.f, s.lines = f, len(s.seen)
}

// Close closes the file.
func (s *NonceStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return s.f.Close()
}

// writeSynced writes data to path with mode and fsyncs it.
func writeSynced(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
