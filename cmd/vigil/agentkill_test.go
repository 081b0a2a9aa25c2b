package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/agent"
	"github.com/vigil-edr/vigil/internal/transport"
)

// The agent's reliability check: the real vigil-agent process is killed
// with SIGKILL 50 times while it records events (lines on its standard
// input, through --test-input: no kernel sensor, so no root needed), then
// runs to drain. Every event the spool reported durable before a kill is
// stored by the server, none twice, with one boot epoch throughout; and
// the agent started cleanly every time (it made new records durable within
// seconds of each start and never exited before it was killed).
func TestAgentKillNineKeepsDurable(t *testing.T) {
	if testing.Short() {
		t.Skip("heavy: runs in the integration step of scripts/test.sh")
	}
	began := time.Now()
	bin := filepath.Join(t.TempDir(), "vigil-agent")
	if out, err := exec.Command("go", "build", "-o", bin, "../vigil-agent").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	built := time.Since(began)
	s, _ := testServer(t)
	url := "https://" + s.Addr().String()
	plain, tok := transport.NewToken(time.Now().UTC(), time.Hour, 1, "kill test")
	if err := s.db.CreateEnrollToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "agent")
	conf := filepath.Join(dir, "agent.yaml")
	os.WriteFile(conf, []byte("data_dir: "+data+"\nhealth_every: 1s\nheartbeat_every: 1s\nsensors:\n"+
		"  process: false\n  authlog: false\n  fim: false\n  network: false\n  inventory: false\n  sca: false\n"), 0o600)
	if out, err := exec.Command(bin, "enroll", "--config", conf, "--server", url, "--token", plain,
		"--ca-fingerprint", s.auth.CAFingerprint()).CombinedOutput(); err != nil {
		t.Fatalf("enrol: %v: %s", err, out)
	}
	id, err := agent.LoadIdentity(data)
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu      sync.Mutex
		epochs  = map[uint64]bool{}
		durable uint64 // highest durable sequence reported by any run
	)
	// run starts the agent, feeds it lines until stop is closed and reports
	// its durable sequence numbers; advanced receives the first one above
	// what earlier runs reported.
	run := func(k int, stop <-chan struct{}) (cmd *exec.Cmd, advanced <-chan struct{}, exited <-chan error) {
		cmd = exec.Command(bin, "run", "--config", conf, "--test-input")
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		before := durable
		mu.Unlock()
		adv := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(stdout)
			once := false
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) != 3 || f[0] != "durable" {
					continue
				}
				e, _ := strconv.ParseUint(f[1], 10, 64)
				q, _ := strconv.ParseUint(f[2], 10, 64)
				mu.Lock()
				epochs[e] = true
				durable = max(durable, q)
				mu.Unlock()
				if q > before && !once {
					once = true
					close(adv)
				}
			}
		}()
		go func() {
			defer stdin.Close()
			w := bufio.NewWriter(stdin)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				fmt.Fprintf(w, "kill-%d line-%d\n", k, i)
				if i%20 == 0 {
					if w.Flush() != nil {
						return
					}
					time.Sleep(time.Millisecond)
				}
			}
		}()
		ex := make(chan error, 1)
		go func() { ex <- cmd.Wait() }()
		return cmd, adv, ex
	}

	const kills = 50
	var slowest time.Duration
	for k := range kills {
		stop := make(chan struct{})
		start := time.Now()
		cmd, advanced, exited := run(k, stop)
		select {
		case <-advanced:
		case err := <-exited:
			t.Fatalf("start %d: the agent exited by itself: %v", k, err)
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("start %d: no new durable record within 15 s of starting", k)
		}
		slowest = max(slowest, time.Since(start))
		time.Sleep(time.Duration(rand.IntN(250)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		err := <-exited
		close(stop)
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("start %d: the agent ended with %v before it was killed", k, err)
		}
	}
	mu.Lock()
	want := durable
	mu.Unlock()

	// One last run, without input, until the server holds everything.
	stop := make(chan struct{})
	close(stop)
	cmd, _, exited := run(kills, stop)
	deadline := time.Now().Add(60 * time.Second)
	var got int64
	for {
		audit, err := s.db.SequenceAudit(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		a := audit[id.AgentID]
		if got = a.DistinctUpTo(want); got == int64(want) {
			if a.Rows != a.Distinct {
				t.Errorf("%d rows stored for %d distinct events", a.Rows, a.Distinct)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after draining %d of the %d events the spool reported durable are stored", got, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		t.Errorf("the last run did not stop cleanly: %v", err)
	}
	if len(epochs) != 1 {
		t.Errorf("boot epochs %v, want one: the spool must keep its numbering across kills", epochs)
	}
	t.Logf("%d SIGKILLs: %d durable events all stored once; slowest start to first new durable record %v; build %v, whole test %v",
		kills, want, slowest.Round(time.Millisecond), built.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}
