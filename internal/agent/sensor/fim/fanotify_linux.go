package fim

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-edr/vigil/internal/agent/fdwait"
	"github.com/vigil-edr/vigil/internal/agent/rawio"
)

// initFanotify creates the notification group: file handles of the
// directory plus the name (FAN_REPORT_DFID_NAME) and of the object
// (FAN_REPORT_FID), and a pidfd of the acting process where the kernel has
// it (5.15).
func (w *watcher) initFanotify() error {
	flags := uint(unix.FAN_CLASS_NOTIF | unix.FAN_CLOEXEC | unix.FAN_NONBLOCK | unix.FAN_REPORT_DFID_NAME | unix.FAN_REPORT_FID)
	fd, err := unix.FanotifyInit(flags|unix.FAN_REPORT_PIDFD, unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
	w.pidfds = err == nil
	if err != nil {
		fd, err = unix.FanotifyInit(flags, unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
	}
	if err != nil {
		return fmt.Errorf("fanotify_init: %w", err)
	}
	// Non-blocking, and read between waits in poll(2) (package fdwait):
	// in the runtime's poller every event would wake the agent even while
	// the sensor pauses between rounds.
	w.fan = fd
	w.mask = baseMask | unix.FAN_RENAME
	// Probe the mask on a directory that surely exists: FAN_RENAME is
	// refused (EINVAL) before Linux 5.17.
	probe := os.TempDir()
	if err := unix.FanotifyMark(fd, unix.FAN_MARK_ADD|unix.FAN_MARK_ONLYDIR, w.mask, unix.AT_FDCWD, probe); errors.Is(err, unix.EINVAL) {
		w.mask = baseMask | movedMask
	} else if err == nil {
		unix.FanotifyMark(fd, unix.FAN_MARK_REMOVE|unix.FAN_MARK_ONLYDIR, w.mask, unix.AT_FDCWD, probe)
	}
	if err := unix.FanotifyMark(fd, unix.FAN_MARK_ADD|unix.FAN_MARK_ONLYDIR, w.mask, unix.AT_FDCWD, probe); err != nil {
		unix.Close(w.fan)
		w.fan = -1
		return fmt.Errorf("fanotify_mark %s: %w", probe, err)
	}
	unix.FanotifyMark(fd, unix.FAN_MARK_REMOVE|unix.FAN_MARK_ONLYDIR, w.mask, unix.AT_FDCWD, probe)
	return nil
}

// mark adds a fanotify mark on dir and remembers its file handle, so that
// events name it without a system call.
func (w *watcher) mark(dir string) {
	if w.fan < 0 {
		w.marked[dir] = struct{}{}
		return
	}
	if _, ok := w.marked[dir]; ok {
		return
	}
	if err := unix.FanotifyMark(w.fan, unix.FAN_MARK_ADD|unix.FAN_MARK_ONLYDIR, w.mask, unix.AT_FDCWD, dir); err != nil {
		w.markErrs++
		if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) {
			w.setErr(fmt.Errorf("fanotify_mark %s: %w (%d directories not watched)", dir, err, w.markErrs))
		}
		return
	}
	w.marked[dir] = struct{}{}
	var sfs unix.Statfs_t
	if unix.Statfs(dir, &sfs) != nil {
		return
	}
	fsid := fsidBytes(sfs.Fsid)
	if _, ok := w.mounts[fsid]; !ok {
		if fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
			w.mounts[fsid] = fd
		}
	}
	if h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, dir, 0); err == nil {
		w.dirs[handleKey(fsid[:], h.Type(), h.Bytes())] = dir
	}
}

func fsidBytes(f unix.Fsid) [8]byte {
	var b [8]byte
	binary.NativeEndian.PutUint32(b[0:], uint32(f.Val[0]))
	binary.NativeEndian.PutUint32(b[4:], uint32(f.Val[1]))
	return b
}

func handleKey(fsid []byte, typ int32, h []byte) string {
	k := make([]byte, 0, 12+len(h))
	k = append(k, fsid...)
	k = binary.NativeEndian.AppendUint32(k, uint32(typ))
	return string(append(k, h...))
}

// dirPath names the directory of a file handle: from the handles recorded
// when marking, else by opening the handle (needs CAP_DAC_READ_SEARCH).
func (w *watcher) dirPath(fsid []byte, typ int32, h []byte) string {
	key := handleKey(fsid, typ, h)
	if p, ok := w.dirs[key]; ok {
		return p
	}
	mfd, ok := w.mounts[[8]byte(fsid)]
	if !ok {
		return ""
	}
	fd, err := unix.OpenByHandleAt(mfd, unix.NewFileHandle(typ, h), unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		return ""
	}
	defer unix.Close(fd)
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil || strings.HasSuffix(p, " (deleted)") || !strings.HasPrefix(p, "/") {
		return ""
	}
	if w.watched(p) {
		w.dirs[key] = p
	}
	return p
}

// follow reads fanotify events until ctx ends.
func (w *watcher) follow(ctx context.Context) error {
	wait, err := fdwait.New(ctx)
	if err != nil {
		return fmt.Errorf("fim: %w", err)
	}
	defer wait.Close()
	buf := make([]byte, 256<<10)
	last := time.Now()
	var pauser fdwait.Pauser
	for ctx.Err() == nil {
		n, err := unix.Read(w.fan, buf)
		switch {
		case errors.Is(err, unix.EAGAIN) || (err == nil && n == 0):
			// Nothing queued: wait for the next event, at most a second
			// (periodic work).
			if _, err := wait.Wait(w.fan, time.Second); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("fim: wait for fanotify: %w", err)
			}
			n = 0
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return fmt.Errorf("fim: read fanotify: %w", err)
		}
		took := time.Now()
		if n > 0 {
			if err := w.events(buf[:n]); err != nil {
				return err
			}
		}
		if time.Since(last) >= time.Second {
			w.periodic()
			last = time.Now()
		}
		if n == 0 || n == len(buf) {
			continue // waited, or probably more queued
		}
		// Let the next events gather in the kernel and take them in one
		// read: Round after this one, ThrottleRound while backing off.
		pause := w.s.opts.Round
		if w.s.opts.Throttle.On() {
			pause = w.s.opts.ThrottleRound
		}
		if !pauser.Pause(ctx, time.Until(took.Add(pause))) {
			return nil
		}
	}
	return nil
}

// periodic compares files written but not closed for a while and saves a
// changed baseline.
func (w *watcher) periodic() {
	for path, p := range w.pending {
		if time.Since(p.last) >= quietAfterModify {
			delete(w.pending, path)
			w.change(path, unix.FAN_CLOSE_WRITE, &p.proc)
		}
	}
	if w.dirty && time.Since(w.lastSave) >= saveEvery {
		w.save()
	}
}

// poll rescans every PollInterval until ctx ends.
func (w *watcher) poll(ctx context.Context) error {
	t := time.NewTicker(w.s.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			w.scan()
			w.save()
		}
	}
}

// fanotify event layout: struct fanotify_event_metadata (24 bytes) followed
// by information records, each a struct fanotify_event_info_header
// {u8 type; u8 pad; u16 len}. File handle records are {header; fsid [2]s32;
// struct file_handle {u32 handle_bytes; s32 handle_type; u8 f_handle[]};
// name NUL-terminated (the *_NAME types)}; a pidfd record is {header; s32}.
const metadataLen = 24

// events handles one read's worth of events.
func (w *watcher) events(b []byte) error {
	clear(w.procs)
	for len(b) >= metadataLen {
		evLen := int(binary.NativeEndian.Uint32(b[0:]))
		vers := b[4]
		metaLen := int(binary.NativeEndian.Uint16(b[6:]))
		mask := binary.NativeEndian.Uint64(b[8:])
		fd := int32(binary.NativeEndian.Uint32(b[16:]))
		pid := int32(binary.NativeEndian.Uint32(b[20:]))
		if vers != unix.FANOTIFY_METADATA_VERSION {
			return fmt.Errorf("fim: fanotify metadata version %d, want %d", vers, unix.FANOTIFY_METADATA_VERSION)
		}
		if evLen < metaLen || metaLen < metadataLen || evLen > len(b) {
			return fmt.Errorf("fim: malformed fanotify event (len %d, metadata %d, have %d)", evLen, metaLen, len(b))
		}
		if fd >= 0 {
			unix.Close(int(fd))
		}
		w.event(mask, pid, b[metaLen:evLen])
		b = b[evLen:]
	}
	return nil
}

// event handles one event with its information records.
func (w *watcher) event(mask uint64, pid int32, info []byte) {
	if mask&unix.FAN_Q_OVERFLOW != 0 {
		w.s.update(func(st *Status) {
			st.Overflows++
			st.Err = fmt.Errorf("fanotify queue overflowed %d times; rescanned", st.Overflows)
		})
		w.scan()
		return
	}
	var path, oldPath, newPath string
	pidfd := int32(unix.FAN_NOPIDFD)
	hasPidfd := false
	for len(info) >= 4 {
		typ := info[0]
		l := int(binary.NativeEndian.Uint16(info[2:]))
		if l < 4 || l > len(info) {
			break
		}
		rec := info[:l]
		info = info[l:]
		switch typ {
		case unix.FAN_EVENT_INFO_TYPE_PIDFD:
			if len(rec) >= 8 {
				pidfd, hasPidfd = int32(binary.NativeEndian.Uint32(rec[4:])), true
			}
		case unix.FAN_EVENT_INFO_TYPE_DFID_NAME, unix.FAN_EVENT_INFO_TYPE_DFID,
			unix.FAN_EVENT_INFO_TYPE_OLD_DFID_NAME, unix.FAN_EVENT_INFO_TYPE_NEW_DFID_NAME:
			p, ok := w.recordPath(rec)
			if !ok {
				continue
			}
			switch typ {
			case unix.FAN_EVENT_INFO_TYPE_OLD_DFID_NAME:
				oldPath = p
			case unix.FAN_EVENT_INFO_TYPE_NEW_DFID_NAME:
				newPath = p
			default:
				path = p
			}
		}
	}
	if hasPidfd && pidfd >= 0 {
		defer unix.Close(int(pidfd))
	}
	relevant := func(p string) bool { return p != "" && w.watched(p) }
	if !relevant(path) && !relevant(oldPath) && !relevant(newPath) {
		return
	}
	// A writer's modify, close and rename events usually come in one read:
	// /proc is read once per process and read.
	p, ok := w.procs[pid]
	if !ok || p.pid <= 0 {
		p = w.process(pid, pidfd, hasPidfd)
		if w.procs == nil {
			w.procs = make(map[int32]proc)
		}
		w.procs[pid] = p
	}
	switch {
	case mask&unix.FAN_RENAME != 0:
		w.rename(oldPath, newPath, &p)
	case mask&unix.FAN_MOVED_FROM != 0:
		w.rename(path, "", &p)
	case mask&unix.FAN_MOVED_TO != 0:
		w.rename("", path, &p)
	default:
		w.change(path, mask, &p)
	}
}

// recordPath reads the directory handle and name of a file handle record.
func (w *watcher) recordPath(rec []byte) (string, bool) {
	if len(rec) < 20 {
		return "", false
	}
	fsid := rec[4:12]
	hb := int(binary.NativeEndian.Uint32(rec[12:]))
	typ := int32(binary.NativeEndian.Uint32(rec[16:]))
	if 20+hb > len(rec) {
		return "", false
	}
	dir := w.dirPath(fsid, typ, rec[20:20+hb])
	if dir == "" {
		return "", false
	}
	name := rec[20+hb:]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	if len(name) == 0 || string(name) == "." {
		return dir, true
	}
	return filepath.Join(dir, string(name)), true
}

// process describes the acting process. With a pidfd, the image is kept only
// if the process was still running after /proc was read, so a reused pid
// cannot lend its image to another process's change.
func (w *watcher) process(pid, pidfd int32, hasPidfd bool) proc {
	p := proc{pid: pid}
	if pid <= 0 || (hasPidfd && pidfd < 0) {
		return p // exited before the event was read
	}
	dir := "/proc/" + strconv.Itoa(int(pid))
	// Raw system calls (package rawio): procfs, on the path of every change.
	image, err := rawio.Readlink(dir+"/exe", w.procBuf[:])
	if err == nil {
		p.image = strings.TrimSuffix(image, " (deleted)")
	}
	if n, err := rawio.ReadFile(dir+"/status", w.procBuf[:]); err == nil {
		if uid, ok := euid(w.procBuf[:n]); ok {
			p.user = w.userName(uid)
		}
	}
	if hasPidfd {
		if _, _, e := unix.RawSyscall6(unix.SYS_PIDFD_SEND_SIGNAL, uintptr(pidfd), 0, 0, 0, 0, 0); e != 0 {
			p.image, p.user = "", ""
		}
	}
	return p
}

// euid returns the effective uid from the text of /proc/<pid>/status.
func euid(status []byte) (uint32, bool) {
	for line := range bytes.SplitSeq(status, []byte{'\n'}) {
		if rest, ok := bytes.CutPrefix(line, []byte("Uid:")); ok {
			ids := strings.Fields(string(rest))
			if len(ids) < 2 {
				return 0, false
			}
			n, err := strconv.ParseUint(ids[1], 10, 32)
			return uint32(n), err == nil
		}
	}
	return 0, false
}

func (w *watcher) userName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if n := w.users.Name(id); n != "" {
		return n
	}
	return id
}

// change handles an event other than a rename for path.
func (w *watcher) change(path string, mask uint64, p *proc) {
	if !w.watched(path) {
		return
	}
	old := w.base[path]
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		delete(w.pending, path)
		if old == nil {
			if mask&unix.FAN_CREATE != 0 { // created and gone before we looked
				w.emit(ActionCreated, path, "", nil, nil, p)
			}
			if mask&unix.FAN_DELETE != 0 {
				w.emit(ActionDeleted, path, "", nil, nil, p)
			}
			return
		}
		w.emit(ActionDeleted, path, "", old, nil, p)
		w.forget(path)
		return
	}
	if st.Mode&unix.S_IFMT == unix.S_IFREG && mask&unix.FAN_MODIFY != 0 && mask&unix.FAN_CLOSE_WRITE == 0 && mask&unix.FAN_CREATE == 0 {
		w.pending[path] = pending{proc: *p, last: time.Now()} // still being written
		return
	}
	delete(w.pending, path)
	if old != nil && mask&unix.FAN_CREATE != 0 && old.Ino != st.Ino {
		// Deleted and created again before we looked: a new file.
		w.forget(path)
		old = nil
	}
	w.visit(path, &st, nil, p)
	if old == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		// A new directory: watch it and report what is already inside.
		w.walk(path, 0, nil, true)
	}
}

// rename handles a rename from oldPath to newPath; either is "" when
// unknown (a move in from or out to an unwatched place, or a kernel without
// FAN_RENAME).
func (w *watcher) rename(oldPath, newPath string, p *proc) {
	oldIn := oldPath != "" && w.watched(oldPath)
	newIn := newPath != "" && w.watched(newPath)
	var old, replaced, cur *entry
	if oldIn {
		old = w.base[oldPath]
	}
	var st unix.Stat_t
	exists := newPath != "" && unix.Lstat(newPath, &st) == nil
	if newIn {
		replaced = w.base[newPath]
		if exists {
			cur = w.entryFor(newPath, &st, old)
		}
	}
	target := newPath
	if !newIn {
		target = oldPath
	}
	source := oldPath
	if source == target {
		source = ""
	}
	w.emit(ActionRenamed, target, source, old, cur, p)
	isDir := exists && st.Mode&unix.S_IFMT == unix.S_IFDIR
	if oldIn {
		w.move(oldPath, newPath, newIn)
	}
	if newIn && cur != nil {
		if replaced != nil && replaced.Ino != cur.Ino && (replaced.Hash != cur.Hash || replaced.Type != cur.Type) {
			// Renamed over an existing file (editors, sed -i, package
			// managers): the target's content changed.
			w.emit(ActionModified, newPath, "", replaced, cur, p)
		}
		w.base[newPath] = cur
		w.dirty = true
		if isDir && !oldIn {
			w.walk(newPath, 0, nil, false) // moved in: watch and record, the rename was reported
		}
	}
}

// move re-keys the baseline entries and directory names under oldPath to
// newPath, or forgets them when the new place is not watched (and removes
// their marks).
func (w *watcher) move(oldPath, newPath string, keep bool) {
	prefix := oldPath + "/"
	for k, e := range w.base {
		if k == oldPath || strings.HasPrefix(k, prefix) {
			delete(w.base, k)
			if keep && k != oldPath {
				w.base[newPath+k[len(oldPath):]] = e
			}
		}
	}
	for key, d := range w.dirs {
		if d == oldPath || strings.HasPrefix(d, prefix) {
			nd := newPath + d[len(oldPath):]
			if keep {
				w.dirs[key] = nd
			} else {
				delete(w.dirs, key)
				if newPath != "" && w.fan >= 0 {
					unix.FanotifyMark(w.fan, unix.FAN_MARK_REMOVE|unix.FAN_MARK_ONLYDIR, w.mask, unix.AT_FDCWD, nd)
				}
			}
		}
	}
	for d := range w.marked {
		if d == oldPath || strings.HasPrefix(d, prefix) {
			delete(w.marked, d)
			if keep {
				w.marked[newPath+d[len(oldPath):]] = struct{}{}
			}
		}
	}
	w.dirty = true
}

// forget removes path and everything below it from the baseline.
func (w *watcher) forget(path string) {
	w.move(path, "", false)
}
