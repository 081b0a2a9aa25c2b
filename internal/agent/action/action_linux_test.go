package action

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func newExecutor(t *testing.T, mod ...func(*Options)) *Executor {
	t.Helper()
	o := Options{DataDir: t.TempDir()}
	for _, m := range mod {
		m(&o)
	}
	e, err := NewExecutor(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func startSleep(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", append([]string{"60"}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func TestKillRealProcess(t *testing.T) {
	cmd := startSleep(t)
	st, err := readStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// A wrong start time (what a reused pid looks like) is refused and
	// the process lives on.
	if _, err := Kill(cmd.Process.Pid, st.Start+1, false); !errors.Is(err, ErrProcessGone) {
		t.Fatalf("start time mismatch: %v", err)
	}
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("process hit despite the start time mismatch: %v", err)
	}
	res, err := Kill(cmd.Process.Pid, st.Start, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Killed) != 1 || res.Killed[0].PID != cmd.Process.Pid || res.Killed[0].Comm != "sleep" {
		t.Errorf("result %+v", res)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("sleep ended with %v, want SIGKILL", err)
	}
	// Now gone: refused, nothing else touched.
	if _, err := Kill(cmd.Process.Pid, st.Start, false); !errors.Is(err, ErrProcessGone) {
		t.Errorf("killing an exited process: %v", err)
	}
	if _, err := Kill(1, 1, false); err == nil {
		t.Error("pid 1 accepted")
	}
	if _, err := Kill(os.Getpid(), 1, false); err == nil {
		t.Error("the agent's own pid accepted")
	}
}

func TestKillTree(t *testing.T) {
	// sh → two sleeps (one of them under a second sh).
	cmd := exec.Command("sh", "-c", "sleep 60 & sh -c 'sleep 60 & wait' & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var kids []procStat
	waitFor(t, 5*time.Second, "three descendants", func() bool {
		kids, _ = descendants(cmd.Process.Pid, os.Getpid())
		return len(kids) >= 3
	})
	st, _ := readStat(cmd.Process.Pid)
	res, err := Kill(cmd.Process.Pid, st.Start, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Killed) != 4 {
		t.Errorf("killed %+v, want the root and three descendants", res.Killed)
	}
	cmd.Wait()
	for _, k := range kids {
		waitFor(t, 5*time.Second, "descendant gone", func() bool {
			s, err := readStat(k.PID)
			return err != nil || s.Start != k.Start || s.State == 'Z'
		})
	}
	// The tree holding the agent itself is refused.
	self, _ := readStat(os.Getppid())
	if _, err := Kill(os.Getppid(), self.Start, true); err == nil || !strings.Contains(err.Error(), "holds the agent") {
		t.Errorf("tree with the agent: %v", err)
	}
}

func TestQuarantineRestore(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown on restore)")
	}
	e := newExecutor(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "evil.sh")
	data := make([]byte, 300_001)
	rand.Read(data)
	if err := os.WriteFile(path, data, 0o4751); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	syscall.Chmod(path, 0o4751) // after chown, which clears setuid
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	os.Chtimes(path, mtime, mtime)
	before, _ := os.Lstat(path)

	q, err := e.Quarantine(path, "cmd-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("original still there: %v", err)
	}
	qdata := filepath.Join(e.dir, "quarantine", q.ID+".data")
	fi, err := os.Stat(qdata)
	if err != nil || fi.Mode().Perm() != 0o400 {
		t.Fatalf("quarantined copy: %v %v", fi, err)
	}
	if qd, _ := os.Stat(filepath.Join(e.dir, "quarantine")); qd.Mode().Perm() != 0o700 {
		t.Errorf("quarantine dir mode %v", qd.Mode())
	}
	if q.Size != int64(len(data)) || q.Mode != 0o4751 || q.UID != 1234 || q.GID != 5678 || len(q.SHA256) != 64 {
		t.Errorf("metadata %+v", q)
	}
	// Restore refuses to overwrite a file that took its place.
	os.WriteFile(path, []byte("new"), 0o600)
	if _, err := e.Restore(q.ID); err == nil {
		t.Fatal("restore overwrote a file")
	}
	os.Remove(path)
	if _, err := e.Restore(q.ID); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("restored bytes differ (%v)", err)
	}
	after, _ := os.Lstat(path)
	as, bs := after.Sys().(*syscall.Stat_t), before.Sys().(*syscall.Stat_t)
	if after.Mode() != before.Mode() || as.Uid != bs.Uid || as.Gid != bs.Gid || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("restored %v uid %d gid %d mtime %v; was %v %d %d %v", after.Mode(), as.Uid, as.Gid, after.ModTime(),
			before.Mode(), bs.Uid, bs.Gid, before.ModTime())
	}
	if _, err := os.Stat(qdata); !errors.Is(err, os.ErrNotExist) {
		t.Error("quarantine copy left after restore")
	}
	// Symbolic links and devices are refused; bad ids too.
	os.Symlink(path, filepath.Join(dir, "link"))
	for _, p := range []string{filepath.Join(dir, "link"), "/dev/null", dir, "relative", dir + "/../x"} {
		if _, err := e.Quarantine(p, "c"); err == nil {
			t.Errorf("quarantined %s", p)
		}
	}
	for _, id := range []string{"../x", "", "ABC"} {
		if _, err := e.Restore(id); err == nil {
			t.Errorf("restore %q accepted", id)
		}
	}
}

type memUploader struct{ got []byte }

func (m *memUploader) UploadFile(ctx context.Context, id string, data []byte) (string, error) {
	m.got = append([]byte(nil), data...)
	return sha256hex(data), nil
}

func TestCollectAndQueries(t *testing.T) {
	up := &memUploader{}
	e := newExecutor(t, func(o *Options) { o.Uploader = up; o.MaxCollectBytes = 1000 })
	path := filepath.Join(t.TempDir(), "f")
	os.WriteFile(path, []byte("collected bytes"), 0o600)
	c, err := e.Collect(context.Background(), "cmd-1", path)
	if err != nil || string(up.got) != "collected bytes" || c.SHA256 != sha256hex(up.got) {
		t.Fatalf("%+v %v", c, err)
	}
	os.WriteFile(path, make([]byte, 1001), 0o600)
	if _, err := e.Collect(context.Background(), "cmd-1", path); err == nil {
		t.Error("oversize file collected")
	}
	if _, err := e.Collect(context.Background(), "cmd-1", "/dev/zero"); err == nil {
		t.Error("device collected")
	}

	sleeper := startSleep(t)
	r, err := Query("processes", nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range r.Rows.([]Process) {
		if p.PID == sleeper.Process.Pid && p.Comm == "sleep" && p.Start > 0 && strings.HasPrefix(p.Cmdline, "sleep 60") {
			found = true
		}
	}
	if !found {
		t.Error("processes: the sleep is missing")
	}
	for _, q := range []string{"connections", "listening_ports", "users"} {
		if _, err := Query(q, nil); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	if r, err := Query("file_hash", map[string]string{"path": "/etc/passwd"}); err != nil || len(r.Rows.([]FileHash)[0].SHA256) != 64 {
		t.Errorf("file_hash: %v", err)
	}
	if _, err := Query("shell", nil); err == nil {
		t.Error("a query outside the catalogue ran")
	}
}
