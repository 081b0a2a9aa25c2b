package sqlite

import (
	"testing"

	"github.com/vigil-edr/vigil/internal/event"
)

// TestHasTokensPrefilter: the substring pass before tokenizing never drops
// an event the tokenizer would match, whatever the case or script.
func TestHasTokensPrefilter(t *testing.T) {
	for _, tc := range []struct {
		value, query string
		want         bool
	}{
		{"Run WHOAMI now", "whoami", true},
		{"run who ami", "whoami", false},
		{"whoamix", "whoami", false},   // a substring, not a token
		{"x-whoami-y", "whoami", true}, // punctuation splits tokens
		{"\u212Aey", "key", true},      // Kelvin sign lower-cases to k
		{"\u0130d", "id", true},        // İ lower-cases to i
		{"ÉTÉ été", "été", true},       // a non-ASCII token
		{"job 12", "job 12", true},
		{"job 13", "job 12", false},
		{"@JOB`12", "job", true},
		{"", "job", false},
	} {
		var z tokenizer
		toks := queryTokens(tc.query)
		e := &blockEvent{fields: []event.Field{{Name: "A", Value: "unrelated"}, {Name: "B", Value: tc.value}}}
		if got := hasTokens(&z, e, toks, make([]bool, len(toks))); got != tc.want {
			t.Errorf("value %q, query %q: %v, want %v", tc.value, tc.query, got, tc.want)
		}
	}
}

// FuzzHasTokensPrefilter: the prefilter agrees with plain tokenizing.
func FuzzHasTokensPrefilter(f *testing.F) {
	f.Add("Run WHOAMI now", "whoami")
	f.Add("\u212Aey", "key")
	f.Fuzz(func(t *testing.T, value, query string) {
		toks := queryTokens(query)
		if len(toks) == 0 {
			return
		}
		var z tokenizer
		e := &blockEvent{fields: []event.Field{{Name: "V", Value: value}}}
		got := hasTokens(&z, e, toks, make([]bool, len(toks)))
		have := queryTokens(value)
		want := true
		for _, tok := range toks {
			found := false
			for _, h := range have {
				found = found || h == tok
			}
			want = want && found
		}
		if got != want {
			t.Fatalf("value %q query %q: %v, want %v", value, query, got, want)
		}
	})
}
