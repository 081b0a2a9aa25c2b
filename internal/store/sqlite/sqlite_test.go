package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/vigil-edr/vigil/internal/store/sqlite"
	"github.com/vigil-edr/vigil/internal/store/storetest"
)

// backend is a DB on a file in t.TempDir() that can be reopened.
type backend struct {
	*sqlite.DB
	path string
}

func open(t *testing.T, path string) *backend {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &backend{DB: db, path: path}
}

// Reopen closes the database without any further write and opens the file
// again, as a restarted server would.
func (b *backend) Reopen(t *testing.T) storetest.Backend {
	if err := b.DB.Close(); err != nil {
		t.Fatal(err)
	}
	return open(t, b.path)
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		return open(t, filepath.Join(t.TempDir(), "vigil.db"))
	})
}

func TestOpenOptions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		path string
		opts sqlite.Options
	}{
		{"empty path", "", sqlite.Options{}},
		{"query in path", filepath.Join(dir, "x.db?mode=ro"), sqlite.Options{}},
		{"negative busy timeout", filepath.Join(dir, "x.db"), sqlite.Options{BusyTimeout: -1}},
		{"negative read conns", filepath.Join(dir, "x.db"), sqlite.Options{ReadConns: -1}},
		{"missing directory", filepath.Join(dir, "no", "such", "x.db"), sqlite.Options{}},
	} {
		if db, err := sqlite.Open(ctx, tc.path, tc.opts); err == nil {
			db.Close()
			t.Errorf("%s: Open succeeded", tc.name)
		}
	}
}

// TestReopenKeepsSchema opens a migrated file again: migrations run once.
func TestReopenKeepsSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.db")
	b := open(t, path)
	if err := b.SetRuleEnabled(context.Background(), "r", false); err != nil {
		t.Fatal(err)
	}
	b2 := b.Reopen(t)
	got, err := b2.DisabledRules(context.Background())
	if err != nil || len(got) != 1 {
		t.Fatalf("after reopen: %v, %v", got, err)
	}
}
