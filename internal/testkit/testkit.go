// Package testkit holds helpers shared by Vigil's tests. Only _test.go files
// may import it.
package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

// Corpus returns <repo root>/../shared/corpus joined with rel (the shared,
// read-only, externally written test data), or skips the test with a loud
// message when it is absent. The repo root is the nearest directory above
// the working directory that holds go.mod.
func Corpus(tb testing.TB, rel ...string) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
	p := filepath.Join(append([]string{dir, "..", "shared", "corpus"}, rel...)...)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("CORPUS MISSING: %s not found (%v); this test's ground-truth checks did NOT run", p, err)
	}
	return p
}
