package rulepack

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The copy budget holds even when an entry's declared size lies and the
// reader does not notice (a directory file growing while it is read).
func TestCopyBudget(t *testing.T) {
	root, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	e := entry{name: "rules/a.yml", size: 10, open: func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(strings.Repeat("x", 1000))), nil
	}}
	if _, _, _, err := writeEntry(root, e, 100); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if n, _, _, err := writeEntry(root, entry{name: "b.yml", open: e.open}, 1000); err != nil || n != 1000 {
		t.Fatalf("at the budget: %d, %v", n, err)
	}
}

func mkpack(t *testing.T, dir, version string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "rules"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "rules", "r.yml"), []byte(version), 0o644)
}

func version(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "rules", "r.yml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSwap(t *testing.T) {
	t.Run("exchange", testSwap)
	t.Run("two renames", func(t *testing.T) {
		exchangeDirs = func(a, b string) error { return errors.ErrUnsupported }
		defer func() { exchangeDirs = exchange }()
		testSwap(t)
	})
}

func testSwap(t *testing.T) {
	packs := t.TempDir()
	final := filepath.Join(packs, "p")
	tmp := filepath.Join(packs, ".new-p-1")
	mkpack(t, tmp, "v1")
	if err := swap(tmp, final); err != nil {
		t.Fatal(err)
	}
	if version(t, final) != "v1" {
		t.Fatal("first install not in place")
	}
	mkpack(t, tmp, "v2")
	if err := swap(tmp, final); err != nil {
		t.Fatal(err)
	}
	if version(t, final) != "v2" || version(t, tmp) != "v1" {
		t.Fatalf("after the swap: final %s, tmp %s; want v2, v1", version(t, final), version(t, tmp))
	}
}

// A crash between the two renames of the fallback swap leaves the old pack
// aside and none in place; the next install puts it back first.
func TestTidyRestoresPackLeftAside(t *testing.T) {
	packs := t.TempDir()
	mkpack(t, filepath.Join(packs, ".new-p-123.old"), "v1")
	mkpack(t, filepath.Join(packs, ".new-q-9"), "in progress") // another pack's install: left alone
	tidy(packs, "p")
	if version(t, filepath.Join(packs, "p")) != "v1" {
		t.Fatal("pack not restored")
	}
	if _, err := os.Stat(filepath.Join(packs, ".new-q-9")); err != nil {
		t.Fatal("removed another pack's fresh temporary directory")
	}
}
