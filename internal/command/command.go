// Package command is the signed response-action command that the server
// sends and the agent carries out: its fields, its canonical byte encoding
// (the bytes the Ed25519 signature covers), signing, strict decoding and
// signature verification, and the result an agent sends back. The format is
// specified in docs/actions.md, so an agent could be written from that
// document alone.
//
// It imports only the standard library: package respond (server) signs with
// it, package agent/action (agent) verifies with it, and neither imports the
// other. The checks that need the agent's state (its identity, clock, nonce
// store and local policy) are agent/action's; this package checks only what
// the bytes alone can tell.
//
// # Concurrency
//
// Every function is safe for concurrent use; values are not shared.
package command

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Version is the command format version this package writes and accepts.
const Version = 1

// Limits. A command breaking any of them is malformed.
const (
	// MaxLifetime is the longest a command may be valid: ExpiresAt −
	// IssuedAt. Short, so a leaked command is soon useless.
	MaxLifetime = 10 * time.Minute
	// MaxBytes bounds the JSON of one signed command.
	MaxBytes  = 64 << 10
	maxArgs   = 32
	maxKey    = 64
	maxValue  = 4096
	maxIDLen  = 128
	maxWhoLen = 256
	nonceLen  = 16 // bytes: 128 bits
)

// Actions. The agent's local policy allows them by these names.
const (
	Kill       = "kill"       // args: pid, start_time, tree ("true"/"false")
	Quarantine = "quarantine" // args: path
	Restore    = "restore"    // args: quarantine_id
	Block      = "block"      // args: cidr, duration (Go duration, e.g. 1h)
	Unblock    = "unblock"    // args: cidr
	Isolate    = "isolate"    // args: allow (comma-separated CIDRs, optional)
	Release    = "release"    // no args
	Collect    = "collect"    // args: path
	Query      = "query"      // args: name (a catalogue query), path for file_hash
)

// Actions lists every action name, in documentation order.
var Actions = []string{Kill, Quarantine, Restore, Block, Unblock, Isolate, Release, Collect, Query}

// Queries is the live-query catalogue.
var Queries = []string{"processes", "connections", "users", "file_hash", "listening_ports"}

// Command is one response action for one agent. Every field is covered by
// the signature.
type Command struct {
	Version     int               `json:"version"`
	ID          string            `json:"id"`
	Nonce       string            `json:"nonce"` // 32 lower-case hex digits: 128 random bits
	Target      string            `json:"target"`
	Action      string            `json:"action"`
	Args        map[string]string `json:"args"`
	IssuedAt    time.Time         `json:"issued_at"`
	ExpiresAt   time.Time         `json:"expires_at"`
	RequestedBy string            `json:"requested_by"`
	ApprovedBy  string            `json:"approved_by"` // "" when no second approver was needed
}

// Signed is a command with the server's signature over Canonical.
type Signed struct {
	Command   Command `json:"command"`
	Signature []byte  `json:"signature"` // 64 bytes; base64 in JSON
}

// ErrMalformed is wrapped by every error about the shape of a command.
var ErrMalformed = errors.New("malformed command")

// ErrSignature: the signature does not verify with the server's key.
var ErrSignature = errors.New("command signature does not verify")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// domain separates command signatures from any other Ed25519 use of the
// key.
const domain = "vigil-command-v1\x00"

// Canonical is the byte string the signature covers (docs/actions.md):
// the domain tag, the version as a 4-byte big-endian integer, then ID, the
// 16 nonce bytes, Target, Action, the argument count (4 bytes) and each
// argument's key and value in ascending key order, IssuedAt and ExpiresAt
// as 8-byte big-endian Unix nanoseconds, RequestedBy and ApprovedBy. Every
// string is a 4-byte big-endian length and its bytes, so no two different
// commands share an encoding. c must be valid (Validate).
func (c *Command) Canonical() []byte {
	b := make([]byte, 0, 256)
	b = append(b, domain...)
	b = binary.BigEndian.AppendUint32(b, uint32(c.Version))
	str := func(s string) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	str(c.ID)
	n, _ := hex.DecodeString(c.Nonce)
	b = append(b, n...)
	str(c.Target)
	str(c.Action)
	keys := make([]string, 0, len(c.Args))
	for k := range c.Args {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.BigEndian.AppendUint32(b, uint32(len(keys)))
	for _, k := range keys {
		str(k)
		str(c.Args[k])
	}
	b = binary.BigEndian.AppendUint64(b, uint64(c.IssuedAt.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(c.ExpiresAt.UnixNano()))
	str(c.RequestedBy)
	str(c.ApprovedBy)
	return b
}

// Validate checks the command's shape: version, lengths, printable text,
// a known action, a 128-bit nonce and a lifetime within MaxLifetime.
func (c *Command) Validate() error {
	if c.Version != Version {
		return malformed("version %d, want %d", c.Version, Version)
	}
	if !token(c.ID, maxIDLen) {
		return malformed("id must be 1–%d letters, digits, '-', '_' or '.'", maxIDLen)
	}
	if !token(c.Target, maxIDLen) {
		return malformed("target must be 1–%d letters, digits, '-', '_' or '.'", maxIDLen)
	}
	if n, err := hex.DecodeString(c.Nonce); err != nil || len(n) != nonceLen || c.Nonce != strings.ToLower(c.Nonce) {
		return malformed("nonce must be %d lower-case hex digits", 2*nonceLen)
	}
	if !slices.Contains(Actions, c.Action) {
		return malformed("unknown action %q", clip(c.Action))
	}
	if len(c.Args) > maxArgs {
		return malformed("%d arguments, at most %d", len(c.Args), maxArgs)
	}
	for k, v := range c.Args {
		if !token(k, maxKey) {
			return malformed("argument name %q: want 1–%d letters, digits, '-', '_' or '.'", clip(k), maxKey)
		}
		if len(v) > maxValue || !printable(v) {
			return malformed("argument %s: at most %d printable characters", k, maxValue)
		}
	}
	if c.IssuedAt.IsZero() || c.ExpiresAt.IsZero() {
		return malformed("issued_at and expires_at are required")
	}
	if life := c.ExpiresAt.Sub(c.IssuedAt); life <= 0 || life > MaxLifetime {
		return malformed("lifetime %v: must be positive and at most %v", life, MaxLifetime)
	}
	if c.RequestedBy == "" || len(c.RequestedBy) > maxWhoLen || !printable(c.RequestedBy) {
		return malformed("requested_by must be 1–%d printable characters", maxWhoLen)
	}
	if len(c.ApprovedBy) > maxWhoLen || !printable(c.ApprovedBy) {
		return malformed("approved_by must be at most %d printable characters", maxWhoLen)
	}
	return nil
}

// Sign validates c and returns the signed command's JSON.
func Sign(key ed25519.PrivateKey, c Command) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("command: signing key is not an Ed25519 private key")
	}
	c.IssuedAt, c.ExpiresAt = c.IssuedAt.UTC(), c.ExpiresAt.UTC()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	s := Signed{Command: c, Signature: ed25519.Sign(key, c.Canonical())}
	return json.Marshal(s)
}

// Decode parses a signed command strictly (no unknown fields, nothing after
// the object, at most MaxBytes, valid UTF-8) and validates its shape. It
// does not verify the signature: call Verify.
func Decode(b []byte) (*Signed, error) {
	if len(b) > MaxBytes {
		return nil, malformed("%d bytes, at most %d", len(b), MaxBytes)
	}
	if !utf8.Valid(b) {
		return nil, malformed("not valid UTF-8")
	}
	var s Signed
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, malformed("%v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, malformed("data after the command object")
	}
	if err := s.Command.Validate(); err != nil {
		return nil, err
	}
	if len(s.Signature) != ed25519.SignatureSize {
		return nil, malformed("signature must be %d bytes", ed25519.SignatureSize)
	}
	return &s, nil
}

// Verify checks s's signature with the server's public key.
func Verify(key ed25519.PublicKey, s *Signed) error {
	if len(key) != ed25519.PublicKeySize {
		return errors.New("command: no Ed25519 public key to verify with")
	}
	if !ed25519.Verify(key, s.Command.Canonical(), s.Signature) {
		return ErrSignature
	}
	return nil
}

// Result statuses an agent reports.
const (
	Succeeded = "succeeded"
	Failed    = "failed"
	Refused   = "refused"
)

// Refusal reasons, in Result.Reason when Status is Refused.
const (
	ReasonMalformed = "malformed"
	ReasonSignature = "signature"
	ReasonTarget    = "target"
	ReasonExpired   = "expired"
	ReasonReplay    = "replay"
	ReasonPolicy    = "policy"
	ReasonNoKey     = "no_key"
)

// Result is what the agent reports for one command, by the command's ID.
// Output is the action's JSON result (docs/actions.md), at most
// MaxResultBytes with the rest of the result.
type Result struct {
	ID     string          `json:"id"`
	Status string          `json:"status"`
	Reason string          `json:"reason,omitempty"`
	Error  string          `json:"error,omitempty"`
	Output json.RawMessage `json:"output,omitempty"`
}

// MaxResultBytes bounds a result's JSON.
const MaxResultBytes = 4 << 20

func token(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
