package auditd

import (
	"testing"

	"github.com/vigil-edr/vigil/internal/testkit"
)

// corpusDir returns <repo root>/../shared/corpus/<rel>, or skips the test
// loudly when the shared corpus is not there.
func corpusDir(tb testing.TB, rel string) string {
	tb.Helper()
	return testkit.Corpus(tb, rel)
}
