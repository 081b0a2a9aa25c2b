package authz

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base32"
	"encoding/binary"
	"hash"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// TOTP is an RFC 6238 time-based one-time password generator. Vigil's own
// accounts use the authenticator-app defaults (NewTOTP: SHA-1, 6 digits, 30
// s), which every app supports; the other hashes and lengths exist for the
// RFC's test vectors and imported secrets.
type TOTP struct {
	Secret []byte
	Digits int              // 6 to 10
	Period time.Duration    // step length; 30 s
	Hash   func() hash.Hash // sha1.New, sha256.New or sha512.New
}

// totpSecretLen is 160 bits, the length RFC 4226 recommends for HMAC-SHA-1.
const totpSecretLen = 20

// NewTOTPSecret returns a random secret for NewTOTP.
func NewTOTPSecret() []byte {
	b := make([]byte, totpSecretLen)
	rand.Read(b)
	return b
}

// NewTOTP is the generator Vigil enrols users with.
func NewTOTP(secret []byte) TOTP {
	return TOTP{Secret: secret, Digits: 6, Period: 30 * time.Second, Hash: sha1.New}
}

// Step is the RFC 6238 time step T = floor(unix time / period).
func (t TOTP) Step(at time.Time) int64 {
	return floorDiv(at.Unix(), int64(t.Period/time.Second))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// CodeAt is the one-time password for time step step (RFC 4226 HOTP with the
// step as the counter, dynamic truncation, Digits decimal digits).
func (t TOTP) CodeAt(step int64) string {
	m := hmac.New(t.Hash, t.Secret)
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], uint64(step))
	m.Write(c[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint64(1)
	for range t.Digits {
		mod *= 10
	}
	v := uint64(bin) % mod
	out := make([]byte, t.Digits)
	for i := t.Digits - 1; i >= 0; i-- {
		out[i] = byte('0' + v%10)
		v /= 10
	}
	return string(out)
}

// Code is the one-time password at time at.
func (t TOTP) Code(at time.Time) string { return t.CodeAt(t.Step(at)) }

// totpSkew is how many steps either side of now a code is accepted for
// (clock drift and typing time): ±30 s with the default period.
const totpSkew = 1

// Verify checks code against the steps around at and returns the matching
// step. A step at or below after is refused, so a code (or an earlier one)
// cannot be replayed once used: callers store the returned step and pass it
// as after next time. Every candidate is compared in constant time.
func (t TOTP) Verify(code string, at time.Time, after int64) (int64, bool) {
	code = strings.TrimSpace(code)
	if len(code) != t.Digits {
		return 0, false
	}
	now := t.Step(at)
	var found int64
	ok := false
	for s := now - totpSkew; s <= now+totpSkew; s++ {
		if hmac.Equal([]byte(t.CodeAt(s)), []byte(code)) && s > after && !ok {
			found, ok = s, true
		}
	}
	return found, ok
}

// URI is the otpauth:// key URI authenticator apps read (as a QR code or
// typed): otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30.
func (t TOTP) URI(issuer, account string) string {
	alg := "SHA1"
	switch t.Hash().Size() {
	case sha256.Size:
		alg = "SHA256"
	case sha512.Size:
		alg = "SHA512"
	}
	v := url.Values{}
	v.Set("secret", EncodeTOTPSecret(t.Secret))
	v.Set("issuer", issuer)
	v.Set("algorithm", alg)
	v.Set("digits", strconv.Itoa(t.Digits))
	v.Set("period", strconv.Itoa(int(t.Period/time.Second)))
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + issuer + ":" + account, RawQuery: v.Encode()}
	return u.String()
}

// EncodeTOTPSecret is the base32 (RFC 4648, no padding) form users type into
// an authenticator app.
func EncodeTOTPSecret(secret []byte) string {
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
}
