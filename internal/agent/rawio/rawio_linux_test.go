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
	var st, want syscall.Stat_t
	if err := Stat(f, &st); err != nil {
		t.Fatal(err)
	}
	syscall.Stat(f, &want)
	if st.Ino != want.Ino || st.Size != 5 {
		t.Errorf("Stat: ino %d size %d, want ino %d size 5", st.Ino, st.Size, want.Ino)
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
