package winevent_test

import (
	"os"
	"path/filepath"
	"testing"
)

// corpusDir returns the shared read-only test corpus, found next to the
// repository root (the directory holding go.mod), or skips the test.
func corpusDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			c := filepath.Join(dir, "..", "shared", "corpus")
			if _, err := os.Stat(c); err != nil {
				t.Skipf("SKIPPING: shared test corpus not found at %s; Windows regression tests did not run", c)
			}
			return c
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("SKIPPING: go.mod not found above the package; Windows regression tests did not run")
		}
		dir = parent
	}
}
