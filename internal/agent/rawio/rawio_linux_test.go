package rawio

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestRawio(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, err := ReadFile(f, buf); err != nil || string(buf[:n]) != "hello" {
		t.Errorf("ReadFile = %q, %v", buf[:n], err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing"), buf); err != syscall.ENOENT {
		t.Errorf("ReadFile(missing) error %v, want ENOENT", err)
	}
	l := filepath.Join(dir, "l")
	os.Symlink(f, l)
	if got, err := Readlink(l, buf); err != nil || got != f {
		t.Errorf("Readlink = %q, %v; want %q", got, err, f)
	}
	if got, _ := Readlink("/proc/self/exe", buf); got == "" {
		t.Error("Readlink(/proc/self/exe) is empty")
	}
}
