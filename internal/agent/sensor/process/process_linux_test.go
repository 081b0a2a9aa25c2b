//go:build linux

package process

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"

	"github.com/vigil-edr/vigil/internal/agent/procfs"
	"github.com/vigil-edr/vigil/internal/agent/throttle"
	"github.com/vigil-edr/vigil/internal/event"
)

// requireAudit skips the test when the kernel audit subsystem cannot be
// used: not root, no CONFIG_AUDIT, or a network namespace without audit.
func requireAudit(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_AUDIT_CONTROL, CAP_AUDIT_READ) to use the kernel audit subsystem; run the tests as root")
	}
	c, err := libaudit.NewAuditClient(nil)
	if err != nil {
		t.Skipf("kernel audit netlink unavailable: %v", err)
	}
	defer c.Close()
	st, err := c.GetStatus()
	if err != nil {
		t.Skipf("kernel audit status unavailable: %v", err)
	}
	if st.Enabled == 2 {
		t.Skip("audit rules are locked (enabled=2): the sensor cannot install its rules")
	}
}

// collector gathers the events whose CommandLine holds a marker, by
// CommandLine.
type collector struct {
	marker string
	mu     sync.Mutex
	byCmd  map[string][]*event.Event
}

func newCollector(marker string) *collector {
	return &collector{marker: marker, byCmd: map[string][]*event.Event{}}
}

func (c *collector) out(ev *event.Event) {
	cmd, _ := ev.Get("CommandLine")
	if !strings.Contains(cmd, c.marker) {
		return
	}
	c.mu.Lock()
	c.byCmd[cmd] = append(c.byCmd[cmd], ev)
	c.mu.Unlock()
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byCmd)
}

// execExpect describes an exec event a test waits for. Empty fields and a
// zero ParentPID are not checked.
type execExpect struct {
	Argv        []string
	ParentPID   int
	ParentImage string
	Image       string
	User        string
}

func (e execExpect) String() string {
	return fmt.Sprintf("exec %q parent=%d parentImage=%q", e.Argv, e.ParentPID, e.ParentImage)
}

// matches reports why ev does not match e ("" when it does).
func (e execExpect) mismatch(ev *event.Event) string {
	get := func(n string) string { v, _ := ev.Get(n); return v }
	var diffs []string
	check := func(field, want string) {
		if want != "" && get(field) != want {
			diffs = append(diffs, fmt.Sprintf("%s=%q, want %q", field, get(field), want))
		}
	}
	check("CommandLine", strings.Join(e.Argv, " "))
	if e.ParentPID != 0 {
		check("ParentProcessId", strconv.Itoa(e.ParentPID))
	}
	check("ParentImage", e.ParentImage)
	check("Image", e.Image)
	check("User", e.User)
	return strings.Join(diffs, ", ")
}

// awaitExecs waits until an event matching every expectation has arrived,
// and fails listing the first few that did not, with what arrived instead.
func (c *collector) awaitExecs(t *testing.T, within time.Duration, want ...execExpect) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var missing []string
		nMissing := 0
		c.mu.Lock()
		for _, w := range want {
			evs := c.byCmd[strings.Join(w.Argv, " ")]
			ok := false
			why := "no event"
			for _, ev := range evs {
				if d := w.mismatch(ev); d == "" {
					ok = true
					break
				} else {
					why = d
				}
			}
			if !ok {
				nMissing++
				if len(missing) < 5 {
					missing = append(missing, w.String()+": "+why)
				}
			}
		}
		c.mu.Unlock()
		if nMissing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d exec events did not arrive within %v; first ones:\n  %s",
				nMissing, len(want), within, strings.Join(missing, "\n  "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startSensor runs a sensor until the test ends and waits until its rules
// are in place.
func startSensor(t *testing.T, c *collector) *Sensor {
	t.Helper()
	s, _ := startSensorOpts(t, c, Options{HashWorkers: 1})
	return s
}

// startSensorOpts is startSensor with options. It also returns a function
// that stops the sensor before the test ends (at most once; the cleanup
// then only checks that Run's goroutines are gone).
func startSensorOpts(t *testing.T, c *collector, opts Options) (*Sensor, func()) {
	t.Helper()
	s := New(opts)
	goroutines := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, c.out) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return within 10 s of cancel")
			}
		})
	}
	t.Cleanup(func() {
		stop()
		// Every goroutine Run started has ended.
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > goroutines {
			t.Errorf("%d goroutines after Run returned, %d before", n, goroutines)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for s.Status().Mechanism == "" || s.Status().Detail == "" {
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v (status %v)", err, s.Status())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sensor did not start: %v", s.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s, stop
}

func nonce(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func selfExe(t *testing.T) string {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func currentUser(t *testing.T) string {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// TestThousandShortLivedExecs is the sensor's reason to exist: every one of
// 1,000 processes that exit at once is reported, with its argv and parent.
func TestThousandShortLivedExecs(t *testing.T) {
	requireAudit(t)
	n := nonce(t)
	marker := "vigil-test-" + n
	c := newCollector(marker)
	s := startSensor(t, c)
	if st := s.Status(); st.Mechanism != MechUnicast && st.Mechanism != MechMulticast {
		t.Fatalf("Status.Mechanism = %q, want an audit mechanism (%v)", st.Mechanism, st)
	}
	t.Logf("status: %v", s.Status())

	self, me, pid := selfExe(t), currentUser(t), os.Getpid()
	trueImage, _ := filepath.EvalSymlinks("/bin/true")
	shImage, _ := filepath.EvalSymlinks("/bin/sh") // the kernel reports the resolved path: /usr/bin/dash on Debian

	const total, workers = 1000, 4
	want := make([]execExpect, total)
	for i := range want {
		want[i] = execExpect{
			Argv: []string{"/bin/true", fmt.Sprintf("%s-%d", marker, i)}, Image: trueImage,
			ParentPID: pid, ParentImage: self, User: me,
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < total; i += workers {
				if err := exec.Command(want[i].Argv[0], want[i].Argv[1:]...).Run(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	// A few through sh, which forks (the trailing ":" stops dash from
	// exec'ing the last command in place): their parent is the shell.
	var shWant []execExpect
	for i := range 5 {
		arg := fmt.Sprintf("%s-sh-%d", marker, i)
		cmd := exec.Command("/bin/sh", "-c", "/bin/true "+arg+"; :")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		shPID := cmd.Process.Pid
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		shWant = append(shWant,
			execExpect{Argv: []string{"/bin/sh", "-c", "/bin/true " + arg + "; :"}, Image: shImage, ParentPID: pid, ParentImage: self, User: me},
			execExpect{Argv: []string{"/bin/true", arg}, Image: trueImage, ParentPID: shPID, ParentImage: shImage, User: me})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	spawned := time.Since(start)
	c.awaitExecs(t, 30*time.Second, append(want, shWant...)...)
	t.Logf("%d execs spawned in %v; all %d events in %v; status %v",
		total+10, spawned.Round(time.Millisecond), total+10, time.Since(start).Round(time.Millisecond), s.Status())

	// Exactly one event per exec, with the fields the rules need.
	c.mu.Lock()
	defer c.mu.Unlock()
	ev := c.byCmd[strings.Join(want[0].Argv, " ")]
	if len(ev) != 1 {
		t.Fatalf("%d events for one exec, want 1", len(ev))
	}
	e := ev[0]
	for _, f := range []string{"Image", "CommandLine", "CurrentDirectory", "ProcessId", "ParentProcessId",
		"User", "UserId", "Terminal", "SessionId", "ParentImage", "ParentCommandLine"} {
		if v, ok := e.Get(f); !ok || v == "" {
			t.Errorf("field %s missing in %+v", f, e.Fields)
		}
	}
	// LogonId is the audit uid: present for processes of a login session,
	// absent for those that never had one (this test may run from a daemon).
	if v, ok := e.Get("LogonId"); ok && (v == "" || v == "4294967295") {
		t.Errorf("LogonId = %q: the unset audit uid must be left out", v)
	}
	if h, _ := e.Get("Hashes"); !strings.HasPrefix(h, "SHA256=") || len(h) != 7+64 {
		t.Errorf("Hashes = %q, want SHA256=<64 hex>", h)
	}
	if e.Product != "linux" || len(e.Categories) != 1 || e.Categories[0] != "process_creation" {
		t.Errorf("log source %q %v", e.Product, e.Categories)
	}
	if d := time.Since(e.Time); d < 0 || d > time.Minute {
		t.Errorf("event time %v is not the audit timestamp (now %v)", e.Time, time.Now())
	}
	if cwd, _ := os.Getwd(); func() string { v, _ := e.Get("CurrentDirectory"); return v }() != cwd {
		t.Errorf("CurrentDirectory differs from %q: %+v", cwd, e.Fields)
	}
	t.Logf("one event: %+v", e.Fields)
}

// TestEncodedAndLongArguments: arguments the kernel hex-encodes (space,
// quote, non-ASCII, control characters) and arguments too long for one
// EXECVE record (split a1[0] a1[1] … pieces, several records) come back
// exactly.
func TestEncodedAndLongArguments(t *testing.T) {
	requireAudit(t)
	marker := "vigil-test-" + nonce(t)
	c := newCollector(marker)
	startSensor(t, c)

	cases := [][]string{
		{"/bin/true", marker + "-hex", "with space", `quo"te`, "naïve-ü-日本", "tab\there", "'single'"},
		{"/bin/true", marker + "-long", strings.Repeat("x", 20000), strings.Repeat("y", 3000), strings.Repeat("z", 3000), strings.Repeat("w", 3000)},
		{"/bin/true", marker + "-longhex", strings.Repeat("é ", 9000)},
	}
	var want []execExpect
	for _, argv := range cases {
		if err := exec.Command(argv[0], argv[1:]...).Run(); err != nil {
			t.Fatal(err)
		}
		want = append(want, execExpect{Argv: argv, ParentPID: os.Getpid()})
	}
	many := []string{"/bin/true", marker + "-many"}
	for i := range 3000 {
		many = append(many, "arg"+strconv.Itoa(i))
	}
	if err := exec.Command(many[0], many[1:]...).Run(); err != nil {
		t.Fatal(err)
	}
	want = append(want, execExpect{Argv: many, ParentPID: os.Getpid()})
	c.awaitExecs(t, 10*time.Second, want...)
}

// TestStopRemovesRules: after Run returns, none of the sensor's rules are
// left and the audit PID is not ours.
func TestStopRemovesRules(t *testing.T) {
	requireAudit(t)
	key := RuleKeyFor(nonce(t)) // other tests' agents may run meanwhile
	s := New(Options{RuleKey: key})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, func(*event.Event) {}) }()
	deadline := time.Now().Add(5 * time.Second)
	for s.Status().Detail == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	st := s.Status()
	if st.Mechanism != MechUnicast && st.Mechanism != MechMulticast {
		cancel()
		t.Fatalf("sensor did not start: %v", st)
	}
	if n := countRules(t, key); n == 0 {
		t.Errorf("no %s rule while running (%v)", key, st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := countRules(t, key); n != 0 {
		t.Errorf("%d %s rules left after Run returned", n, key)
	}
	if st.Mechanism == MechUnicast {
		if pid := auditPID(t); pid == uint32(os.Getpid()) {
			t.Errorf("audit PID still ours after Run returned")
		}
	}
}

// TestTwoSensorsKeepTheirRules: two sensors on one host (an agent service
// and `vigil up`'s agent) each install and remove only their own rule, so
// stopping either leaves the other seeing every exec: first the one that
// joined second stops, then, with it started again, the first.
func TestTwoSensorsKeepTheirRules(t *testing.T) {
	requireAudit(t)
	n := nonce(t)
	keyA, keyB := RuleKeyFor("a"+n), RuleKeyFor("b"+n)
	if keyA == keyB || !strings.HasPrefix(keyA, RuleKeyPrefix+"_") {
		t.Fatalf("RuleKeyFor: %q and %q", keyA, keyB)
	}
	ca, cb := newCollector("vigil-two-"+n), newCollector("vigil-two-"+n)
	sa, stopA := startSensorOpts(t, ca, Options{RuleKey: keyA})
	_, stopB := startSensorOpts(t, cb, Options{RuleKey: keyB})
	run := func(arg string) execExpect {
		t.Helper()
		argv := []string{"/bin/true", "vigil-two-" + n + "-" + arg}
		if err := exec.Command(argv[0], argv[1:]...).Run(); err != nil {
			t.Fatal(err)
		}
		return execExpect{Argv: argv, ParentPID: os.Getpid()}
	}
	rules := func(wantA, wantB bool) {
		t.Helper()
		if got := countRules(t, keyA) > 0; got != wantA {
			t.Errorf("rule %s installed: %v, want %v", keyA, got, wantA)
		}
		if got := countRules(t, keyB) > 0; got != wantB {
			t.Errorf("rule %s installed: %v, want %v", keyB, got, wantB)
		}
	}

	rules(true, true)
	both := run("both")
	ca.awaitExecs(t, 5*time.Second, both)
	cb.awaitExecs(t, 5*time.Second, both)

	stopB()
	rules(true, false)
	ca.awaitExecs(t, 5*time.Second, run("a-after-b-stopped"))

	cb2 := newCollector("vigil-two-" + n + "-b-after")
	_, stopB = startSensorOpts(t, cb2, Options{RuleKey: keyB})
	mechA := sa.Status().Mechanism
	stopA()
	rules(false, true)
	cb2.awaitExecs(t, 5*time.Second, run("b-after-a-stopped"))
	stopB()
	rules(false, false)
	t.Logf("first sensor %s, keys %s and %s", mechA, keyA, keyB)
}

// TestThrottleDefersHashing: while the agent backs off, an executable not
// hashed yet is reported without Hashes (counted deferred) and records are
// read in slow rounds; once the throttle is off it is hashed again.
func TestThrottleDefersHashing(t *testing.T) {
	requireAudit(t)
	n := nonce(t)
	bin := filepath.Join(t.TempDir(), "true-"+n) // a new inode: not in the hash cache
	b, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	c := newCollector("vigil-throttle-" + n)
	th := new(throttle.Signal)
	th.Set(true)
	s, _ := startSensorOpts(t, c, Options{Throttle: th, ThrottleRound: 50 * time.Millisecond})
	run := func(arg string) *event.Event {
		t.Helper()
		argv := []string{bin, "vigil-throttle-" + n + "-" + arg}
		if err := exec.Command(argv[0], argv[1:]...).Run(); err != nil {
			t.Fatal(err)
		}
		c.awaitExecs(t, 5*time.Second, execExpect{Argv: argv})
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.byCmd[strings.Join(argv, " ")][0]
	}
	if h, ok := run("throttled").Get("Hashes"); ok {
		t.Errorf("throttled: Hashes %q, want none (deferred)", h)
	}
	if st := s.Status(); st.Deferred == 0 || st.Throttled == 0 {
		t.Errorf("throttled: status %v, want deferred and throttled rounds counted", st)
	}
	th.Set(false)
	if h, _ := run("resumed").Get("Hashes"); !strings.HasPrefix(h, "SHA256=") {
		t.Errorf("after the throttle: Hashes %q, want SHA256=…", h)
	}
}

// TestShortLivedCgroup: processes gone before their records are read get
// their parent's cgroup (CgroupSource "parent"), which for children of a
// shell started by this test is this process's own.
func TestShortLivedCgroup(t *testing.T) {
	requireAudit(t)
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := cgroupPath(self)
	marker := "vigil-cg-" + nonce(t)
	c := newCollector(marker)
	startSensor(t, c)
	const n = 100
	script := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do /bin/true %s-$i; i=$((i+1)); done`, n, marker)
	if out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	exp := make([]execExpect, n)
	for i := range exp {
		exp[i] = execExpect{Argv: []string{"/bin/true", fmt.Sprintf("%s-%d", marker, i)}}
	}
	c.awaitExecs(t, 10*time.Second, exp...)
	c.mu.Lock()
	defer c.mu.Unlock()
	with, inherited := 0, 0
	for _, evs := range c.byCmd {
		cg, ok := evs[0].Get("Cgroup")
		if !ok {
			continue
		}
		with++
		if src, _ := evs[0].Get("CgroupSource"); src == "parent" {
			inherited++
		}
		if cg != want {
			t.Errorf("Cgroup %q, want the test's own %q", cg, want)
		}
	}
	if with < n*9/10 {
		t.Errorf("%d of %d short-lived execs have a Cgroup, want at least 90 %%", with, n)
	}
	t.Logf("%d of %d with Cgroup, %d of them from the parent", with, n, inherited)
}

// TestStatusWhenUnavailable: without the privilege the probe fails with a
// reason, and Status says so.
func TestStatusWhenUnavailable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("runs only without root (the unprivileged probe path)")
	}
	s := New(Options{})
	err := s.Run(context.Background(), func(*event.Event) {})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Run = %v, want ErrUnavailable", err)
	}
	if st := s.Status(); st.Mechanism != MechUnavailable || st.Err == "" {
		t.Fatalf("Status = %v", st)
	}
}

func countRules(t *testing.T, key string) int {
	t.Helper()
	c, err := libaudit.NewAuditClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rules, err := c.GetRules()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rules {
		if bytes.Contains(r, []byte(key)) {
			n++
		}
	}
	return n
}

func auditPID(t *testing.T) uint32 {
	t.Helper()
	c, err := libaudit.NewAuditClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.GetStatus()
	if err != nil {
		t.Fatal(err)
	}
	return st.PID
}

// TestExecBurstCPU measures the sensor's CPU time per exec. The execs come
// from a separate shell loop, so the CPU this process uses meanwhile is the
// sensor's (plus the collector's map insert).
func TestExecBurstCPU(t *testing.T) {
	requireAudit(t)
	if testing.Short() {
		t.Skip("measurement; skipped with -short")
	}
	marker := "vigil-burst-" + nonce(t)
	c := newCollector(marker)
	s := startSensor(t, c)
	const n = 2000
	idle0 := cpuTime(t)
	time.Sleep(3 * time.Second)
	t.Logf("idle sensor: %v CPU in 3 s", cpuTime(t)-idle0)
	before := cpuTime(t)
	start := time.Now()
	script := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do /bin/true %s-$i; i=$((i+1)); done`, n, marker)
	if out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// Wait cheaply (a count, not the matcher) so the measurement is the
	// sensor's; check every event afterwards.
	deadline := time.Now().Add(60 * time.Second)
	for c.count() < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu := cpuTime(t) - before
	want := make([]execExpect, n)
	for i := range want {
		want[i] = execExpect{Argv: []string{"/bin/true", fmt.Sprintf("%s-%d", marker, i)}}
	}
	c.awaitExecs(t, time.Second, want...)
	t.Logf("%d execs in %v (%.0f/s): sensor CPU %v = %.1f µs/exec (GOMAXPROCS=%d, race=%v); status %v",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), cpu.Round(time.Millisecond),
		float64(cpu.Microseconds())/n, runtime.GOMAXPROCS(0), raceEnabled, s.Status())
}

func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	t.Logf("rusage user %v sys %v", time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano()))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestProcessStartTime: the exec event of a process that is still running
// carries its ProcessStartTime, field 22 of /proc/PID/stat, as the kill
// action takes it, and ParentProcessStartTime, this process's own. (Its
// argv[0] is not its name, so the sensor's check of /proc's command name
// against the audit comm is exercised too.)
func TestProcessStartTime(t *testing.T) {
	requireAudit(t)
	marker := "vigil-start-" + nonce(t)
	c := newCollector(marker)
	startSensor(t, c)
	cmd := exec.Command("/bin/sleep", "30")
	cmd.Args[0] = marker
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	startOf := func(pid string) string {
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		st, err := procfs.ParseStat(b)
		if err != nil {
			t.Fatal(err)
		}
		return strconv.FormatUint(st.Start, 10)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	want, wantParent := startOf(pid), startOf("self")
	argv := []string{marker, "30"}
	c.awaitExecs(t, 10*time.Second, execExpect{Argv: argv, ParentPID: os.Getpid()})
	c.mu.Lock()
	ev := c.byCmd[strings.Join(argv, " ")][0]
	c.mu.Unlock()
	for _, f := range []struct{ name, want string }{
		{"ProcessId", pid}, {"ProcessStartTime", want}, {"ParentProcessStartTime", wantParent},
	} {
		if got, _ := ev.Get(f.name); got != f.want {
			t.Errorf("%s = %q, want %q (event %v)", f.name, got, f.want, ev.Fields)
		}
	}
}
