package evtx

import (
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vigil-edr/vigil/internal/testkit"
)

// corpusDir returns the shared read-only test corpus, found next to the
// repository root (the directory holding go.mod), or skips the test.
func corpusDir(t testing.TB) string {
	t.Helper()
	return testkit.Corpus(t)
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
