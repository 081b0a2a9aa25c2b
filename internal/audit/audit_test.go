package audit_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/audit"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
)

func open(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// seed writes n entries to a new database file and returns its path and the
// verified head.
func seed(t *testing.T, n int) (string, audit.Head) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vigil.db")
	db := open(t, path)
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	i := 0
	log := audit.New(db, func() time.Time { i++; return t0.Add(time.Duration(i) * time.Second) })
	for k := 1; k <= n; k++ {
		if err := log.Record(context.Background(), audit.Entry{Actor: "user:alice", Source: "192.0.2.1",
			Action: "alert.state", Target: fmt.Sprintf("alert:%d", k), Detail: "new → acknowledged"}); err != nil {
			t.Fatal(err)
		}
	}
	head, err := audit.Verify(context.Background(), db, nil)
	if err != nil {
		t.Fatalf("fresh log: %v", err)
	}
	if head.Seq != int64(n) {
		t.Fatalf("head %v", head)
	}
	db.Close()
	return path, head
}

// TestVerifyDetectsTampering changes a real SQLite file behind the store's
// back, the way someone with the file and the sqlite3 tool would (dropping
// the append-only triggers first), and checks Verify names the entry.
func TestVerifyDetectsTampering(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sql     []string
		seq     int64
		problem string
	}{
		{"edit detail", []string{`UPDATE audit_log SET detail = 'nothing happened' WHERE seq = 4`}, 4, audit.ProblemEdited},
		{"edit actor", []string{`UPDATE audit_log SET actor = 'user:bob' WHERE seq = 1`}, 1, audit.ProblemEdited},
		{"edit time", []string{`UPDATE audit_log SET at = at + 1 WHERE seq = 7`}, 7, audit.ProblemEdited},
		{"edit hash too", []string{`UPDATE audit_log SET detail = 'x', hash = zeroblob(32) WHERE seq = 5`}, 5, audit.ProblemEdited},
		{"delete middle", []string{`DELETE FROM audit_log WHERE seq = 6`}, 6, audit.ProblemMissing},
		{"delete first", []string{`DELETE FROM audit_log WHERE seq = 1`}, 1, audit.ProblemMissing},
		{"delete and renumber", []string{`DELETE FROM audit_log WHERE seq = 3`, `UPDATE audit_log SET seq = seq - 1 WHERE seq > 3`,
			`UPDATE audit_head SET seq = seq - 1`}, 3, audit.ProblemReordered},
		{"swap two entries", []string{`UPDATE audit_log SET seq = -1 WHERE seq = 4`, `UPDATE audit_log SET seq = 4 WHERE seq = 5`,
			`UPDATE audit_log SET seq = 5 WHERE seq = -1`}, 4, audit.ProblemReordered},
		{"swap contents", []string{`CREATE TEMP TABLE x AS SELECT * FROM audit_log WHERE seq IN (2, 3)`,
			`UPDATE audit_log SET target = (SELECT target FROM x WHERE seq = 3) WHERE seq = 2`,
			`UPDATE audit_log SET target = (SELECT target FROM x WHERE seq = 2) WHERE seq = 3`}, 2, audit.ProblemEdited},
		{"truncate tail", []string{`DELETE FROM audit_log WHERE seq > 8`}, 9, audit.ProblemTruncated},
		{"truncate tail and checkpoint", []string{`DELETE FROM audit_log WHERE seq > 8`,
			`UPDATE audit_head SET seq = 8, hash = zeroblob(32)`}, 8, audit.ProblemHead},
		{"forged entry appended", []string{`INSERT INTO audit_log SELECT 11, at, actor, source, action, target, detail, hash, hash FROM audit_log WHERE seq = 10`},
			11, audit.ProblemEdited},
		{"appended without checkpoint", nil, 0, ""}, // filled below
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, _ := seed(t, 10)
			stmts := tc.sql
			if tc.name == "appended without checkpoint" {
				// A correctly sealed entry written around the store.
				db := open(t, path)
				if err := db.AppendAudit(context.Background(), &audit.Entry{Actor: "x", At: time.Now()}); err != nil {
					t.Fatal(err)
				}
				db.Close()
				stmts = []string{`UPDATE audit_head SET seq = 10, hash = (SELECT hash FROM audit_log WHERE seq = 10)`}
				tc.seq, tc.problem = 11, audit.ProblemHead
			}
			tamper(t, path, stmts)
			db := open(t, path)
			_, err := audit.Verify(context.Background(), db, nil)
			var ve *audit.VerifyError
			if !errors.As(err, &ve) || !errors.Is(err, audit.ErrTampered) {
				t.Fatalf("Verify = %v, want a VerifyError", err)
			}
			if ve.Seq != tc.seq || ve.Problem != tc.problem {
				t.Errorf("Verify = %v; want entry %d %s", err, tc.seq, tc.problem)
			}
		})
	}
}

func tamper(t *testing.T, path string, stmts []string) {
	t.Helper()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetMaxOpenConns(1)
	for _, q := range append([]string{`DROP TRIGGER audit_log_no_update`, `DROP TRIGGER audit_log_no_delete`}, stmts...) {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestAppendOnly: the store's triggers refuse in-place changes.
func TestAppendOnly(t *testing.T) {
	path, _ := seed(t, 2)
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range []string{`UPDATE audit_log SET detail = '' WHERE seq = 1`, `DELETE FROM audit_log WHERE seq = 2`} {
		if _, err := raw.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", q, err)
		}
	}
}

// TestPinnedHead catches a rewrite of the whole chain, which the stored
// checkpoint cannot.
func TestPinnedHead(t *testing.T) {
	path, head := seed(t, 5)
	// Rewrite: recompute every hash after changing entry 3.
	db := open(t, path)
	es, err := db.AuditEntries(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	es[2].Detail = "rewritten"
	var stmts []string
	prev := audit.Head{}
	for _, e := range es {
		e := e
		audit.Seal(&e, prev)
		stmts = append(stmts, fmt.Sprintf(`UPDATE audit_log SET detail = '%s', prev_hash = x'%x', hash = x'%x' WHERE seq = %d`, e.Detail, e.PrevHash, e.Hash, e.Seq))
		prev = audit.Head{Seq: e.Seq, Hash: e.Hash}
	}
	stmts = append(stmts, fmt.Sprintf(`UPDATE audit_head SET hash = x'%x'`, prev.Hash))
	tamper(t, path, stmts)
	db = open(t, path)
	if _, err := audit.Verify(context.Background(), db, nil); err != nil {
		t.Fatalf("a full rewrite verifies without a pin (as documented), got %v", err)
	}
	pin, err := audit.ParseHead(head.String())
	if err != nil {
		t.Fatal(err)
	}
	_, err = audit.Verify(context.Background(), db, &pin)
	var ve *audit.VerifyError
	if !errors.As(err, &ve) || ve.Problem != audit.ProblemHead || ve.Seq != 5 {
		t.Errorf("pinned: %v", err)
	}
}

// TestConcurrentAppends: many writers, one chain.
func TestConcurrentAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.db")
	db := open(t, path)
	db2 := open(t, path) // a second process's connection pool
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := db
			if g%2 == 1 {
				s = db2
			}
			l := audit.New(s, nil)
			for i := range 10 {
				if err := l.Record(context.Background(), audit.Entry{Actor: fmt.Sprint(g), Action: "x", Target: fmt.Sprint(i)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	head, err := audit.Verify(context.Background(), db, nil)
	if err != nil || head.Seq != 80 {
		t.Fatalf("Verify = %v, %v", head, err)
	}
}

func TestCleanBoundsFields(t *testing.T) {
	e := audit.Entry{Actor: "\xff" + strings.Repeat("é", 300), Detail: strings.Repeat("x", 10000)}
	e.Clean()
	if len(e.Actor) > 256 || !strings.HasPrefix(e.Actor, "\uFFFD") || !strings.HasSuffix(e.Actor, "…") || len(e.Detail) > 4096 {
		t.Errorf("Clean: %d %q… %d", len(e.Actor), e.Actor[:8], len(e.Detail))
	}
	for _, bad := range []string{"", "1", "0:00", "x:" + strings.Repeat("0", 64), "1:" + strings.Repeat("0", 63)} {
		if _, err := audit.ParseHead(bad); err == nil {
			t.Errorf("ParseHead(%q) accepted", bad)
		}
	}
}
