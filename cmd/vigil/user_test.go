package main

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-edr/vigil/internal/store/sqlite"
)

// newData makes a data directory with a migrated database and the first
// admin, as a first server start would.
func newData(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out strings.Builder
	if err := ensureAdminUser(context.Background(), db, "127.0.0.1:8443", &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "user admin, password") {
		t.Fatalf("first-start message: %q", out.String())
	}
	out.Reset()
	if err := ensureAdminUser(context.Background(), db, "127.0.0.1:8443", &out); err != nil || out.Len() != 0 {
		t.Fatalf("second start printed %q, %v", out.String(), err)
	}
	return dir
}

func TestUserCommands(t *testing.T) {
	data := newData(t)
	pw, stderr, err := run(t, "user", "add", "--data", data, "--role", "viewer", "bob")
	if err != nil || len(strings.TrimSpace(pw)) != 27 || !strings.Contains(stderr, "shown once") {
		t.Fatalf("user add: %q %q %v", pw, stderr, err)
	}
	if _, _, err := run(t, "user", "add", "--data", data, "bob"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("duplicate add: %v", err)
	}
	for _, bad := range [][]string{
		{"user", "add", "--data", data, "Bob<x>"},
		{"user", "add", "--data", data, "--role", "root", "eve"},
		{"user", "passwd", "--data", data, "nobody"},
		{"user", "add", "--data", filepath.Join(data, "missing"), "eve"},
	} {
		if _, _, err := run(t, bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	cmd := newRootCmd()
	cmd.SetArgs([]string{"user", "add", "--data", data, "--password-stdin", "carol"})
	cmd.SetIn(strings.NewReader("short\n"))
	cmd.SetOut(&strings.Builder{})
	if err := cmd.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), "at least 12") {
		t.Errorf("short stdin password: %v", err)
	}
	for _, args := range [][]string{
		{"user", "passwd", "--data", data, "bob"},
		{"user", "totp-reset", "--data", data, "admin"},
		{"user", "role", "--data", data, "bob", "analyst"},
	} {
		if _, _, err := run(t, args...); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	out, _, err := run(t, "user", "list", "--data", data)
	if err != nil || !strings.Contains(out, "admin") || !regexpLine(out, "bob", "analyst") {
		t.Errorf("user list: %v\n%s", err, out)
	}
	out, _, err = run(t, "audit", "verify", "--data", data)
	if err != nil || !strings.Contains(out, "audit log OK: 5 entries") {
		t.Fatalf("audit verify: %v %s", err, out)
	}
	head := strings.TrimSpace(out[strings.LastIndex(out, " ")+1:])
	out, _, err = run(t, "audit", "show", "--data", data)
	for _, want := range []string{"user.add", "user.passwd", "user.totp_reset", "user.role", "cli:"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("audit show lacks %q: %v\n%s", want, err, out)
		}
	}
	if _, _, err := run(t, "audit", "verify", "--data", data, "--head", head); err != nil {
		t.Errorf("verify with its own head: %v", err)
	}
	// A removed tail is caught by the checkpoint; the exit status is 1.
	tamperDB(t, data, `DROP TRIGGER audit_log_no_delete`, `DELETE FROM audit_log WHERE seq = 5`)
	out, _, err = run(t, "audit", "verify", "--data", data)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(out, "entry 5: truncated") {
		t.Errorf("verify after truncation: %v %s", err, out)
	}
}

func regexpLine(out, a, b string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, a+" ") && strings.Contains(l, b) {
			return true
		}
	}
	return false
}

func tamperDB(t *testing.T, data string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(data, "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
