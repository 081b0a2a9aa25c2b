package authz

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters. The zero value is not
// valid; use DefaultArgon2.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen int
	KeyLen  int
}

// DefaultArgon2 follows the OWASP Password Storage Cheat Sheet's argon2id
// setting (19 MiB, 2 passes, 1 lane): about 30 ms on one core, so a login
// costs little and an offline guess costs the same.
var DefaultArgon2 = Argon2Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds on parameters read back from a stored hash, so a corrupted or
// hostile row cannot make a login allocate gigabytes or spin for minutes.
const (
	maxArgonMemory  = 256 * 1024 // KiB
	maxArgonTime    = 16
	maxArgonThreads = 16
	minSaltLen      = 8
	maxSaltLen      = 64
	minKeyLen       = 16
	maxKeyLen       = 64
	maxEncodedHash  = 256
)

// Password length bounds, in bytes. The upper bound caps the work an
// attacker can ask argon2 for per attempt.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 1024
)

// ErrHashFormat: a stored password hash is not a well-formed argon2id PHC string.
var ErrHashFormat = errors.New("malformed password hash")

// CheckPassword is the password policy: 12 to 1024 bytes of valid UTF-8
// without control characters. Its errors are safe to show the user.
func CheckPassword(pw string) error {
	switch {
	case len(pw) < MinPasswordLen:
		return UserError(fmt.Sprintf("the password must have at least %d characters", MinPasswordLen))
	case len(pw) > MaxPasswordLen:
		return UserError(fmt.Sprintf("the password must have at most %d bytes", MaxPasswordLen))
	case !utf8.ValidString(pw):
		return UserError("the password is not valid UTF-8")
	}
	for _, r := range pw {
		if r < 0x20 || r == 0x7f {
			return UserError("the password must not contain control characters")
		}
	}
	return nil
}

// HashPassword returns the PHC string of pw under p:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt, base64 without padding>$<key, same>
func HashPassword(pw string, p Argon2Params) (string, error) {
	if err := p.check(); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(p.KeyLen))
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

func (p Argon2Params) check() error {
	switch {
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxArgonMemory:
		return fmt.Errorf("argon2id memory %d KiB out of range", p.Memory)
	case p.Time < 1 || p.Time > maxArgonTime:
		return fmt.Errorf("argon2id time %d out of range", p.Time)
	case p.Threads < 1 || p.Threads > maxArgonThreads:
		return fmt.Errorf("argon2id threads %d out of range", p.Threads)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("argon2id salt length %d out of range", p.SaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("argon2id key length %d out of range", p.KeyLen)
	}
	return nil
}

// parseHash splits a PHC argon2id string into its parameters, salt and key.
// It accepts exactly what HashPassword writes, with parameters in bounds.
func parseHash(encoded string) (p Argon2Params, salt, key []byte, err error) {
	if len(encoded) > maxEncodedHash {
		return p, nil, nil, ErrHashFormat
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, ErrHashFormat
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return p, nil, nil, ErrHashFormat
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(kv[i], name)
		if !ok || v == "" || (len(v) > 1 && v[0] == '0') {
			return p, nil, nil, ErrHashFormat
		}
		if vals[i], err = strconv.ParseUint(v, 10, 32); err != nil {
			return p, nil, nil, ErrHashFormat
		}
	}
	b64 := base64.RawStdEncoding.Strict()
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return p, nil, nil, ErrHashFormat
	}
	if key, err = b64.DecodeString(parts[5]); err != nil {
		return p, nil, nil, ErrHashFormat
	}
	if vals[2] > maxArgonThreads {
		return p, nil, nil, ErrHashFormat
	}
	p = Argon2Params{Memory: uint32(vals[0]), Time: uint32(vals[1]), Threads: uint8(vals[2]), SaltLen: len(salt), KeyLen: len(key)}
	if p.check() != nil {
		return Argon2Params{}, nil, nil, ErrHashFormat
	}
	return p, salt, key, nil
}

// VerifyPassword reports whether pw matches the stored PHC string, in time
// independent of where the keys differ. stale reports that the hash was made
// with parameters other than want, so the caller should store a new one.
func VerifyPassword(encoded, pw string, want Argon2Params) (ok, stale bool, err error) {
	p, salt, key, err := parseHash(encoded)
	if err != nil {
		return false, false, err
	}
	if len(pw) > MaxPasswordLen {
		return false, false, nil
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	ok = subtle.ConstantTimeCompare(got, key) == 1
	return ok, p != want, nil
}

// UserError is an error whose text is safe to show the user who caused it
// (console or CLI). Other errors are logged and shown as a generic failure.
type UserError string

func (e UserError) Error() string { return string(e) }
