package command

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// testKey is a fixed key so the golden signature is stable.
var testKey = ed25519.NewKeyFromSeed([]byte("vigil-command-test-seed-32-bytes"))

func sample() Command {
	at := time.Date(2026, 12, 2, 14, 0, 0, 123456789, time.UTC)
	return Command{Version: 1, ID: "2b7f0c1e-9a1d-4c3e-8f00-0000000000a1", Nonce: "00112233445566778899aabbccddeeff",
		Target: "agent-0001", Action: Kill, Args: map[string]string{"pid": "4242", "start_time": "987654", "tree": "false"},
		IssuedAt: at, ExpiresAt: at.Add(5 * time.Minute), RequestedBy: "token:alice", ApprovedBy: "token:bob"}
}

// TestCanonicalGolden pins the signed byte layout of docs/actions.md and
// the signed JSON: a change to either breaks every deployed agent.
func TestCanonicalGolden(t *testing.T) {
	c := sample()
	signed, err := Sign(testKey, c)
	if err != nil {
		t.Fatal(err)
	}
	got := hex.Dump(c.Canonical()) + "\n" + string(signed) + "\n"
	path := filepath.Join("testdata", "kill.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("canonical encoding or signed JSON changed:\n%s\nwant\n%s", got, want)
	}
}

func TestSignDecodeVerify(t *testing.T) {
	b, err := Sign(testKey, sample())
	if err != nil {
		t.Fatal(err)
	}
	s, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(testKey.Public().(ed25519.PublicKey), s); err != nil {
		t.Fatal(err)
	}
	other := ed25519.NewKeyFromSeed([]byte("another-key-seed-of-32-bytes-len"))
	if err := Verify(other.Public().(ed25519.PublicKey), s); !errors.Is(err, ErrSignature) {
		t.Errorf("other key: %v", err)
	}
	// Every signed field is covered: changing any one breaks the signature.
	pub := testKey.Public().(ed25519.PublicKey)
	for name, mut := range map[string]func(c *Command){
		"id":           func(c *Command) { c.ID += "x" },
		"nonce":        func(c *Command) { c.Nonce = "ff" + c.Nonce[2:] },
		"target":       func(c *Command) { c.Target = "agent-0002" },
		"action":       func(c *Command) { c.Action = Isolate },
		"arg value":    func(c *Command) { c.Args["pid"] = "1" },
		"arg added":    func(c *Command) { c.Args["x"] = "" },
		"arg renamed":  func(c *Command) { c.Args["pi"] = c.Args["pid"]; delete(c.Args, "pid") },
		"issued":       func(c *Command) { c.IssuedAt = c.IssuedAt.Add(time.Nanosecond) },
		"expires":      func(c *Command) { c.ExpiresAt = c.ExpiresAt.Add(time.Second) },
		"requested_by": func(c *Command) { c.RequestedBy = "token:mallory" },
		"approved_by":  func(c *Command) { c.ApprovedBy = "" },
	} {
		s2, _ := Decode(b)
		mut(&s2.Command)
		if err := Verify(pub, s2); !errors.Is(err, ErrSignature) {
			t.Errorf("%s changed: %v", name, err)
		}
	}
}

func TestMalformed(t *testing.T) {
	for name, mut := range map[string]func(c *Command){
		"version":      func(c *Command) { c.Version = 2 },
		"empty id":     func(c *Command) { c.ID = "" },
		"id slash":     func(c *Command) { c.ID = "../x" },
		"short nonce":  func(c *Command) { c.Nonce = "0011" },
		"upper nonce":  func(c *Command) { c.Nonce = strings.ToUpper(c.Nonce) },
		"action":       func(c *Command) { c.Action = "shell" },
		"arg control":  func(c *Command) { c.Args["pid"] = "1\n2" },
		"arg key":      func(c *Command) { c.Args["a b"] = "1" },
		"too long":     func(c *Command) { c.ExpiresAt = c.IssuedAt.Add(MaxLifetime + time.Nanosecond) },
		"negative":     func(c *Command) { c.ExpiresAt = c.IssuedAt },
		"no requester": func(c *Command) { c.RequestedBy = "" },
	} {
		c := sample()
		mut(&c)
		if _, err := Sign(testKey, c); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, in := range map[string]string{
		"unknown field": `{"command":{},"signature":"","x":1}`,
		"trailing":      `{"command":{},"signature":""} {}`,
		"not utf8":      "{\"command\":\xff}",
		"huge":          `{"x":"` + strings.Repeat("a", MaxBytes) + `"}`,
	} {
		if _, err := Decode([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	b, _ := Sign(testKey, sample())
	bad := strings.Replace(string(b), `"signature":"`, `"signature":"AAAA`, 1)
	if _, err := Decode([]byte(bad)); !errors.Is(err, ErrMalformed) {
		t.Errorf("64-byte signature check: %v", err)
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts re-encodes to a
// command that decodes to the same canonical bytes (what was verified is
// what is executed).
func FuzzDecode(f *testing.F) {
	b, _ := Sign(testKey, sample())
	f.Add(b)
	f.Add([]byte(`{"command":{"version":1},"signature":null}`))
	pub := testKey.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := Decode(in)
		if err != nil {
			return
		}
		_ = Verify(pub, s)
		re, err := Sign(testKey, s.Command)
		if err != nil {
			t.Fatalf("accepted command does not sign: %v", err)
		}
		s2, err := Decode(re)
		if err != nil {
			t.Fatalf("re-signed command does not decode: %v", err)
		}
		if string(s2.Command.Canonical()) != string(s.Command.Canonical()) {
			t.Fatal("canonical bytes changed through a JSON round trip")
		}
	})
}
