package posture

import (
	"context"
	"testing"
)

// BenchmarkEvaluateBaseline evaluates the Debian baseline (55 checks, no
// commands) against the fake root: the cost of one scan.
func BenchmarkEvaluateBaseline(b *testing.B) {
	p, err := Builtin("vigil_debian12")
	if err != nil {
		b.Fatal(err)
	}
	root := fakeRoot(b)
	ev := NewEvaluator(Options{Root: root})
	b.ReportAllocs()
	for b.Loop() {
		ev.Evaluate(context.Background(), p)
	}
}

// BenchmarkParseBaseline parses the Debian baseline.
func BenchmarkParseBaseline(b *testing.B) {
	data, err := builtinFS.ReadFile("policies/vigil_debian12.yml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("bench", data); err != nil {
			b.Fatal(err)
		}
	}
}
