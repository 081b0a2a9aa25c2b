package fim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/agent/throttle"
	"github.com/vigil-edr/vigil/internal/event"
)

// want describes an expected event declaratively: the field values it must
// carry (other fields are not checked), whether it must be in the
// persistence category, and fields it must not have.
type want struct {
	fields      map[string]string
	persistence bool
	absent      []string
}

func (w want) matches(ev *event.Event) bool {
	if ev.Product != "linux" || !ev.HasCategory("file_event") || ev.HasCategory("persistence") != w.persistence {
		return false
	}
	for k, v := range w.fields {
		if got, ok := ev.Get(k); !ok || got != v {
			return false
		}
	}
	for _, k := range w.absent {
		if _, ok := ev.Get(k); ok {
			return false
		}
	}
	return true
}

func (w want) String() string {
	return fmt.Sprintf("event with %v (persistence %t, without %v)", w.fields, w.persistence, w.absent)
}

type sensorRun struct {
	s  *Sensor
	ch chan *event.Event
}

// start runs a sensor until the test ends and waits until it is ready.
func start(t *testing.T, opts Options) *sensorRun {
	t.Helper()
	s := New(opts)
	r := &sensorRun{s: s, ch: make(chan *event.Event, 1000)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, func(ev *event.Event) { r.ch <- ev.Clone() }) }()
	stop := func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(10 * time.Second)
	for !s.Status().Ready {
		if time.Now().After(deadline) {
			t.Fatalf("sensor not ready: %v", s.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r
}

// expect waits until an event matching w arrives within d; events that do
// not match are skipped.
func (r *sensorRun) expect(t *testing.T, d time.Duration, w want) *event.Event {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-r.ch:
			t.Logf("event %v", ev.Fields)
			if w.matches(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %v within %v (status %v)", w, d, r.s.Status())
			return nil
		}
	}
}

func sum(b string) string {
	h := sha256.Sum256([]byte(b))
	return hex.EncodeToString(h[:])
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// self is what the sensor should report as the acting process: this test.
func self(t *testing.T) map[string]string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"ProcessId": strconv.Itoa(os.Getpid()), "Image": exe, "User": u.Username}
}

func with(a, b map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

// TestFanotify makes each kind of change in a watched temporary directory
// and expects the event with this test process as the actor.
func TestFanotify(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "watched")
	cron := filepath.Join(tmp, "cron.d")
	for _, d := range []string{dir, cron} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	existing := filepath.Join(dir, "existing")
	write(t, existing, "one\n")

	r := start(t, Options{Paths: []string{dir, cron}, StateDir: filepath.Join(tmp, "state")})
	if st := r.s.Status(); st.Source != "fanotify" {
		t.Skipf("fanotify unavailable here, covered by TestPoll: %v", st.Err)
	}
	me := self(t)
	const within = 2 * time.Second

	created := filepath.Join(dir, "new")
	write(t, created, "x")
	r.expect(t, within, want{fields: with(me, map[string]string{"TargetFilename": created, "Action": "created", "FileType": "file"})})

	write(t, existing, "two\n")
	r.expect(t, within, want{fields: with(me, map[string]string{
		"TargetFilename": existing, "Action": "modified", "PreviousHash": sum("one\n"), "Hash": sum("two\n")})})

	if err := os.Chmod(existing, 0o700|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	r.expect(t, within, want{fields: with(me, map[string]string{
		"TargetFilename": existing, "Action": "permissions_changed", "PreviousMode": "0644", "Mode": "4700"})})

	if os.Geteuid() == 0 {
		if err := os.Chown(existing, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		r.expect(t, within, want{fields: with(me, map[string]string{
			"TargetFilename": existing, "Action": "owner_changed", "PreviousUid": "0", "Uid": "65534", "Gid": "65534"})})
	} else {
		t.Log("not root: chown not tested")
	}

	renamed := filepath.Join(dir, "renamed")
	if err := os.Rename(existing, renamed); err != nil {
		t.Fatal(err)
	}
	r.expect(t, within, want{fields: with(me, map[string]string{
		"SourceFilename": existing, "TargetFilename": renamed, "Action": "renamed", "Hash": sum("two\n")})})

	if err := os.Remove(renamed); err != nil {
		t.Fatal(err)
	}
	r.expect(t, within, want{fields: with(me, map[string]string{
		"TargetFilename": renamed, "Action": "deleted", "PreviousHash": sum("two\n")})})

	// An atomic replace (write a temporary file, rename it over the target).
	write(t, created+".tmp", "y")
	if err := os.Rename(created+".tmp", created); err != nil {
		t.Fatal(err)
	}
	r.expect(t, within, want{fields: with(me, map[string]string{
		"TargetFilename": created, "Action": "modified", "PreviousHash": sum("x"), "Hash": sum("y")})})

	job := filepath.Join(cron, "job")
	write(t, job, "* * * * * root /tmp/x\n")
	r.expect(t, within, want{persistence: true, fields: with(me, map[string]string{
		"TargetFilename": job, "Action": "created", "PersistenceType": "cron"})})

	// A directory created later is watched too.
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	r.expect(t, within, want{fields: map[string]string{"TargetFilename": sub, "Action": "created", "FileType": "dir"}})
	// The mark on the new directory is placed when its creation is read, so
	// a file made right after may be found by the sensor's scan of the new
	// directory, which cannot name the process: only the file is required.
	inner := filepath.Join(sub, "inner")
	write(t, inner, "z")
	r.expect(t, within, want{fields: map[string]string{"TargetFilename": inner, "Action": "created"}})

	if st := r.s.Status(); st.Err != nil || st.Events < 9 || st.Watches < 2 {
		t.Errorf("Status = %v", st)
	}
}

// TestPoll covers the fallback: the same changes, found by rescanning,
// without a process.
func TestPoll(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "systemd", "system")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(dir, "evil.service")
	keep := filepath.Join(dir, "keep.service")
	write(t, keep, "a")
	r := start(t, Options{Paths: []string{dir}, Poll: true, PollInterval: 50 * time.Millisecond})
	if st := r.s.Status(); st.Source != "poll" || st.Err != nil || st.Files != 2 {
		t.Fatalf("Status = %v", st)
	}
	write(t, unit, "[Service]\n")
	r.expect(t, 2*time.Second, want{persistence: true, absent: []string{"ProcessId"}, fields: map[string]string{
		"TargetFilename": unit, "Action": "created", "Hash": sum("[Service]\n"), "PersistenceType": "systemd"}})
	write(t, keep, "bb")
	r.expect(t, 2*time.Second, want{persistence: true, fields: map[string]string{
		"TargetFilename": keep, "Action": "modified", "PreviousHash": sum("a"), "Hash": sum("bb")}})
	if err := os.Remove(unit); err != nil {
		t.Fatal(err)
	}
	r.expect(t, 2*time.Second, want{persistence: true, fields: map[string]string{"TargetFilename": unit, "Action": "deleted"}})
}

// TestBaselineRestart: changes made while the sensor was stopped are
// reported at the next start from the saved baseline.
func TestBaselineRestart(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "etc")
	state := filepath.Join(tmp, "state")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "profile")
	gone := filepath.Join(dir, "gone")
	write(t, file, "old")
	write(t, gone, "g")
	opts := Options{Paths: []string{dir}, StateDir: state, Poll: true, PollInterval: time.Hour}

	// First run: build and save the baseline, report nothing.
	s := New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	var events int
	go func() { done <- s.Run(ctx, func(*event.Event) { events++ }) }()
	for !s.Status().Ready {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil || events != 0 {
		t.Fatalf("first run: err %v, %d events", err, events)
	}
	if _, err := os.Stat(filepath.Join(state, "baseline.json")); err != nil {
		t.Fatal(err)
	}

	write(t, file, "new")
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	r := start(t, opts)
	r.expect(t, 2*time.Second, want{fields: map[string]string{"TargetFilename": file, "Action": "modified", "PreviousHash": sum("old"), "Hash": sum("new")}})
	r.expect(t, 2*time.Second, want{fields: map[string]string{"TargetFilename": gone, "Action": "deleted", "PreviousHash": sum("g")}})
}

func TestMaxHashBytes(t *testing.T) {
	tmp := t.TempDir()
	write(t, filepath.Join(tmp, "big"), "0123456789")
	r := start(t, Options{Paths: []string{tmp}, MaxHashBytes: 4, Poll: true, PollInterval: 50 * time.Millisecond})
	write(t, filepath.Join(tmp, "small"), "0123")
	r.expect(t, 2*time.Second, want{fields: map[string]string{"Action": "created", "Hash": sum("0123")}})
	write(t, filepath.Join(tmp, "big"), "01234567890")
	r.expect(t, 2*time.Second, want{absent: []string{"Hash", "PreviousHash"}, fields: map[string]string{"Action": "modified"}})
}

func TestPersistenceType(t *testing.T) {
	for path, want := range map[string]string{
		"/etc/crontab":                                PersistCron,
		"/etc/cron.d/backup":                          PersistCron,
		"/etc/cron.daily/logrotate":                   PersistCron,
		"/var/spool/cron/crontabs/root":               PersistCron,
		"/var/spool/cron/root":                        PersistCron,
		"/etc/systemd/system/evil.service":            PersistSystemd,
		"/etc/systemd/system/multi-user.target.wants": PersistSystemd,
		"/usr/lib/systemd/system/ssh.service":         PersistSystemd,
		"/root/.ssh/authorized_keys":                  PersistSSHAuthorizedKeys,
		"/home/alice/.ssh/authorized_keys2":           PersistSSHAuthorizedKeys,
		"/etc/profile":                                PersistShellProfile,
		"/etc/profile.d/evil.sh":                      PersistShellProfile,
		"/home/alice/.bashrc":                         PersistShellProfile,
		"/root/.profile":                              PersistShellProfile,
		"/etc/ld.so.preload":                          PersistLDPreload,
		"/etc/passwd":                                 "",
		"/usr/bin/ls":                                 "",
		"/root/.ssh/known_hosts":                      "",
	} {
		if got := persistenceType(path); got != want {
			t.Errorf("persistenceType(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestResolveRoots(t *testing.T) {
	tmp := t.TempDir()
	for _, d := range []string{"etc/cron.d", "etc/cron.daily", "home/a/.ssh", "home/b"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(tmp, "home/a/.bashrc"), "")
	if err := os.Symlink("etc", filepath.Join(tmp, "link")); err != nil {
		t.Fatal(err)
	}
	roots := resolveRoots([]string{
		tmp + "/etc/cron*", tmp + "/etc", tmp + "/link", tmp + "/home/*/.ssh", tmp + "/home/*/.bashrc", tmp + "/missing/x", tmp + "/home/b/.ssh",
	})
	var got []string
	for _, r := range roots {
		got = append(got, fmt.Sprintf("%s dir=%t", r.path[len(tmp):], r.dir))
	}
	want := []string{"/etc dir=true", "/home/a/.ssh dir=true", "/home/b/.ssh dir=true", "/missing/x dir=true", "/home/a/.bashrc dir=false"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("roots\n got %v\nwant %v", got, want)
	}
}

// TestThrottleBacksOff: while the agent is over its CPU budget the sensor
// reads the fanotify queue only every ThrottleRound; the changes made in
// between are still reported, later.
func TestThrottleBacksOff(t *testing.T) {
	tmp := t.TempDir()
	var th throttle.Signal
	th.Set(true)
	r := start(t, Options{Paths: []string{tmp}, Round: -1, Throttle: &th, ThrottleRound: 700 * time.Millisecond})
	write(t, filepath.Join(tmp, "a"), "a")
	r.expect(t, 5*time.Second, want{fields: map[string]string{"Action": "created", "TargetFilename": filepath.Join(tmp, "a")}})
	got := time.Now()
	write(t, filepath.Join(tmp, "b"), "b")
	r.expect(t, 5*time.Second, want{fields: map[string]string{"Action": "created", "TargetFilename": filepath.Join(tmp, "b")}})
	if d := time.Since(got); d < 500*time.Millisecond {
		t.Errorf("throttled: a change came %v after the previous read, want ≥ 500 ms (ThrottleRound 700 ms)", d)
	}
}
