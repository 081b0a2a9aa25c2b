package action

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/command"
)

type signer struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

func newSigner(t *testing.T) signer {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{priv, pub}
}

func (s signer) sign(t *testing.T, c command.Command) []byte {
	t.Helper()
	b, err := command.Sign(s.priv, c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newCommand(target, act string, now time.Time) command.Command {
	var n [16]byte
	rand.Read(n[:])
	return command.Command{Version: 1, ID: "cmd-" + hex.EncodeToString(n[:4]), Nonce: hex.EncodeToString(n[:]), Target: target,
		Action: act, Args: map[string]string{"name": "processes"}, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute),
		RequestedBy: "token:alice"}
}

// TestVerifierRefusals: each check refuses with its reason, and only a
// command passing every check uses up its nonce.
func TestVerifierRefusals(t *testing.T) {
	srv := newSigner(t)
	now := time.Now()
	dir := t.TempDir()
	ns, err := OpenNonceStore(filepath.Join(dir, "nonces"))
	if err != nil {
		t.Fatal(err)
	}
	clock := now
	v := &Verifier{Key: srv.pub, Self: "agent-a", Policy: Policy{Allow: DefaultAllow}, Nonces: ns, Now: func() time.Time { return clock }}

	good := newCommand("agent-a", command.Query, now)
	if _, err := v.Check("", srv.sign(t, good)); err != nil {
		t.Fatalf("good command refused: %v", err)
	}
	forger := newSigner(t)
	cases := []struct {
		name, reason string
		raw          func() []byte
		at           time.Time
	}{
		{"forged signature", command.ReasonSignature, func() []byte { return forger.sign(t, newCommand("agent-a", command.Query, now)) }, now},
		{"wrong target", command.ReasonTarget, func() []byte { return srv.sign(t, newCommand("agent-b", command.Query, now)) }, now},
		{"expired", command.ReasonExpired, func() []byte {
			return srv.sign(t, newCommand("agent-a", command.Query, now.Add(-5*time.Minute-DefaultSkew-time.Second)))
		}, now},
		{"from the future", command.ReasonExpired, func() []byte {
			return srv.sign(t, newCommand("agent-a", command.Query, now.Add(DefaultSkew+time.Minute)))
		}, now},
		{"replayed nonce", command.ReasonReplay, func() []byte { return srv.sign(t, good) }, now},
		{"replayed with a new id", command.ReasonReplay, func() []byte { g := good; g.ID = "other"; return srv.sign(t, g) }, now},
		{"policy", command.ReasonPolicy, func() []byte { return srv.sign(t, newCommand("agent-a", command.Isolate, now)) }, now},
		{"policy (block)", command.ReasonPolicy, func() []byte { return srv.sign(t, newCommand("agent-a", command.Block, now)) }, now},
		{"malformed", command.ReasonMalformed, func() []byte { return []byte(`{"command":{}}`) }, now},
	}
	for _, c := range cases {
		clock = c.at
		before := ns.Len()
		_, err := v.Check("", c.raw())
		var r *Refusal
		if !errors.As(err, &r) || r.Reason != c.reason {
			t.Errorf("%s: got %v, want refusal %s", c.name, err, c.reason)
		}
		if ns.Len() != before {
			t.Errorf("%s: a refused command used up a nonce", c.name)
		}
	}
	// A signature by the right key over a tampered command fails too.
	raw := srv.sign(t, newCommand("agent-a", command.Query, now))
	s, _ := command.Decode(raw)
	s.Command.Action = command.Kill
	if err := command.Verify(srv.pub, s); !errors.Is(err, command.ErrSignature) {
		t.Errorf("tampered: %v", err)
	}
	// No key: everything is refused.
	v2 := *v
	v2.Key = nil
	if _, err := v2.Check("", srv.sign(t, newCommand("agent-a", command.Query, now))); err == nil {
		t.Error("no key: accepted")
	}

	// The nonce store survives a restart: the replay is still refused.
	ns.Close()
	ns2, err := OpenNonceStore(filepath.Join(dir, "nonces"))
	if err != nil {
		t.Fatal(err)
	}
	defer ns2.Close()
	v.Nonces = ns2
	clock = now
	if _, err := v.Check("", srv.sign(t, good)); err == nil {
		t.Fatal("replay after restart accepted")
	}
}

// TestNoncePruning: nonces are forgotten after their commands expire and
// the file is compacted.
func TestNoncePruning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nonces")
	ns, err := OpenNonceStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	now := time.Unix(1_800_000_000, 0)
	for i := 0; i < 200; i++ {
		n := make([]byte, 16)
		rand.Read(n)
		if err := ns.Use(hex.EncodeToString(n), now.Add(time.Minute), now); err != nil {
			t.Fatal(err)
		}
	}
	if err := ns.Use("0123456789abcdef0123456789abcdef", now.Add(time.Hour), now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ns.Len() != 1 {
		t.Fatalf("after expiry %d nonces remembered, want 1", ns.Len())
	}
	if err := ns.Use("0123456789abcdef0123456789abcdef", now.Add(time.Hour), now.Add(3*time.Minute)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	ns2, err := OpenNonceStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns2.Close()
	if ns2.Len() != 1 {
		t.Errorf("reopened after compaction: %d nonces", ns2.Len())
	}
}
