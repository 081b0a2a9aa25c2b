package atomics

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func testRunner(t *testing.T, o RunOptions) *Runner {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces and audit sessions")
	}
	r, err := NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func shTest(cmd, cleanup string) *Test {
	return &Test{Name: "t", Technique: "T1000", Number: 1, Platforms: []string{"linux"},
		Executor: Executor{Name: "sh", Command: cmd, CleanupCommand: cleanup}}
}

// A test that overruns its timeout is killed with everything it started in
// the background, and its cleanup still runs.
func TestRunTimeoutKillsGroupAndCleansUp(t *testing.T) {
	r := testRunner(t, RunOptions{Timeout: time.Second})
	dir := t.TempDir()
	bg, cleaned := filepath.Join(dir, "bg"), filepath.Join(dir, "cleaned")
	ex, err := r.Run(context.Background(), shTest("sleep 300 & echo $! > "+bg+"; sleep 300", "touch "+cleaned))
	if err != nil {
		t.Fatal(err)
	}
	if !ex.Ran() || !ex.Test.TimedOut || ex.Test.End.Sub(ex.Test.Start) > 5*time.Second {
		t.Fatalf("execution %+v: want a timeout after about 1 s", ex.Test)
	}
	if ex.Cleanup == nil || ex.Cleanup.ExitCode != 0 {
		t.Fatalf("cleanup %+v", ex.Cleanup)
	}
	if _, err := os.Stat(cleaned); err != nil {
		t.Fatal("cleanup did not run")
	}
	b, _ := os.ReadFile(bg)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 {
		t.Fatalf("no background pid recorded: %q", b)
	}
	for deadline := time.Now().Add(2 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(20 * time.Millisecond) {
		if st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); strings.Contains(string(st), ") Z ") {
			break // killed, waiting to be reaped by init
		}
		if time.Now().After(deadline) {
			t.Fatalf("background child %d survived the test", pid)
		}
	}
}

// Tests run in a network namespace of their own with a working loopback,
// in a fresh audit session, without VIGIL_ variables, in a scratch dir.
func TestRunIsolation(t *testing.T) {
	t.Setenv("VIGIL_TOKEN", "secret-must-not-leak")
	r := testRunner(t, RunOptions{Timeout: 10 * time.Second})
	script := `cut -d: -f1 /proc/net/dev | tail -n +3 | tr -d ' '; echo "token=$VIGIL_TOKEN"; pwd; cat /proc/self/sessionid; echo`
	ex, err := r.Run(context.Background(), &Test{Name: "t", Technique: "T1000", Number: 1, Platforms: []string{"linux"},
		Executor: Executor{Name: "bash", Command: script + `; (echo > /dev/tcp/127.0.0.1/9) 2>&1 | sed 's/.*: //'`}})
	if err != nil {
		t.Fatal(err)
	}
	out := strings.Split(strings.TrimSpace(ex.Test.Output), "\n")
	if len(out) < 5 || out[0] != "lo" || out[1] != "token=" || !strings.Contains(out[2], "vigil-atomic-") {
		t.Fatalf("output %q: want only lo, no token, a scratch directory", out)
	}
	if !r.Sessions() {
		t.Skip("audit sessions unavailable here (loginuid immutable?); network checks passed")
	}
	mine, _ := os.ReadFile("/proc/thread-self/sessionid")
	if out[3] != ex.Test.Session || ex.Test.Session == strings.TrimSpace(string(mine)) || ex.Test.Session == "" {
		t.Fatalf("shell session %q, reported %q, ours %q", out[3], ex.Test.Session, mine)
	}
	if last := out[len(out)-1]; last != "Connection refused" {
		t.Fatalf("connecting to the loopback: %q, want Connection refused (lo up)", last)
	}
	if _, err := os.Stat(out[2]); !os.IsNotExist(err) {
		t.Fatalf("scratch directory %s left behind", out[2])
	}
}

// A prerequisite that fails means the test and its cleanup do not run.
func TestRunPrereqNotMet(t *testing.T) {
	r := testRunner(t, RunOptions{})
	dir := t.TempDir()
	tt := shTest("touch "+filepath.Join(dir, "ran"), "touch "+filepath.Join(dir, "cleaned"))
	tt.Dependencies = []Dependency{{Description: "needs the moon", PrereqCommand: "exit 1"}}
	ex, err := r.Run(context.Background(), tt)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Ran() || ex.PrereqFailed != "needs the moon" || ex.Cleanup != nil {
		t.Fatalf("execution %+v", ex)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("something ran: %v", entries)
	}
}
