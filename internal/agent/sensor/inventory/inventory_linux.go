package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-edr/vigil/internal/agent/fdwait"
	"github.com/vigil-edr/vigil/internal/event"
)

// Run collects at start (comparing with the state saved by the previous
// run, when Options.StateDir is set), sends a full snapshot, then compares
// every DiffEvery, when a trigger file changes and when the kernel
// announces a module, and sends a full snapshot every SnapshotEvery, until
// ctx ends.
func (s *Sensor) Run(ctx context.Context, out func(*event.Event)) error {
	c := newCollector(s)
	// step collects, compares with prev (when there is one) and, for a
	// full snapshot, sends it; the result is the next comparison's prev.
	step := func(prev *Snapshot, trigger string, full bool) *Snapshot {
		next := c.collect(ctx)
		n := 0
		if prev != nil {
			n = s.compare(prev, next, trigger, out)
		}
		s.finish(c, next)
		if prev != nil {
			carry(prev, next)
		}
		if full {
			s.snapshot(next, out)
		}
		if full || n > 0 {
			s.saveState(next)
		}
		return next
	}
	// The trigger files' state is taken before the first collection, so a
	// change made while it runs is seen as a change afterwards.
	sig := s.watchSig()
	prev := step(s.loadState(), TriggerStart, true)

	modules := make(chan struct{}, 1)
	if !s.opts.NoUevent {
		if fd, err := openUevent(); err != nil {
			s.update(func(st *Status) { st.Uevent = "unavailable: " + err.Error() })
			s.opts.Logger.Warn("inventory: no kernel uevents, module loads are seen by the periodic comparison only", "err", err)
		} else {
			s.update(func(st *Status) { st.Uevent = "on" })
			done := make(chan struct{})
			defer func() { <-done }()
			go func() { defer close(done); s.readUevents(ctx, fd, modules) }()
		}
	}

	diffT := time.NewTicker(s.opts.DiffEvery)
	defer diffT.Stop()
	snapT := time.NewTicker(s.opts.SnapshotEvery)
	defer snapT.Stop()
	watchT := time.NewTicker(s.opts.WatchEvery)
	defer watchT.Stop()
	// A module's remove uevent can come while /proc/modules still lists it
	// (state Unloading): compare once more a moment later.
	recheck := time.NewTimer(time.Hour)
	recheck.Stop()
	defer recheck.Stop()

	// While the agent is over its CPU budget, periodic collections and
	// those started by trigger files wait (a due snapshot is taken at the
	// first comparison after); module uevents are still followed.
	pending, snapDue := false, false
	postpone := func() bool {
		if !s.opts.Throttle.On() {
			return false
		}
		s.update(func(st *Status) { st.Postponed++ })
		return true
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-diffT.C:
			if !postpone() {
				prev = step(prev, TriggerScan, snapDue)
				snapDue = false
			}
		case <-snapT.C:
			if postpone() {
				snapDue = true
			} else {
				prev = step(prev, TriggerScan, true)
			}
		case <-modules:
			prev = step(prev, TriggerUevent, false)
			recheck.Reset(time.Second)
		case <-recheck.C:
			prev = step(prev, TriggerUevent, false)
		case <-watchT.C:
			// Act once the trigger files have stopped changing for one
			// tick: dpkg rewrites its status file many times per run.
			now := s.watchSig()
			switch {
			case now != sig:
				sig, pending = now, true
			case pending && !postpone():
				pending = false
				prev = step(prev, TriggerWatch, false)
			}
		}
	}
}

// carry copies into next the kinds it failed to collect, from prev, so a
// failed collection is neither reported as everything removed nor lost from
// the saved state; they are marked carried and left out of snapshots.
func carry(prev, next *Snapshot) {
	for _, k := range Kinds {
		if next.Have[k] || !prev.Have[k] {
			continue
		}
		switch k {
		case KindOS:
			next.OS = prev.OS
		case KindPackage:
			next.Packages = prev.Packages
		case KindUser:
			next.Users = prev.Users
		case KindGroup:
			next.Groups = prev.Groups
		case KindPort:
			next.Ports = prev.Ports
		case KindService:
			next.Services = prev.Services
		case KindModule:
			next.Modules = prev.Modules
		}
		next.Have[k] = true
		if next.carried == nil {
			next.carried = map[string]bool{}
		}
		next.carried[k] = true
	}
}

func (s *Sensor) compare(prev, cur *Snapshot, trigger string, out func(*event.Event)) int {
	n := Diff(prev, cur, trigger, out)
	s.update(func(st *Status) { st.Diffs++; st.Changes += uint64(n) })
	return n
}

// finish records a collection's outcome in Status.
func (s *Sensor) finish(c *collector, snap *Snapshot) {
	err := c.err()
	if err != nil {
		s.opts.Logger.Warn("inventory: collection incomplete", "err", err)
	}
	items := map[string]int{KindOS: 1, KindPackage: len(snap.Packages), KindUser: len(snap.Users), KindGroup: len(snap.Groups),
		KindPort: len(snap.Ports), KindService: len(snap.Services), KindModule: len(snap.Modules)}
	for k := range items {
		if !snap.Have[k] {
			delete(items, k)
		}
	}
	s.update(func(st *Status) { st.Err, st.Items, st.Packages = err, items, c.packages })
}

func (s *Sensor) snapshot(snap *Snapshot, out func(*event.Event)) {
	// Only what was really collected goes into a snapshot: the server
	// replaces its inventory kind by kind.
	real := *snap
	real.Have = map[string]bool{}
	for k, ok := range snap.Have {
		if ok && !snap.carried[k] {
			real.Have[k] = true
		}
	}
	_, dropped, err := SnapshotEvents(&real, NewSnapshotID(snap.Time), out)
	if err != nil {
		s.opts.Logger.Error("inventory: snapshot", "err", err)
		return
	}
	if dropped > 0 {
		s.opts.Logger.Warn("inventory: items too large for a snapshot chunk left out", "count", dropped)
	}
	s.update(func(st *Status) { st.Snapshots++ })
}

// watchSig summarises the trigger files: the package databases, passwd and
// group, and the systemd directories whose links say what is enabled.
func (s *Sensor) watchSig() string {
	var b strings.Builder
	paths := []string{"/var/lib/dpkg/status", "/var/lib/rpm", "/var/lib/rpm/rpmdb.sqlite", "/var/lib/rpm/Packages",
		"/usr/lib/sysimage/rpm", "/usr/lib/sysimage/rpm/rpmdb.sqlite", "/etc/passwd", "/etc/group",
		"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}
	for i, p := range paths {
		paths[i] = filepath.Join(s.opts.Root, p)
	}
	wants, _ := filepath.Glob(filepath.Join(s.opts.Root, "/etc/systemd/system/*.wants"))
	for _, p := range append(paths, wants...) {
		if sig, ok := statSig(p); ok {
			fmt.Fprintf(&b, "%s:%d:%d:%d;", p, sig.size, sig.mtime, sig.ino)
		}
	}
	return b.String()
}

// openUevent joins the kernel's uevent multicast group (the one udev
// reads). Only uevents of the agent's network namespace arrive, which is
// the host's for a host agent.
func openUevent() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return -1, fmt.Errorf("uevent socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("uevent bind: %w", err)
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	return fd, nil
}

// readUevents signals modules (without blocking) for every module add or
// remove uevent until ctx ends, then closes fd. Other uevents are ignored.
// A receive buffer overrun (ENOBUFS) is treated as a module event: one
// may have been lost.
func (s *Sensor) readUevents(ctx context.Context, fd int, modules chan<- struct{}) {
	defer unix.Close(fd)
	// Waits are in poll(2) until a uevent comes or ctx ends (package
	// fdwait); a receive timeout instead woke the agent four times a
	// second for nothing, each a blocked system call for the runtime to
	// take back.
	wait, err := fdwait.New(ctx)
	if err != nil {
		s.update(func(st *Status) { st.Uevent = "stopped: " + err.Error() })
		return
	}
	defer wait.Close()
	buf := make([]byte, 16<<10)
	signal := func() {
		select {
		case modules <- struct{}{}:
		default:
		}
	}
	for ctx.Err() == nil {
		n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN):
			if _, err := wait.Wait(fd, -1); err != nil && ctx.Err() == nil {
				s.update(func(st *Status) { st.Uevent = "stopped: " + err.Error() })
				return
			}
			continue
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOBUFS):
			signal()
			continue
		case err != nil:
			s.update(func(st *Status) { st.Uevent = "stopped: " + err.Error() })
			return
		}
		u, err := ParseUevent(buf[:n])
		if err != nil || u.Subsystem != "module" || (u.Action != "add" && u.Action != "remove") {
			continue
		}
		s.update(func(st *Status) { st.Uevents++ })
		signal()
	}
}

// ---- state across restarts ----

// stateFile is StateDir/inventory.json: {"version": 1, "snapshot": S} with
// S the last collection (the JSON shapes of docs/inventory.md, plus "time"
// and "have"), written atomically.
type stateFile struct {
	Version  int       `json:"version"`
	Snapshot *Snapshot `json:"snapshot"`
}

const stateVersion = 1

func (s *Sensor) loadState() *Snapshot {
	if s.opts.StateDir == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(s.opts.StateDir, "inventory.json"))
	if err != nil {
		return nil
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil || st.Version != stateVersion || st.Snapshot == nil || st.Snapshot.Have == nil {
		s.opts.Logger.Warn("inventory: saved state unusable, starting afresh", "err", err)
		return nil
	}
	return st.Snapshot
}

func (s *Sensor) saveState(snap *Snapshot) {
	if s.opts.StateDir == "" {
		return
	}
	if err := writeAtomic(s.opts.StateDir, "inventory.json", stateFile{Version: stateVersion, Snapshot: snap}); err != nil {
		s.opts.Logger.Warn("inventory: saving state", "err", err)
	}
}

func writeAtomic(dir, name string, v any) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, name+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(dir, name))
}
