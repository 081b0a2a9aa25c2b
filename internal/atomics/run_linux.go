package atomics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Runner runs atomic tests on this host. See the package doc.
type Runner struct {
	opts  RunOptions
	reqs  chan spawnReq
	done  chan struct{}
	uid   string // loginuid written for a fresh audit session
	noSes bool   // sessions could not be set up (reported by Sessions)
}

type spawnReq struct {
	cmd   *exec.Cmd
	reply chan spawnResult
}

type spawnResult struct {
	session string
	err     error
}

// NewRunner starts the Runner's spawner thread and checks once that it can
// isolate the network (needs CAP_SYS_ADMIN) unless opts.HostNetwork.
func NewRunner(opts RunOptions) (*Runner, error) {
	opts.defaults()
	r := &Runner{opts: opts, reqs: make(chan spawnReq), done: make(chan struct{})}
	// The loginuid to write: the current one if set, else our uid.
	if b, err := os.ReadFile("/proc/self/loginuid"); err == nil {
		r.uid = strings.TrimSpace(string(b))
	}
	if r.uid == "" || r.uid == "4294967295" {
		r.uid = strconv.Itoa(os.Getuid())
	}
	ready := make(chan error, 1)
	go r.spawner(ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	return r, nil
}

// Sessions reports whether test shells get their own audit session.
func (r *Runner) Sessions() bool { return !r.opts.NoSession && !r.noSes }

// Close stops the spawner thread.
func (r *Runner) Close() { close(r.reqs); <-r.done }

// spawner owns one locked OS thread: network namespace and loginuid
// changes apply to that thread only, and every test process is forked
// from it, so they inherit both. The thread is never unlocked; the Go
// runtime discards it when the goroutine returns.
func (r *Runner) spawner(ready chan<- error) {
	defer close(r.done)
	runtime.LockOSThread()
	if !r.opts.HostNetwork {
		if err := freshNetwork(); err != nil {
			ready <- fmt.Errorf("isolating tests in a network namespace: %w (run as root, or pass --host-network)", err)
			return
		}
	}
	if !r.opts.NoSession {
		if _, err := r.freshSession(); err != nil {
			r.noSes = true // attribution falls back to pid lineage alone
		}
	}
	ready <- nil
	for req := range r.reqs {
		var res spawnResult
		if !r.opts.HostNetwork {
			res.err = freshNetwork()
		}
		if res.err == nil && r.Sessions() {
			res.session, res.err = r.freshSession()
		}
		if res.err == nil {
			res.err = req.cmd.Start()
		}
		req.reply <- res
	}
}

// freshNetwork moves the calling thread into a new network namespace and
// brings its loopback interface up.
func freshNetwork() error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}

// freshSession writes the calling thread's loginuid, which makes the
// kernel give it a new audit session id, and returns that id.
func (r *Runner) freshSession() (string, error) {
	if err := os.WriteFile("/proc/thread-self/loginuid", []byte(r.uid), 0); err != nil {
		return "", err
	}
	b, err := os.ReadFile("/proc/thread-self/sessionid")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// Run checks t's prerequisites, runs its command and then, always, its
// cleanup. ctx cancels everything (the cleanup still runs, with its own
// timeout).
func (r *Runner) Run(ctx context.Context, t *Test) (*Execution, error) {
	scratch, err := os.MkdirTemp(r.opts.ScratchDir, "vigil-atomic-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	ex := &Execution{}
	depShell := t.dependencyExecutor()
	for _, d := range t.Dependencies {
		cmd, _ := t.Expand(d.PrereqCommand, r.opts.AtomicsDir)
		st := r.step(ctx, depShell, cmd, scratch, r.opts.PrereqTimeout)
		if st.ExitCode != 0 || st.Err != "" {
			ex.PrereqFailed = firstLine(d.Description)
			if ex.PrereqFailed == "" {
				ex.PrereqFailed = firstLine(d.PrereqCommand)
			}
			return ex, nil
		}
	}
	cmd, _ := t.Expand(t.Executor.Command, r.opts.AtomicsDir)
	ex.Test = r.step(ctx, t.Executor.Name, cmd, scratch, r.opts.Timeout)
	if strings.TrimSpace(t.Executor.CleanupCommand) != "" {
		clean, _ := t.Expand(t.Executor.CleanupCommand, r.opts.AtomicsDir)
		st := r.step(context.WithoutCancel(ctx), t.Executor.Name, clean, scratch, r.opts.Timeout)
		ex.Cleanup = &st
	}
	return ex, nil
}

// step runs one script with shell in dir, in its own process group; when
// it ends (or times out) whatever is left of the group is killed.
func (r *Runner) step(ctx context.Context, shell, script, dir string, timeout time.Duration) Step {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	path := "/bin/" + strings.ToLower(shell)
	if _, err := os.Stat(path); err != nil {
		if p, err := exec.LookPath(strings.ToLower(shell)); err == nil {
			path = p
		}
	}
	out, err := os.CreateTemp(dir, ".out-")
	if err != nil {
		return Step{Err: err.Error(), ExitCode: -1}
	}
	defer out.Close()
	cmd := exec.Command(path, "-c", script)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, r.opts.Env, out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	st := Step{Start: time.Now()}
	reply := make(chan spawnResult, 1)
	r.reqs <- spawnReq{cmd: cmd, reply: reply}
	res := <-reply
	if res.err != nil {
		st.End, st.Err, st.ExitCode = time.Now(), res.err.Error(), -1
		return st
	}
	st.PID, st.Session = cmd.Process.Pid, res.session
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-waited:
	case <-ctx.Done():
		st.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
		syscall.Kill(-st.PID, syscall.SIGKILL)
		werr = <-waited
	}
	st.End = time.Now()
	// Background children the script left behind share its group.
	syscall.Kill(-st.PID, syscall.SIGKILL)
	var ee *exec.ExitError
	switch {
	case werr == nil:
	case errors.As(werr, &ee):
		st.ExitCode = ee.ExitCode()
		if st.ExitCode < 0 {
			st.ExitCode = 128 + int(ee.Sys().(syscall.WaitStatus).Signal())
		}
	default:
		st.Err, st.ExitCode = werr.Error(), -1
	}
	if ctx.Err() != nil && !st.TimedOut {
		st.Err = "interrupted"
	}
	st.Output = readTail(out)
	return st
}

func readTail(f *os.File) string {
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return ""
	}
	start := max(0, end-outputTail)
	buf := make([]byte, end-start)
	n, _ := f.ReadAt(buf, start)
	return string(buf[:n])
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return clip(s)
}

// Marker runs /bin/true with one argument in the host's namespaces, so
// its exec event shows when everything before it has reached the server.
func Marker(ctx context.Context, arg string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, MarkerPath(), arg).Run()
}

// MarkerPath is the program Marker runs, as its CommandLine starts.
func MarkerPath() string {
	if _, err := os.Stat("/bin/true"); err == nil {
		return "/bin/true"
	}
	return "/usr/bin/true"
}
