package action

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// KillResult is the output of a kill.
type KillResult struct {
	Killed []ProcRef `json:"killed"`
}

// ProcRef names one process: pid and start time.
type ProcRef struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start_time"`
	Comm  string `json:"comm"`
}

// ErrProcessGone: no process has that pid and start time (it exited, or the
// pid now belongs to another process, which is left alone).
var ErrProcessGone = errors.New("no such process (exited, or its pid was reused by another process)")

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// openProcess returns a pidfd for the process with pid and start time. The
// pidfd is opened first and the start time read after: if it matches, the
// pidfd refers to that very process, and signals sent through it can never
// reach a process that later reuses the pid.
func openProcess(pid int, start uint64) (int, procStat, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return -1, procStat{}, ErrProcessGone
		}
		return -1, procStat{}, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	st, err := readStat(pid)
	if err != nil || st.Start != start {
		unix.Close(fd)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return -1, st, fmt.Errorf("pid %d start time %d: %w", pid, start, ErrProcessGone)
		}
		return -1, st, err
	}
	return fd, st, nil
}

// Kill kills the process with pid and start time (SIGKILL), and with tree
// its descendants too. A tree is first stopped (SIGSTOP, repeated until no
// new child appears) so nothing forks while it is killed. It refuses pid 1,
// the agent itself and any tree holding the agent. It waits up to five
// seconds for the root to exit.
func Kill(pid int, start uint64, tree bool) (*KillResult, error) {
	self := os.Getpid()
	if pid == 1 || pid == self {
		return nil, fmt.Errorf("kill: refusing to kill pid %d (init or the agent)", pid)
	}
	root, st, err := openProcess(pid, start)
	if err != nil {
		return nil, fmt.Errorf("kill: %w", err)
	}
	defer unix.Close(root)
	res := &KillResult{}
	fds := map[int]int{} // pid → pidfd of descendants
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	refs := map[int]ProcRef{}
	if tree {
		// Refuse a tree holding the agent before stopping anything.
		if _, err := descendants(pid, self); err != nil {
			return nil, fmt.Errorf("kill: %w", err)
		}
		if err := unix.PidfdSendSignal(root, unix.SIGSTOP, nil, 0); err != nil {
			return nil, fmt.Errorf("kill: stop %d: %w", pid, err)
		}
		for round := 0; round < 10; round++ {
			kids, err := descendants(pid, self)
			if err != nil {
				unix.PidfdSendSignal(root, unix.SIGCONT, nil, 0)
				return nil, fmt.Errorf("kill: %w", err)
			}
			grown := false
			for _, k := range kids {
				if _, ok := fds[k.PID]; ok {
					continue
				}
				fd, _, err := openProcess(k.PID, k.Start)
				if err != nil {
					continue // exited meanwhile
				}
				fds[k.PID], refs[k.PID], grown = fd, ProcRef{k.PID, k.Start, k.Comm}, true
				unix.PidfdSendSignal(fd, unix.SIGSTOP, nil, 0)
			}
			if !grown {
				break
			}
		}
	}
	for p, fd := range fds {
		if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err == nil {
			res.Killed = append(res.Killed, refs[p])
		}
	}
	if err := unix.PidfdSendSignal(root, unix.SIGKILL, nil, 0); err != nil {
		return nil, fmt.Errorf("kill %d: %w", pid, err)
	}
	res.Killed = append([]ProcRef{{pid, start, st.Comm}}, res.Killed...)
	// The pidfd becomes readable when the process exits.
	fdset := []unix.PollFd{{Fd: int32(root), Events: unix.POLLIN}}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n, err := unix.Poll(fdset, 100)
		if err == nil && n > 0 {
			return res, nil
		}
	}
	return res, fmt.Errorf("kill: pid %d did not exit within 5s of SIGKILL", pid)
}

// descendants lists the processes below pid (by parent links in /proc). It
// fails if the agent (self) is among them.
func descendants(pid, self int) ([]procStat, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	children := map[int][]procStat{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(p)
		if err != nil {
			continue
		}
		children[st.PPID] = append(children[st.PPID], st)
	}
	var out []procStat
	queue := []int{pid}
	seen := map[int]bool{pid: true}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if seen[c.PID] {
				continue
			}
			if c.PID == self {
				return nil, fmt.Errorf("refusing to kill the tree of %d: it holds the agent", pid)
			}
			seen[c.PID] = true
			out = append(out, c)
			queue = append(queue, c.PID)
		}
	}
	return out, nil
}
