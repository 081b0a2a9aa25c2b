package authz

import (
	"errors"
	"strings"
	"testing"
)

// fast keeps tests quick; production uses DefaultArgon2.
var fast = Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestPasswordHashVerify(t *testing.T) {
	h, err := HashPassword("correct horse battery", fast)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash %q", h)
	}
	h2, _ := HashPassword("correct horse battery", fast)
	if h == h2 {
		t.Error("two hashes of one password are equal: no salt")
	}
	for _, tc := range []struct {
		pw        string
		want      Argon2Params
		ok, stale bool
	}{
		{"correct horse battery", fast, true, false},
		{"correct horse batterY", fast, false, false},
		{"", fast, false, false},
		{"correct horse battery", DefaultArgon2, true, true},
		{strings.Repeat("x", MaxPasswordLen+1), fast, false, false},
	} {
		ok, stale, err := VerifyPassword(h, tc.pw, tc.want)
		if err != nil || ok != tc.ok || stale != tc.stale {
			t.Errorf("VerifyPassword(%.20q) = %v, %v, %v; want %v, %v", tc.pw, ok, stale, err, tc.ok, tc.stale)
		}
	}
	// A known vector from another argon2id implementation (the reference
	// CLI: echo -n password | argon2 somesalt -id -t 2 -m 16 -p 4 -l 32 -e).
	known := "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo"
	if ok, _, err := VerifyPassword(known, "password", DefaultArgon2); err != nil || !ok {
		t.Errorf("reference vector: %v, %v", ok, err)
	}
}

func TestParseHashRejects(t *testing.T) {
	good := "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObGRdescudvJCs"
	if _, _, _, err := parseHash(good); err != nil {
		t.Fatalf("good hash: %v", err)
	}
	for _, bad := range []string{
		"", "$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObGRdescudvJCs",
		"$argon2id$v=16$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObGRdescudvJCs",
		"$argon2id$v=19$m=9999999,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObGRdescudvJCs",
		"$argon2id$v=19$m=64,t=99,p=1$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObGRdescudvJCs",
		"$argon2id$v=19$m=64,t=1,p=0$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObGRdescudvJCs",
		"$argon2id$v=19$m=64,t=1,p=300$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObGRdescudvJCs",
		"$argon2id$v=19$m=064,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObGRdescudvJCs",
		"$argon2id$v=19$t=1,m=64,p=1$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObGRdescudvJCs",
		"$argon2id$v=19$m=64,t=1,p=1$c29t$RdescudvJCsgt3ub+b+dWRWJTmaaJObGRdescudvJCs",
		"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$Rdes",
		"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA==$RdescudvJCsgt3ub+b+dWRWJTmaaJObGRdescudvJCs",
		"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObGRdescudvJCs$",
		good + strings.Repeat("A", 300),
	} {
		if _, _, _, err := parseHash(bad); !errors.Is(err, ErrHashFormat) {
			t.Errorf("parseHash(%q) = %v, want ErrHashFormat", bad, err)
		}
	}
}

// FuzzParseHash: any stored string either parses to parameters within the
// bounds or fails with ErrHashFormat; a parsed hash round-trips.
func FuzzParseHash(f *testing.F) {
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObGRdescudvJCs")
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=,t=,p=$$")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := parseHash(s)
		if err != nil {
			if !errors.Is(err, ErrHashFormat) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if p.check() != nil || len(salt) != p.SaltLen || len(key) != p.KeyLen {
			t.Fatalf("%q parsed to out-of-bounds %+v", s, p)
		}
	})
}

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		pw string
		ok bool
	}{
		{"twelve chars", true}, {"short", false}, {strings.Repeat("é", 600), false},
		{"valid but \x00 nul", false}, {"tab\tinside here", false}, {"\xff\xfe invalid utf8", false},
		{"пароль-длинный", true},
	} {
		err := CheckPassword(tc.pw)
		var ue UserError
		if (err == nil) != tc.ok || (err != nil && !errors.As(err, &ue)) {
			t.Errorf("CheckPassword(%q) = %v", tc.pw, err)
		}
	}
}
