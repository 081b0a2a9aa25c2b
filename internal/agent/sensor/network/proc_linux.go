//go:build linux

package network

import (
	"bytes"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/vigil-edr/vigil/internal/agent/usernames"
)

// procKey names one process for its whole life: a pid is reused, a pid
// with its start time is not.
type procKey struct {
	pid   uint32
	start uint64
}

// procs remembers what the sensor learnt about each process, so a process
// that makes a thousand connections costs one look at /proc. It is bounded:
// when full it starts again empty (the working set refills in one pass).
// Only the sensor's reader goroutine uses it.
type procs struct {
	max     int
	byKey   map[procKey]*proc
	parents map[uint32]string // ppid -> image, same bound
	users   *usernames.Cache
	buf     []byte
}

func newProcs(max int) *procs {
	return &procs{max: max, byKey: map[procKey]*proc{}, parents: map[uint32]string{},
		users: usernames.New("/etc/passwd"), buf: make([]byte, 4096)}
}

// lookup returns the process of r. The kernel's view (the exec'd path and
// argv copied at syscall time) is used when /proc no longer has the
// process, so a process that connected and exited at once is still named.
func (c *procs) lookup(r *record) *proc {
	k := procKey{r.PID, r.StartTime}
	if p, ok := c.byKey[k]; ok {
		return p
	}
	if len(c.byKey) >= c.max {
		clear(c.byKey)
		clear(c.parents)
	}
	p := &proc{uid: strconv.FormatUint(uint64(r.UID), 10)}
	p.user = c.users.Name(p.uid)
	pidDir := "/proc/" + strconv.FormatUint(uint64(r.PID), 10)
	p.image = c.readlink(pidDir + "/exe")
	if p.image == "" {
		p.image = validUTF8(string(r.Exe))
	}
	if p.image == "" && len(r.Comm) > 0 {
		// Neither /proc nor an exec seen since the sensor started: the
		// kernel's 16-byte command name is all there is.
		p.image = validUTF8(string(r.Comm))
	}
	if len(r.Args) > 0 && len(r.Args) < 255 {
		p.cmdline = argv(r.Args)
	} else if b, err := os.ReadFile(pidDir + "/cmdline"); err == nil && len(b) > 0 {
		p.cmdline = argv(b)
	} else {
		p.cmdline = argv(r.Args) // truncated at 255 bytes
	}
	if r.PPID != 0 {
		pi, ok := c.parents[r.PPID]
		if !ok {
			pi = c.readlink("/proc/" + strconv.FormatUint(uint64(r.PPID), 10) + "/exe")
			c.parents[r.PPID] = pi
		}
		p.parentImage = pi
	}
	c.byKey[k] = p
	return p
}

// current describes a live process by pid alone (the fallback mechanism
// and the listening report, which have no start time from the kernel).
func (c *procs) current(pid, uid uint32) *proc {
	p := &proc{uid: strconv.FormatUint(uint64(uid), 10)}
	p.user = c.users.Name(p.uid)
	if pid == 0 {
		return p
	}
	dir := "/proc/" + strconv.FormatUint(uint64(pid), 10)
	p.image = c.readlink(dir + "/exe")
	if b, err := os.ReadFile(dir + "/cmdline"); err == nil {
		p.cmdline = argv(b)
	}
	return p
}

func (c *procs) readlink(path string) string {
	n, err := unix.Readlink(path, c.buf)
	if err != nil || n <= 0 {
		return ""
	}
	return validUTF8(strings.TrimSuffix(string(c.buf[:n]), " (deleted)"))
}

// ppidOf reads the parent pid from /proc/<pid>/stat, 0 when unknown.
func ppidOf(pid uint32) uint32 {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseUint(f[1], 10, 32)
	return uint32(n)
}
