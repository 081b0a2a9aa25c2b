package winevent_test

import (
	"testing"

	"github.com/vigil-edr/vigil/internal/testkit"
)

// corpusDir returns the shared read-only test corpus or skips the test.
func corpusDir(t testing.TB) string {
	t.Helper()
	return testkit.Corpus(t)
}
