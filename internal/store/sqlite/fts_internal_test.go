package sqlite

import (
	"math/rand/v2"
	"testing"
)

// The token set must agree with a map on any sequence of hashes, across
// growth and resets.
func TestHashSet(t *testing.T) {
	var s hashSet
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 4 {
		s.reset()
		want := map[uint64]bool{}
		for range 5000 * (round + 1) {
			h := r.Uint64() % 8000 // many repeats
			if round == 3 {
				h = r.Uint64() // spread over all bits
			}
			if h == 0 {
				h = 1 // stored as 1
			}
			if got := s.add(h); got == want[h] {
				t.Fatalf("round %d: add(%d) = %v, want %v", round, h, got, !want[h])
			}
			want[h] = true
		}
		if s.n != len(want) || 2*s.n > len(s.slots) {
			t.Fatalf("round %d: %d in the set, want %d, in %d slots", round, s.n, len(want), len(s.slots))
		}
	}
}

// appendTokens keeps each distinct token once, in first-seen order.
func TestAppendTokens(t *testing.T) {
	var z tokenizer
	z.reset()
	var text []byte
	for _, v := range []string{`C:\Windows\System32\cmd.exe`, "cmd /c echo WINDOWS", "Émile émile ÉMILE"} {
		text = z.appendTokens(text, v)
	}
	if want := "c windows system32 cmd exe echo émile"; string(text) != want {
		t.Errorf("text %q, want %q", text, want)
	}
	z.reset()
	if got := string(z.appendTokens(nil, "cmd")); got != "cmd" {
		t.Errorf("after reset: %q, want cmd", got)
	}
}
