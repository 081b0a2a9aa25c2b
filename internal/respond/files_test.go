package respond

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFileStorePaths: only 64 lower-case hex digits name a file; whatever
// an agent or user sends as a name never becomes a path.
func TestFileStorePaths(t *testing.T) {
	fs, err := OpenFileStore(filepath.Join(t.TempDir(), "collected"))
	if err != nil {
		t.Fatal(err)
	}
	sum, n, err := fs.Put(strings.NewReader("evidence"), 100)
	if err != nil || n != 8 {
		t.Fatal(n, err)
	}
	f, err := fs.Open(sum)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "evidence" {
		t.Fatalf("read back %q", b)
	}
	for _, bad := range []string{"", "../" + sum, "/etc/passwd", sum + ".", sum + "/..", strings.ToUpper(sum), sum[:63] + "g", "..", sum[:2] + "/" + sum} {
		if _, err := fs.Open(bad); !errors.Is(err, ErrBadHash) {
			t.Errorf("Open(%q): %v", bad, err)
		}
	}
	if _, _, err := fs.Put(strings.NewReader("0123456789"), 9); err == nil {
		t.Error("oversize file stored")
	}
}

// TestFileStoreSymlink: a symbolic link planted in the store (a shard
// directory pointing elsewhere) cannot make the store write or read outside.
func TestFileStoreSymlink(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(dir, "outside")
	os.Mkdir(outside, 0o700)
	root := filepath.Join(dir, "collected")
	fs, _ := OpenFileStore(root)
	data := []byte("planted")
	sum := sha(data)
	if err := os.Symlink(outside, filepath.Join(root, sum[:2])); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fs.Put(bytes.NewReader(data), 100); err == nil {
		t.Error("stored through a symlinked shard directory")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("wrote outside the store: %v", ents)
	}
	os.WriteFile(filepath.Join(outside, sum), data, 0o600)
	if f, err := fs.Open(sum); err == nil {
		f.Close()
		t.Error("read through a symlinked shard directory")
	}
}

// FuzzFileStore: for any name and content, Open with the name never
// reaches a file outside the store, and Put never writes outside it.
func FuzzFileStore(f *testing.F) {
	for _, s := range []string{"../x", "/etc/passwd", "a.", "...", "ab/../../x", strings.Repeat("a", 64), strings.Repeat("0", 62) + "/.", "x\x00y"} {
		f.Add(s, []byte("data"))
	}
	base := f.TempDir()
	secret := filepath.Join(base, "secret")
	os.WriteFile(secret, []byte("secret"), 0o600)
	root := filepath.Join(base, "store")
	fs, _ := OpenFileStore(root)
	os.Symlink(base, filepath.Join(root, "ln"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		if f, err := fs.Open(name); err == nil {
			b, _ := io.ReadAll(f)
			f.Close()
			if string(b) == "secret" {
				t.Fatalf("Open(%q) read outside the store", name)
			}
			if _, err := Path(name); err != nil {
				t.Fatalf("Open(%q) opened a file whose name is not a hash", name)
			}
		}
		sum, _, err := fs.Put(bytes.NewReader(data), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if sum != sha(data) {
			t.Fatal("stored under another name than the content hash")
		}
		if _, err := os.Stat(filepath.Join(root, sum[:2], sum)); err != nil {
			t.Fatal(err)
		}
		if ents, _ := os.ReadDir(base); len(ents) != 2 {
			t.Fatalf("the store wrote beside itself: %v", ents)
		}
	})
}
