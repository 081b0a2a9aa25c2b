package usernames

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	write := func(s string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	base := time.Now().Add(-time.Hour)
	write("# comment\nroot:x:0:0:root:/root:/bin/bash\ntoor:x:0:0::/:/bin/sh\nbad line\n:x:5:5::/:/bin/sh\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n", base)
	c := New(path)
	for uid, want := range map[string]string{"0": "root", "33": "www-data", "5": "", "1000": ""} {
		if got := c.Name(uid); got != want {
			t.Errorf("Name(%s) = %q, want %q (first name wins, malformed lines skipped)", uid, got, want)
		}
	}

	// A user added later is found once the file changed and Recheck passed.
	write("root:x:0:0::/:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/bash\n", base.Add(time.Minute))
	if got := c.Name("1000"); got != "" {
		t.Errorf("Name(1000) = %q right after a miss, want no re-read before Recheck", got)
	}
	c.loadedAt = c.loadedAt.Add(-Recheck)
	if got := c.Name("1000"); got != "alice" {
		t.Errorf("Name(1000) = %q after the file changed, want alice", got)
	}
}

func TestMissingFile(t *testing.T) {
	c := New(filepath.Join(t.TempDir(), "none"))
	if got := c.Name("0"); got != "" {
		t.Errorf("Name(0) = %q without a passwd file", got)
	}
}
