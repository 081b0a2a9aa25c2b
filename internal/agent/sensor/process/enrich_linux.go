//go:build linux

package process

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/vigil-edr/vigil/internal/agent/procfs"
	"github.com/vigil-edr/vigil/internal/agent/rawio"
)

// parents remembers the Image and CommandLine of recent execs by pid, in a
// ring of fixed size: the oldest entry goes when a new pid comes. A pid that
// was reused without an exec in between still shows the old program; the
// ring's size bounds how long that can last. Only the receiver goroutine
// uses it.
type parents struct {
	m    map[string]parent
	ring []string
	next int
}

// parent is a process's program and start time (procfs.Stat.Start in
// decimal, "" when unknown).
// parent is what an exec event told about a process, kept for its
// children's events; cgroup is empty when it was not known.
type parent struct {
	image, cmdline, start string
	cgroup                cgroupInfo
}

func newParents(n int) *parents {
	return &parents{m: make(map[string]parent, n), ring: make([]string, n)}
}

func (p *parents) put(pid string, v parent) {
	if _, ok := p.m[pid]; !ok {
		if old := p.ring[p.next]; old != "" {
			delete(p.m, old)
		}
		p.ring[p.next] = pid
		p.next = (p.next + 1) % len(p.ring)
	}
	p.m[pid] = v
}

// get returns the parent's program, from the table or else from /proc
// (remembered for the next child, also when /proc has nothing: a parent
// that is gone stays gone).
func (p *parents) get(pid string) (parent, bool) {
	if v, ok := p.m[pid]; ok {
		return v, v.image != ""
	}
	if pid == "" || pid == "0" {
		return parent{}, false
	}
	exe, err := os.Readlink("/proc/" + pid + "/exe")
	if err != nil {
		p.put(pid, parent{})
		return parent{}, false
	}
	v := parent{image: exe}
	if b, err := os.ReadFile("/proc/" + pid + "/cmdline"); err == nil {
		v.cmdline = procCmdline(b)
	}
	if b, err := os.ReadFile("/proc/" + pid + "/stat"); err == nil {
		if st, err := procfs.ParseStat(b); err == nil {
			v.start = uitoa(st.Start)
		}
	}
	p.put(pid, v)
	return v, true
}

// procCmdline turns the NUL-separated /proc/<pid>/cmdline into the
// space-joined form CommandLine uses.
func procCmdline(b []byte) string {
	b = bytes.TrimRight(b, "\x00")
	return strings.ReplaceAll(string(b), "\x00", " ")
}

// statBuf holds one /proc/PID/stat: 52 numeric fields and a command name
// of at most 64 bytes fit with room to spare.
type statBuf [2048]byte

// startTime returns the start time (procfs.Stat.Start in decimal) of the
// process pid that the exec event describes, and whether /proc still has a
// process with that pid. The start time is "" unless that process's parent
// and command name are the event's ppid and comm: otherwise it exited and
// its pid was reused, or it was reparented or exec'd again since, and the
// value is left out rather than guessed.
func (b *statBuf) startTime(pid, ppid, comm string) (start string, alive bool) {
	// open+read+close into a reused buffer, as for the cgroup.
	n, err := rawio.ReadFile("/proc/"+pid+"/stat", b[:])
	if err != nil {
		return "", false
	}
	if n <= 0 || n == len(b) {
		return "", true
	}
	st, err := procfs.ParseStat(b[:n])
	var num [20]byte
	if err != nil || st.Comm != comm || string(strconv.AppendInt(num[:0], int64(st.PPID), 10)) != ppid ||
		string(strconv.AppendInt(num[:0], int64(st.PID), 10)) != pid {
		return "", true
	}
	return uitoa(st.Start), true
}

// cgroupInfo is what /proc/<pid>/cgroup tells about a process.
type cgroupInfo struct {
	path, id, container string
}

// cgroups caches the cgroup id (the inode of the cgroup directory, cgroup v2
// only) and container id by cgroup path. Only the receiver goroutine uses it.
type cgroups struct {
	m   map[string]cgroupInfo
	buf [4096]byte
}

const maxCgroups = 4096

func (c *cgroups) lookup(pid string) (cgroupInfo, bool) {
	// open+read+close into a reused buffer: on the hot path, and most
	// short-lived processes are already gone (one failed open).
	n, err := rawio.ReadFile("/proc/"+pid+"/cgroup", c.buf[:])
	if err != nil || n <= 0 {
		return cgroupInfo{}, false
	}
	path, v2 := cgroupPath(c.buf[:n])
	if path == "" {
		return cgroupInfo{}, false
	}
	if ci, ok := c.m[path]; ok {
		return ci, true
	}
	ci := cgroupInfo{path: path, container: containerID(path)}
	if v2 {
		var st syscall.Stat_t
		if syscall.Stat("/sys/fs/cgroup"+path, &st) == nil {
			ci.id = uitoa(st.Ino)
		}
	}
	if c.m == nil || len(c.m) >= maxCgroups {
		c.m = make(map[string]cgroupInfo)
	}
	c.m[path] = ci
	return ci, true
}

// cgroupPath returns the unified (v2) path "0::/…", or else the v1
// name=systemd or first hierarchy's path.
func cgroupPath(b []byte) (path string, v2 bool) {
	var first string
	for line := range strings.SplitSeq(string(b), "\n") {
		id, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		ctrl, p, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		if id == "0" && ctrl == "" {
			return p, true
		}
		if ctrl == "name=systemd" || first == "" {
			first = p
		}
	}
	return first, false
}

// containerID finds a 64-hex-digit container id in a cgroup path, as
// docker, containerd, CRI-O and podman name them
// (/docker/<id>, docker-<id>.scope, cri-containerd-<id>.scope, libpod-<id>).
func containerID(path string) string {
	run := 0
	for i := 0; i < len(path); i++ {
		c := path[i]
		if '0' <= c && c <= '9' || 'a' <= c && c <= 'f' {
			run++
			continue
		}
		if run == 64 {
			return path[i-64 : i]
		}
		run = 0
	}
	if run == 64 {
		return path[len(path)-64:]
	}
	return ""
}

func uitoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

// fileKey identifies one version of a file.
type fileKey struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

func keyOf(st *syscall.Stat_t) fileKey {
	return fileKey{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano()}
}

// hashJob is one executable to hash. done is closed when sum is set ("" when
// the file could not be hashed).
type hashJob struct {
	path string
	key  fileKey
	done chan struct{}
	sum  string
}

// hasher computes SHA-256 of executables with a fixed number of workers and
// a bounded queue, caching results by fileKey.
type hasher struct {
	maxBytes int64
	jobs     chan *hashJob

	mu       sync.Mutex
	cache    map[fileKey]string
	inflight map[fileKey]*hashJob
}

const maxHashCache = 4096

func newHasher(maxBytes int64, queue int) *hasher {
	return &hasher{
		maxBytes: maxBytes,
		jobs:     make(chan *hashJob, queue),
		cache:    make(map[fileKey]string),
		inflight: make(map[fileKey]*hashJob),
	}
}

// lookup returns the cached hash of path, or a job that will produce it
// (none when cacheOnly). missing is true when the file does not exist any
// more (no Hashes field, not counted as unhashed); ok false means it will
// not be hashed (too big, queue full, cacheOnly).
func (h *hasher) lookup(path string, cacheOnly bool) (sum string, job *hashJob, missing, ok bool) {
	var st syscall.Stat_t
	// A normal system call, not rawio: the executable may be on a network
	// or FUSE file system, where a stat can wait.
	if path == "" || syscall.Stat(path, &st) != nil {
		return "", nil, true, false
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Size > h.maxBytes {
		return "", nil, false, false
	}
	k := keyOf(&st)
	h.mu.Lock()
	defer h.mu.Unlock()
	if s, hit := h.cache[k]; hit {
		return s, nil, false, s != ""
	}
	if j := h.inflight[k]; j != nil {
		return "", j, false, true
	}
	if cacheOnly {
		return "", nil, false, false
	}
	j := &hashJob{path: path, key: k, done: make(chan struct{})}
	select {
	case h.jobs <- j:
		h.inflight[k] = j
		return "", j, false, true
	default:
		return "", nil, false, false
	}
}

// work hashes jobs until the queue is closed.
func (h *hasher) work() {
	for j := range h.jobs {
		j.sum = hashFile(j.path, j.key)
		h.mu.Lock()
		delete(h.inflight, j.key)
		if len(h.cache) >= maxHashCache {
			clear(h.cache)
		}
		h.cache[j.key] = j.sum
		h.mu.Unlock()
		close(j.done)
	}
}

// hashFile hashes path if it is still the file that was statted.
func hashFile(path string, k fileKey) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var st syscall.Stat_t
	if syscall.Fstat(int(f.Fd()), &st) != nil || keyOf(&st) != k {
		return ""
	}
	d := sha256.New()
	if _, err := io.Copy(d, io.LimitReader(f, k.size)); err != nil {
		return ""
	}
	return hex.EncodeToString(d.Sum(nil))
}
