package spool

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The child side of TestCrash: when VIGIL_SPOOL_CRASH_DIR is set, the test
// binary appends to that spool until it is killed, printing
//
//	F <seq>  the first sequence number it was given
//	D <seq>  a Durable value observed after a Sync returned
//	A <seq>  an Ack that returned
//
// one per line. VIGIL_SPOOL_CRASH_MODE=bound runs with a small bound and no
// acks, so records are dropped.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("VIGIL_SPOOL_CRASH_DIR")
	if dir == "" {
		t.Skip("only run as TestCrash's child process")
	}
	mode := os.Getenv("VIGIL_SPOOL_CRASH_MODE")
	bound := mode == "bound"
	s, err := Open(crashOptions(dir, mode))
	if err != nil {
		fmt.Printf("E %v\n", err)
		os.Exit(3)
	}
	var mu sync.Mutex // one line per write
	say := func(kind byte, v uint64) {
		mu.Lock()
		os.Stdout.WriteString(string(kind) + " " + strconv.FormatUint(v, 10) + "\n")
		mu.Unlock()
	}
	payload := bytes.Repeat([]byte("p"), 200)
	seq, err := s.Append(payload)
	if err != nil {
		os.Exit(4)
	}
	say('F', seq)
	for range 2 {
		go func() {
			for i := 0; ; i++ {
				if _, err := s.Append(payload); err != nil {
					os.Exit(5)
				}
				if i%100 == 99 { // a busy host, not a flood the sender can never catch
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	if !bound {
		go func() {
			after := uint64(0)
			for {
				recs, err := s.Read(after, 5000, 0)
				if err != nil {
					os.Exit(6)
				}
				if len(recs) == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				after = recs[len(recs)-1].Seq
				// Leave some records read but unacked, as if in flight.
				through := after - uint64(rand.IntN(len(recs)))
				if err := s.Ack(through); err != nil {
					os.Exit(7)
				}
				say('A', through)
			}
		}()
	}
	for {
		if err := s.Sync(); err != nil {
			os.Exit(8)
		}
		say('D', s.Durable())
		time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
	}
}

func crashOptions(dir, mode string) Options {
	o := Options{Dir: dir, SegmentBytes: 64 << 10, SyncEvery: 5 * time.Millisecond, SyncEvents: 300, AckEvery: -1}
	switch mode {
	case "bound":
		o.MaxBytes = 256 << 10
	case "lazyack":
		o.AckEvery = 20 * time.Millisecond
	}
	return o
}

// TestCrash SIGKILLs a process appending to the spool at random moments and
// checks after each kill that the spool opens, that everything reported
// durable is still there or was acknowledged (or, with a bound, was dropped
// and counted), and that numbers are never reused.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	t.Run("ack", func(t *testing.T) { testCrash(t, "ack", 50) })
	t.Run("lazyack", func(t *testing.T) { testCrash(t, "lazyack", 20) })
	t.Run("bound", func(t *testing.T) { testCrash(t, "bound", 20) })
}

// testCrash runs mode "ack" (meta written at every acknowledgement, which
// must survive), "lazyack" (meta written by the committer every 20 ms: an
// acknowledgement may be lost, a record never) or "bound" (no acks, a small
// bound).
func testCrash(t *testing.T, mode string, kills int) {
	bound := mode == "bound"
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var maxDurable, maxAcked, lastSeen uint64 // lastSeen: the highest number on disk at the last reopen
	var epoch uint64
	progress := 0
	for run := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "VIGIL_SPOOL_CRASH_DIR="+dir)
		cmd.Env = append(cmd.Env, "VIGIL_SPOOL_CRASH_MODE="+mode)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The child's report, parsed as it arrives; lines cut by the kill
		// are ignored.
		type report struct {
			first, durable, acked uint64
			openErr               string
		}
		reports := make(chan report, 1)
		started := make(chan struct{})
		go func() {
			var r report
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				kind, v, _ := strings.Cut(sc.Text(), " ")
				n, err := strconv.ParseUint(v, 10, 64)
				switch {
				case kind == "E":
					r.openErr = v
				case err != nil:
				case kind == "F":
					r.first = n
					close(started)
				case kind == "D":
					r.durable = max(r.durable, n)
				case kind == "A":
					r.acked = max(r.acked, n)
				}
			}
			reports <- r
		}()
		// Kill at a random moment: mostly while appending, one run in
		// five at any time from the start (maybe during Open's recovery).
		if rng.IntN(5) > 0 {
			select {
			case <-started:
			case <-time.After(10 * time.Second):
				t.Fatalf("run %d: child did not start appending within 10s", run)
			}
		}
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		r := <-reports
		if r.openErr != "" {
			t.Fatalf("run %d: child could not open the spool: %s", run, r.openErr)
		}
		first := r.first
		maxDurable = max(maxDurable, r.durable)
		maxAcked = max(maxAcked, r.acked)
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("run %d: child ended by itself: %v", run, err)
		}
		if first != 0 {
			progress++
			if first != lastSeen+1 {
				t.Fatalf("run %d: child's first seq %d, want %d (last on disk)", run, first, lastSeen+1)
			}
		}

		s, err := Open(crashOptions(dir, mode))
		if err != nil {
			t.Fatalf("run %d: reopen: %v", run, err)
		}
		if epoch == 0 {
			epoch = s.BootEpoch()
		} else if s.BootEpoch() != epoch {
			t.Fatalf("run %d: epoch changed", run)
		}
		st := s.Stats()
		if st.Durable < maxDurable || (mode != "lazyack" && st.Acked < maxAcked) {
			t.Fatalf("run %d: stats %+v, child reported durable %d, acked %d", run, st, maxDurable, maxAcked)
		}
		if st.Durable < lastSeen {
			t.Fatalf("run %d: durable went back from %d to %d", run, lastSeen, st.Durable)
		}
		trim := st.Durable - st.Depth // every number ≤ trim was acked or dropped
		recs := readAll(t, s, 0)
		if uint64(len(recs)) != st.Depth {
			t.Fatalf("run %d: read %d records, depth %d", run, len(recs), st.Depth)
		}
		for i, r := range recs {
			if r.Seq != trim+1+uint64(i) {
				t.Fatalf("run %d: record %d has seq %d, want %d", run, i, r.Seq, trim+1+uint64(i))
			}
		}
		if bound {
			// Nothing is ever acked, so every missing number was dropped
			// and counted: the count is exact across the kills.
			if st.Acked != 0 || st.Dropped != trim {
				t.Fatalf("run %d: stats %+v, first readable %d", run, st, trim+1)
			}
		} else if trim > st.Acked {
			t.Fatalf("run %d: records %d..%d missing without being acked (%+v)", run, st.Acked+1, trim, st)
		}
		lastSeen = st.Durable
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d kills, %d after the child appended; last seq %d, durable reported %d, acked %d", kills, progress, lastSeen, maxDurable, maxAcked)
	if progress < kills*3/5 || maxDurable == 0 {
		t.Fatalf("the child made progress in only %d of %d runs", progress, kills)
	}
	if bound {
		s := mustOpen(t, crashOptions(dir, mode))
		defer s.Close()
		if s.Stats().Dropped == 0 {
			t.Fatal("bound mode dropped nothing")
		}
	}
}
