package authz

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestTOTPRFC6238 checks the test vectors of RFC 6238 Appendix B (8 digits,
// 30 s steps, the seed repeated to the hash's block-size key length).
func TestTOTPRFC6238(t *testing.T) {
	seeds := map[string][]byte{
		"SHA1":   []byte("12345678901234567890"),
		"SHA256": []byte("12345678901234567890123456789012"),
		"SHA512": []byte("1234567890123456789012345678901234567890123456789012345678901234"),
	}
	hashes := map[string]func() hash.Hash{"SHA1": sha1.New, "SHA256": sha256.New, "SHA512": sha512.New}
	for _, tc := range []struct {
		unix int64
		alg  string
		code string
	}{
		{59, "SHA1", "94287082"}, {59, "SHA256", "46119246"}, {59, "SHA512", "90693936"},
		{1111111109, "SHA1", "07081804"}, {1111111109, "SHA256", "68084774"}, {1111111109, "SHA512", "25091201"},
		{1111111111, "SHA1", "14050471"}, {1111111111, "SHA256", "67062674"}, {1111111111, "SHA512", "99943326"},
		{1234567890, "SHA1", "89005924"}, {1234567890, "SHA256", "91819424"}, {1234567890, "SHA512", "93441116"},
		{2000000000, "SHA1", "69279037"}, {2000000000, "SHA256", "90698825"}, {2000000000, "SHA512", "38618901"},
		{20000000000, "SHA1", "65353130"}, {20000000000, "SHA256", "77737706"}, {20000000000, "SHA512", "47863826"},
	} {
		g := TOTP{Secret: seeds[tc.alg], Digits: 8, Period: 30 * time.Second, Hash: hashes[tc.alg]}
		at := time.Unix(tc.unix, 0)
		if got := g.Code(at); got != tc.code {
			t.Errorf("%s at %d: %s, want %s", tc.alg, tc.unix, got, tc.code)
		}
		if _, ok := g.Verify(tc.code, at, 0); !ok {
			t.Errorf("%s at %d: Verify refused its own code", tc.alg, tc.unix)
		}
	}
}

func TestTOTPVerifyWindowAndReplay(t *testing.T) {
	g := NewTOTP([]byte("12345678901234567890"))
	at := time.Unix(1111111111, 0)
	step := g.Step(at)
	for _, tc := range []struct {
		name  string
		code  string
		after int64
		ok    bool
		step  int64
	}{
		{"now", g.CodeAt(step), 0, true, step},
		{"previous step", g.CodeAt(step - 1), 0, true, step - 1},
		{"next step", g.CodeAt(step + 1), 0, true, step + 1},
		{"two steps old", g.CodeAt(step - 2), 0, false, 0},
		{"two steps ahead", g.CodeAt(step + 2), 0, false, 0},
		{"replayed", g.CodeAt(step), step, false, 0},
		{"older than the last used", g.CodeAt(step - 1), step, false, 0},
		{"newer than the last used", g.CodeAt(step + 1), step, true, step + 1},
		{"spaces around", " " + g.CodeAt(step) + " ", 0, true, step},
		{"too short", g.CodeAt(step)[:5], 0, false, 0},
		{"empty", "", 0, false, 0},
		{"letters", "abcdef", 0, false, 0},
	} {
		got, ok := g.Verify(tc.code, at, tc.after)
		if ok != tc.ok || got != tc.step {
			t.Errorf("%s: Verify = %d, %v; want %d, %v", tc.name, got, ok, tc.step, tc.ok)
		}
	}
	if g.Step(time.Unix(-1, 0)) != -1 {
		t.Errorf("steps before 1970 must round down")
	}
}

func TestTOTPURI(t *testing.T) {
	secret := []byte("12345678901234567890")
	u, err := url.Parse(NewTOTP(secret).URI("Vigil", "alice"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Vigil:alice" ||
		q.Get("secret") != "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" || q.Get("issuer") != "Vigil" ||
		q.Get("algorithm") != "SHA1" || q.Get("digits") != "6" || q.Get("period") != "30" {
		t.Errorf("URI = %s", u)
	}
	if s := EncodeTOTPSecret(NewTOTPSecret()); len(s) != 32 || strings.Contains(s, "=") {
		t.Errorf("secret %q: want 32 base32 characters without padding", s)
	}
}
