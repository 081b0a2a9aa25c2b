package web

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/vigil-edr/vigil/internal/store/sqlite"
)

// The route × role matrix and the functional tests also run against the
// real SQLite backend, opened in a temporary directory.
func init() {
	backends["sqlite"] = func(t *testing.T) backend { return openSQLite(t) }
}

func openSQLite(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
