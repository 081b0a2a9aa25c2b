package evtx

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
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
				t.Skipf("SKIPPING: shared test corpus not found at %s; EVTX corpus tests did not run", c)
			}
			return c
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("SKIPPING: go.mod not found above the package; EVTX corpus tests did not run")
		}
		dir = parent
	}
}

// corpusFiles lists the files under corpus/sub whose names end in ext.
func corpusFiles(t testing.TB, sub, ext string) []string {
	t.Helper()
	root := filepath.Join(corpusDir(t), sub)
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ext) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}
