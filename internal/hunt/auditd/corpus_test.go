package auditd

import (
	"os"
	"path/filepath"
	"testing"
)

// corpusDir returns <repo root>/../shared/corpus/<rel>, or skips the test
// loudly when the shared corpus is not there.
func corpusDir(tb testing.TB, rel string) string {
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
	p := filepath.Join(dir, "..", "shared", "corpus", rel)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("SKIPPING: shared test corpus not found at %s (%v); ground-truth checks did not run", p, err)
	}
	return p
}
