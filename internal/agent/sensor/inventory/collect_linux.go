package inventory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// fileSig identifies a file's version without reading it.
type fileSig struct {
	size, mtime int64
	ino         uint64
}

func statSig(path string) (fileSig, bool) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileSig{}, false
	}
	return fileSig{size: st.Size, mtime: st.Mtim.Nano(), ino: st.Ino}, true
}

// collector gathers one Snapshot at a time, reusing what has not changed
// since the last collection (parsed package databases, the owners of
// unchanged listening sockets, parsed unit files). It is used by one
// goroutine only.
type collector struct {
	s *Sensor

	dpkgSig  fileSig
	dpkg     []Package
	rpmSig   string
	rpm      []Package
	owners   map[uint64]owner // socket inode → process, for the last set of listening inodes
	units    map[string]unitCache
	cgroup   string // the cgroup directory holding system.slice, "" if none
	errs     []string
	packages string // what Status.Packages says
}

type owner struct {
	pid        int
	image, cmd string
	found      bool
}

type unitCache struct {
	sig  fileSig
	exec string
}

func newCollector(s *Sensor) *collector {
	c := &collector{s: s, units: map[string]unitCache{}, owners: map[uint64]owner{}}
	for _, d := range []string{"/sys/fs/cgroup/system.slice", "/sys/fs/cgroup/unified/system.slice", "/sys/fs/cgroup/systemd/system.slice"} {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			c.cgroup = d
			break
		}
	}
	return c
}

func (c *collector) path(p string) string { return filepath.Join(c.s.opts.Root, p) }

func (c *collector) fail(kind string, err error) {
	c.errs = append(c.errs, kind+": "+err.Error())
}

// collect reads everything once. A kind that fails is left out of Have and
// its error is kept for Status.
func (c *collector) collect(ctx context.Context) *Snapshot {
	c.errs = c.errs[:0]
	snap := &Snapshot{Time: time.Now().UTC(), Have: map[string]bool{}}
	if o, err := c.os(); err != nil {
		c.fail(KindOS, err)
	} else {
		snap.OS, snap.Have[KindOS] = o, true
	}
	if ps, err := c.packagesNow(ctx); err != nil {
		c.fail(KindPackage, err)
	} else if ps != nil {
		snap.Packages, snap.Have[KindPackage] = ps, true
	}
	if us, err := c.users(); err != nil {
		c.fail(KindUser, err)
	} else {
		snap.Users, snap.Have[KindUser] = us, true
	}
	if gs, err := c.groups(); err != nil {
		c.fail(KindGroup, err)
	} else {
		snap.Groups, snap.Have[KindGroup] = gs, true
	}
	if ps, err := c.ports(snap.Users); err != nil {
		c.fail(KindPort, err)
	} else {
		snap.Ports, snap.Have[KindPort] = ps, true
	}
	if ss, err := c.services(); err != nil {
		c.fail(KindService, err)
	} else {
		snap.Services, snap.Have[KindService] = ss, true
	}
	if ms, err := c.modules(); err != nil {
		c.fail(KindModule, err)
	} else {
		snap.Modules, snap.Have[KindModule] = ms, true
	}
	return snap
}

// err returns the collection errors of the last collect, nil if none.
func (c *collector) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(c.errs, "; "))
}

func (c *collector) os() (OS, error) {
	var o OS
	f, err := os.Open(c.path("/etc/os-release"))
	if errors.Is(err, fs.ErrNotExist) {
		f, err = os.Open(c.path("/usr/lib/os-release"))
	}
	if err == nil {
		o, err = ParseOSRelease(f)
		f.Close()
	}
	var u unix.Utsname
	if uerr := unix.Uname(&u); uerr == nil {
		o.KernelName = clean(unix.ByteSliceToString(u.Sysname[:]))
		o.KernelRelease = clean(unix.ByteSliceToString(u.Release[:]))
		o.KernelVersion = clean(unix.ByteSliceToString(u.Version[:]))
		o.Machine = clean(unix.ByteSliceToString(u.Machine[:]))
		o.Hostname = clean(unix.ByteSliceToString(u.Nodename[:]))
		err = nil // the kernel alone is worth reporting
	}
	return o, err
}

// packagesNow returns the installed packages of every package manager the
// host has; nil (and no error) when it has none. Each database is parsed
// again only when it changed.
func (c *collector) packagesNow(ctx context.Context) ([]Package, error) {
	var mgrs []string
	var out []Package
	status := c.path("/var/lib/dpkg/status")
	if sig, ok := statSig(status); ok {
		if sig != c.dpkgSig || c.dpkg == nil {
			f, err := os.Open(status)
			if err != nil {
				return nil, err
			}
			ps, skipped, err := ParseDpkgStatus(f)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", status, err)
			}
			if skipped > 0 {
				c.s.opts.Logger.Warn("inventory: dpkg status entries skipped", "count", skipped)
			}
			c.dpkg, c.dpkgSig = ps, sig
		}
		mgrs = append(mgrs, "dpkg")
		out = append(out, c.dpkg...)
	}
	if rpmBin, err := exec.LookPath("rpm"); err == nil {
		if sig, ok := c.rpmDBSig(); ok {
			if sig != c.rpmSig || c.rpm == nil {
				ps, err := c.queryRPM(ctx, rpmBin)
				if err != nil {
					return nil, err
				}
				c.rpm, c.rpmSig = ps, sig
			}
			mgrs = append(mgrs, "rpm")
			out = append(out, c.rpm...)
		}
	}
	if len(mgrs) == 0 {
		c.packages = "none"
		return nil, nil
	}
	c.packages = strings.Join(mgrs, "+")
	if out == nil {
		out = []Package{}
	}
	return out, nil
}

// rpmDBSig identifies the rpm database's version by its files: the SQLite
// database of rpm ≥ 4.16 or the older Berkeley DB files.
func (c *collector) rpmDBSig() (string, bool) {
	var b strings.Builder
	found := false
	for _, dir := range []string{"/var/lib/rpm", "/usr/lib/sysimage/rpm"} {
		ents, err := os.ReadDir(c.path(dir))
		if err != nil {
			continue
		}
		for _, e := range ents {
			if sig, ok := statSig(filepath.Join(c.path(dir), e.Name())); ok {
				found = true
				fmt.Fprintf(&b, "%s/%s:%d:%d:%d;", dir, e.Name(), sig.size, sig.mtime, sig.ino)
			}
		}
	}
	return b.String(), found
}

// queryRPM runs rpm itself: the agent does not link SQLite (a deps test
// forbids it), and rpm's query format is stable across versions.
func (c *collector) queryRPM(ctx context.Context, rpmBin string) ([]Package, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	args := []string{"-qa", "--queryformat", RPMQueryFormat}
	if root := c.s.opts.Root; root != "/" {
		args = append(args, "--root", root)
	}
	cmd := exec.CommandContext(ctx, rpmBin, args...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{b: &stderr, n: 4096}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("rpm: %w", err)
	}
	ps, skipped, perr := ParseRPM(io.LimitReader(stdout, 256<<20))
	io.Copy(io.Discard, stdout)
	werr := cmd.Wait()
	switch {
	case perr != nil:
		return nil, fmt.Errorf("rpm -qa: %w", perr)
	case werr != nil:
		return nil, fmt.Errorf("rpm -qa: %w: %s", werr, strings.TrimSpace(stderr.String()))
	}
	if skipped > 0 {
		c.s.opts.Logger.Warn("inventory: rpm lines skipped", "count", skipped)
	}
	if ps == nil {
		ps = []Package{}
	}
	return ps, nil
}

type limitedBuffer struct {
	b *bytes.Buffer
	n int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *collector) users() ([]User, error) {
	f, err := os.Open(c.path("/etc/passwd"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	us, _, err := ParsePasswd(f)
	if us == nil && err == nil {
		us = []User{}
	}
	return us, err
}

func (c *collector) groups() ([]Group, error) {
	f, err := os.Open(c.path("/etc/group"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gs, _, err := ParseGroup(f)
	if gs == nil && err == nil {
		gs = []Group{}
	}
	return gs, err
}

// ports lists the listening sockets of the agent's network namespace and
// the process holding each. Owners are found by walking /proc/*/fd for
// "socket:[inode]" links, which is done only when the set of listening
// inodes changed since the last collection.
func (c *collector) ports(users []User) ([]Port, error) {
	var out []Port
	for _, f := range []struct{ file, proto string }{
		{"/proc/net/tcp", "tcp"}, {"/proc/net/tcp6", "tcp"}, {"/proc/net/udp", "udp"}, {"/proc/net/udp6", "udp"},
	} {
		fh, err := os.Open(f.file)
		if errors.Is(err, fs.ErrNotExist) {
			continue // no IPv6, say
		}
		if err != nil {
			return nil, err
		}
		ps, _, err := ParseProcNet(fh, f.proto)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.file, err)
		}
		out = append(out, ps...)
	}
	missing := false
	for _, p := range out {
		if _, ok := c.owners[p.Inode]; !ok {
			missing = true
			break
		}
	}
	if missing || len(c.owners) != len(out) {
		c.owners = socketOwners(out)
	}
	names := make(map[uint32]string, len(users))
	for _, u := range users {
		if _, ok := names[u.UID]; !ok {
			names[u.UID] = u.Name
		}
	}
	for i := range out {
		o := c.owners[out[i].Inode]
		out[i].PID, out[i].Image, out[i].CommandLine = o.pid, o.image, o.cmd
		out[i].User = names[out[i].UID]
	}
	slices.SortFunc(out, func(a, b Port) int { return strings.Compare(portKey(a), portKey(b)) })
	// Two sockets on one address and port (SO_REUSEPORT) are one port.
	out = slices.CompactFunc(out, func(a, b Port) bool { return portKey(a) == portKey(b) })
	if out == nil {
		out = []Port{}
	}
	return out, nil
}

// socketOwners maps each listening socket's inode to the lowest pid holding
// it (the parent, usually, for sockets inherited across fork).
func socketOwners(ports []Port) map[uint64]owner {
	want := make(map[uint64]owner, len(ports))
	for _, p := range ports {
		want[p.Inode] = owner{}
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return want
	}
	var buf [64]byte
	for _, pe := range procs {
		pid, err := strconv.Atoi(pe.Name())
		if err != nil || pid <= 0 {
			continue
		}
		dir := "/proc/" + pe.Name() + "/fd"
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue // gone, or not ours to read
		}
		for _, fd := range fds {
			n, err := unix.Readlink(dir+"/"+fd.Name(), buf[:])
			if err != nil || n < 9 || string(buf[:8]) != "socket:[" {
				continue
			}
			ino, err := strconv.ParseUint(string(buf[8:n-1]), 10, 64)
			if err != nil {
				continue
			}
			o, ok := want[ino]
			if !ok || (o.found && o.pid <= pid) {
				continue
			}
			image, _ := os.Readlink("/proc/" + pe.Name() + "/exe")
			cmd, _ := os.ReadFile("/proc/" + pe.Name() + "/cmdline")
			if len(cmd) > MaxValue {
				cmd = cmd[:MaxValue]
			}
			want[ino] = owner{pid: pid, image: clean(image), cmd: clean(strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))), found: true}
		}
	}
	return want
}

// unitDirs are searched for unit files, in systemd's order of precedence:
// a unit in /etc overrides one of the same name in /run or /usr/lib.
var unitDirs = []string{"/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}

// services lists systemd service units with their enabled state (from the
// symbolic links systemctl enable makes under /etc/systemd/system) and
// whether they run (a populated cgroup named after them), without talking
// to systemd.
func (c *collector) services() ([]Service, error) {
	units := map[string]*Service{}
	var order []string
	seenDir := map[string]bool{}
	for _, d := range unitDirs {
		dir := c.path(d)
		real, err := filepath.EvalSymlinks(dir)
		if err != nil || seenDir[real] {
			continue // absent, or /lib → /usr/lib already read
		}
		seenDir[real] = true
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			name := e.Name()
			if !strings.HasSuffix(name, ".service") || units[name] != nil || e.IsDir() {
				continue
			}
			p := filepath.Join(dir, name)
			s := &Service{Name: clean(name), State: "disabled", Path: clean(filepath.Join(d, name))}
			if e.Type()&fs.ModeSymlink != 0 {
				if t, err := os.Readlink(p); err == nil && t == "/dev/null" {
					s.State = "masked"
				}
			}
			if s.State != "masked" {
				s.ExecStart = c.execStart(p)
			}
			units[name] = s
			order = append(order, name)
		}
	}
	if len(seenDir) == 0 {
		return nil, errors.New("no systemd unit directory")
	}
	// Enabled: linked from a target's .wants or .requires directory.
	links, _ := filepath.Glob(c.path("/etc/systemd/system/*.wants/*.service"))
	more, _ := filepath.Glob(c.path("/etc/systemd/system/*.requires/*.service"))
	for _, l := range append(links, more...) {
		name := filepath.Base(l)
		if s := units[name]; s != nil {
			if s.State != "masked" {
				s.State = "enabled"
			}
			continue
		}
		// An instance of a template (getty@tty1.service → getty@.service).
		if at := strings.IndexByte(name, '@'); at > 0 {
			if t := units[name[:at+1]+".service"]; t != nil {
				units[name] = &Service{Name: clean(name), State: "enabled", Path: t.Path, ExecStart: t.ExecStart}
				order = append(order, name)
			}
		}
	}
	for name := range c.running() {
		if s := units[name]; s != nil {
			s.Running = true
		}
	}
	slices.Sort(order)
	out := make([]Service, 0, len(order))
	for _, n := range order {
		out = append(out, *units[n])
	}
	return out, nil
}

func (c *collector) execStart(path string) string {
	sig, ok := statSig(path)
	if !ok {
		return ""
	}
	if u, ok := c.units[path]; ok && u.sig == sig {
		return u.exec
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	exec, _ := ParseUnitExecStart(f)
	if len(c.units) > 10_000 {
		clear(c.units)
	}
	c.units[path] = unitCache{sig: sig, exec: exec}
	return exec
}

// running returns the service units with a populated cgroup under
// system.slice (cgroup v2: cgroup.events says "populated 1"; v1: the
// systemd hierarchy's cgroup.procs is not empty), looking three levels
// deep for nested slices.
func (c *collector) running() map[string]bool {
	out := map[string]bool{}
	if c.cgroup == "" {
		return out
	}
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			p := filepath.Join(dir, e.Name())
			switch {
			case strings.HasSuffix(e.Name(), ".service"):
				if b, err := os.ReadFile(filepath.Join(p, "cgroup.events")); err == nil {
					if bytes.Contains(b, []byte("populated 1")) {
						out[e.Name()] = true
					}
				} else if b, err := os.ReadFile(filepath.Join(p, "cgroup.procs")); err == nil && len(bytes.TrimSpace(b)) > 0 {
					out[e.Name()] = true
				}
			case strings.HasSuffix(e.Name(), ".slice") && depth < 3:
				walk(p, depth+1)
			}
		}
	}
	walk(c.cgroup, 0)
	return out
}

// modules reads the kernel's module list. A kernel built without module
// support has no /proc/modules: that is an empty list, not an error.
func (c *collector) modules() ([]Module, error) {
	f, err := os.Open(c.s.opts.ProcModules)
	if errors.Is(err, fs.ErrNotExist) {
		return []Module{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ms, _, err := ParseModules(f)
	if ms == nil && err == nil {
		ms = []Module{}
	}
	return ms, err
}
