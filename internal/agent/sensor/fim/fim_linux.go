package fim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-edr/vigil/internal/agent/usernames"
	"github.com/vigil-edr/vigil/internal/event"
)

const (
	// baseMask is what every watched directory is marked for. Renames use
	// FAN_RENAME (Linux 5.17), which reports the old and the new name in one
	// event; older kernels get FAN_MOVED_FROM and FAN_MOVED_TO instead
	// (see movedMask).
	baseMask = unix.FAN_CREATE | unix.FAN_DELETE | unix.FAN_MODIFY | unix.FAN_CLOSE_WRITE |
		unix.FAN_ATTRIB | unix.FAN_EVENT_ON_CHILD | unix.FAN_ONDIR
	movedMask = unix.FAN_MOVED_FROM | unix.FAN_MOVED_TO

	// quietAfterModify is how long a file written but not yet closed must
	// stay unwritten before it is compared (a log kept open, mmap writes).
	quietAfterModify = 2 * time.Second
	// saveEvery bounds how often a changed baseline is written to disk.
	saveEvery = 30 * time.Second
)

// root is one watched path after glob expansion and symlink resolution.
type root struct {
	path string
	dir  bool   // watched recursively (also a path that does not exist yet)
	dev  uint64 // the walk does not leave this device
}

// proc is the process that caused a fanotify event.
type proc struct {
	pid         int32
	image, user string
}

type pending struct {
	proc proc
	last time.Time
}

// watcher is the state of one Run. It is used by one goroutine only.
type watcher struct {
	s     *Sensor
	out   func(*event.Event)
	roots []root
	state string // StateDir, cleaned: never reported
	base  map[string]*entry

	dirty    bool
	lastSave time.Time
	fan      int // the fanotify group, kept out of the Go runtime poller (package fdwait); -1 when polling
	mask     uint64
	pidfds   bool                // the group reports pidfds
	dirs     map[string]string   // directory handle key → path
	marked   map[string]struct{} // marked directory paths
	mounts   map[[8]byte]int     // fsid → an open directory on that filesystem, for open_by_handle_at
	pending  map[string]pending
	users    *usernames.Cache
	procs    map[int32]proc // acting processes of the events of one read
	procBuf  [4096]byte     // /proc reads of process
	ev       event.Event
	markErrs int
	hashBuf  []byte
	emitScan bool // visit reports differences (false while building the first baseline)
}

// Run builds or loads the baseline, then reports changes until ctx ends,
// when it saves the baseline and returns nil.
func (s *Sensor) Run(ctx context.Context, out func(*event.Event)) error {
	w := &watcher{
		s: s, out: out,
		dirs: map[string]string{}, marked: map[string]struct{}{}, mounts: map[[8]byte]int{},
		pending: map[string]pending{}, users: usernames.New("/etc/passwd"),
		hashBuf: make([]byte, 64<<10), fan: -1,
	}
	if s.opts.StateDir != "" {
		w.state, _ = filepath.Abs(s.opts.StateDir)
	}
	defer w.close()
	w.roots = resolveRoots(s.opts.Paths)

	base, err := s.loadBaseline()
	if err != nil {
		s.opts.Logger.Warn("fim: baseline unreadable, building a new one", "err", err)
	}
	w.base = base
	w.emitScan = base != nil
	if w.base == nil {
		w.base = map[string]*entry{}
	}

	var degraded error
	if s.opts.Poll {
		degraded = errors.New("polling forced by configuration")
	} else if err := w.initFanotify(); err != nil {
		degraded = fmt.Errorf("fanotify with file handles unavailable, polling every %v: %w", s.opts.PollInterval, err)
		s.opts.Logger.Warn("fim: " + degraded.Error())
	}
	source := "fanotify"
	if w.fan < 0 {
		source = "poll"
	}
	s.update(func(st *Status) { st.Source, st.Err = source, nil })
	if s.opts.Poll {
		degraded = nil // asked for: not an error
	}

	w.scan() // marks directories as it goes, so nothing after this is missed
	w.emitScan = true
	w.save()
	s.update(func(st *Status) {
		st.Ready = true
		if degraded != nil {
			st.Err = degraded
		}
	})

	if w.fan < 0 {
		err = w.poll(ctx)
	} else {
		err = w.follow(ctx)
	}
	w.dirty = true
	w.save()
	return err
}

func (w *watcher) close() {
	if w.fan >= 0 {
		unix.Close(w.fan)
	}
	for _, fd := range w.mounts {
		unix.Close(fd)
	}
}

func (w *watcher) setErr(err error) {
	w.s.update(func(st *Status) { st.Err = err })
}

func (w *watcher) save() {
	if !w.dirty {
		return
	}
	if err := w.s.saveBaseline(w.base); err != nil {
		w.setErr(err)
		w.s.opts.Logger.Warn("fim: "+err.Error(), "err", err)
	}
	w.dirty, w.lastSave = false, time.Now()
	w.s.update(func(st *Status) { st.Files = len(w.base) })
}

// resolveRoots expands globs, resolves symlinks (/bin → /usr/bin), drops
// duplicates and paths inside another watched directory.
func resolveRoots(patterns []string) []root {
	var roots []root
	for _, p := range patterns {
		matches, _ := filepath.Glob(p)
		if len(matches) == 0 && !strings.ContainsAny(p, "*?[") {
			matches = []string{p}
		}
		for _, m := range matches {
			m, err := filepath.Abs(m)
			if err != nil {
				continue
			}
			r := root{path: m, dir: true}
			if real, err := filepath.EvalSymlinks(m); err == nil {
				r.path = real
			} else if dir, err := filepath.EvalSymlinks(filepath.Dir(m)); err == nil {
				r.path = filepath.Join(dir, filepath.Base(m))
			}
			var st unix.Stat_t
			if unix.Lstat(r.path, &st) == nil {
				r.dir = st.Mode&unix.S_IFMT == unix.S_IFDIR
				r.dev = st.Dev
			}
			roots = append(roots, r)
		}
	}
	// Directories first, shortest first, so that a path inside an earlier
	// directory is recognised and dropped.
	slices.SortFunc(roots, func(a, b root) int {
		if a.dir != b.dir {
			if a.dir {
				return -1
			}
			return 1
		}
		return strings.Compare(a.path, b.path)
	})
	var out []root
	for _, r := range roots {
		if !slices.ContainsFunc(out, func(o root) bool { return o.dir && within(r.path, o.path) }) {
			out = append(out, r)
		}
	}
	return out
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	if dir == "/" {
		return strings.HasPrefix(path, "/")
	}
	return path == dir || (strings.HasPrefix(path, dir) && path[len(dir)] == '/')
}

// watched reports whether changes to path are reported.
func (w *watcher) watched(path string) bool {
	if w.state != "" && within(path, w.state) {
		return false
	}
	for _, r := range w.roots {
		if r.path == path || (r.dir && within(path, r.path)) {
			return true
		}
	}
	return false
}

// ---- scanning ----

// scan walks every root, marking directories, recording new entries and,
// when w.emitScan, reporting differences from the baseline. Entries no
// longer found are removed (and reported as deleted).
func (w *watcher) scan() {
	seen := make(map[string]struct{}, len(w.base))
	for _, r := range w.roots {
		var st unix.Stat_t
		if err := unix.Lstat(r.path, &st); err != nil {
			// Not there yet: watch the parent for its creation.
			w.mark(filepath.Dir(r.path))
			continue
		}
		if !r.dir {
			w.mark(filepath.Dir(r.path))
			w.visit(r.path, &st, seen, nil)
			continue
		}
		w.walk(r.path, r.dev, seen, w.emitScan)
	}
	for p, e := range w.base {
		if _, ok := seen[p]; ok {
			continue
		}
		if w.emitScan && w.watched(p) {
			w.emit(ActionDeleted, p, "", e, nil, nil)
		}
		delete(w.base, p)
		w.dirty = true
	}
	w.s.update(func(st *Status) { st.Files, st.Watches = len(w.base), len(w.marked) })
}

// walk visits dir and everything below it on the same device.
func (w *watcher) walk(dir string, dev uint64, seen map[string]struct{}, emit bool) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable: skip, keep walking
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil {
			return nil
		}
		if w.state != "" && within(p, w.state) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		save := w.emitScan
		w.emitScan = emit
		w.visit(p, &st, seen, nil)
		w.emitScan = save
		if d.IsDir() {
			if dev != 0 && st.Dev != dev {
				return filepath.SkipDir // another filesystem mounted here
			}
			w.mark(p)
		}
		return nil
	})
}

// visit compares path with its baseline entry and records its state.
func (w *watcher) visit(path string, st *unix.Stat_t, seen map[string]struct{}, p *proc) {
	if seen != nil {
		seen[path] = struct{}{}
	}
	old := w.base[path]
	cur := w.entryFor(path, st, old)
	if old == nil {
		if w.emitScan {
			w.emit(ActionCreated, path, "", nil, cur, p)
		}
		if len(w.base) >= w.s.opts.MaxFiles {
			w.s.update(func(s *Status) { s.Skipped++ })
			return
		}
		w.base[path] = cur
		w.dirty = true
		return
	}
	if *old != *cur {
		if w.emitScan {
			w.diff(path, old, cur, p)
		}
		w.base[path] = cur
		w.dirty = true
	}
}

// entryFor builds the entry for path from its lstat result. The hash is
// taken over from old when the file is evidently unchanged (same inode,
// size, mtime and ctime).
func (w *watcher) entryFor(path string, st *unix.Stat_t, old *entry) *entry {
	e := &entry{
		Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid, Size: st.Size,
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(), Ino: st.Ino,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		e.Type = "file"
		if old != nil && old.Type == "file" && old.Hash != "" && old.Ino == e.Ino &&
			old.Size == e.Size && old.Mtime == e.Mtime && old.Ctime == e.Ctime {
			e.Hash = old.Hash
		} else if e.Size <= w.s.opts.MaxHashBytes {
			e.Hash = w.hash(path)
		}
	case unix.S_IFDIR:
		e.Type, e.Size, e.Mtime, e.Ctime = "dir", 0, 0, 0 // a directory's own changes are its children's events
	case unix.S_IFLNK:
		e.Type = "symlink"
		e.Link, _ = os.Readlink(path)
	default:
		e.Type = "other"
	}
	return e
}

// hash returns the hex SHA-256 of a regular file of at most MaxHashBytes,
// or "" when it cannot be read or has grown past the limit.
func (w *watcher) hash(path string) string {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, io.LimitReader(f, w.s.opts.MaxHashBytes+1), w.hashBuf)
	if err != nil || n > w.s.opts.MaxHashBytes {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// diff reports what changed between two states of path.
func (w *watcher) diff(path string, old, cur *entry, p *proc) {
	contentChanged := old.Type != cur.Type || old.Hash != cur.Hash || old.Link != cur.Link ||
		(cur.Type == "file" && cur.Hash == "" && (old.Size != cur.Size || old.Mtime != cur.Mtime))
	if contentChanged {
		w.emit(ActionModified, path, "", old, cur, p)
	}
	if old.Mode != cur.Mode {
		w.emit(ActionPermissionsChanged, path, "", old, cur, p)
	}
	if old.UID != cur.UID || old.GID != cur.GID {
		w.emit(ActionOwnerChanged, path, "", old, cur, p)
	}
}

// ---- events ----

// emit reports one change. old and cur are the states before and after
// (either may be nil); source is the old name of a renamed file.
func (w *watcher) emit(action, path, source string, old, cur *entry, p *proc) {
	ev := &w.ev
	ev.Reset()
	ev.Time = time.Now().UTC()
	ev.Product = "linux"
	ev.Source = "fim"
	pt := persistenceType(path)
	if pt == "" && source != "" {
		pt = persistenceType(source)
	}
	ev.Categories = catFile
	if pt != "" {
		ev.Categories = catPersistence
	}
	ev.Add("TargetFilename", path)
	if source != "" {
		ev.Add("SourceFilename", source)
	}
	ev.Add("Action", action)
	if e := cmp(cur, old); e != nil {
		ev.Add("FileType", e.Type)
	}
	switch action {
	case ActionCreated, ActionRenamed:
		if cur != nil {
			addContent(ev, "", cur)
			ev.Add("Mode", mode(cur.Mode))
			ev.Add("Uid", strconv.FormatUint(uint64(cur.UID), 10))
			ev.Add("Gid", strconv.FormatUint(uint64(cur.GID), 10))
		}
		if action == ActionRenamed && old != nil && cur != nil && old.Hash != cur.Hash {
			addContent(ev, "Previous", old)
		}
	case ActionModified:
		addContent(ev, "Previous", old)
		addContent(ev, "", cur)
	case ActionDeleted:
		addContent(ev, "Previous", old)
	case ActionPermissionsChanged:
		ev.Add("PreviousMode", mode(old.Mode))
		ev.Add("Mode", mode(cur.Mode))
	case ActionOwnerChanged:
		ev.Add("PreviousUid", strconv.FormatUint(uint64(old.UID), 10))
		ev.Add("Uid", strconv.FormatUint(uint64(cur.UID), 10))
		ev.Add("PreviousGid", strconv.FormatUint(uint64(old.GID), 10))
		ev.Add("Gid", strconv.FormatUint(uint64(cur.GID), 10))
	}
	if p != nil && p.pid > 0 {
		ev.Add("ProcessId", strconv.Itoa(int(p.pid)))
		if p.image != "" {
			ev.Add("Image", p.image)
		}
		if p.user != "" {
			ev.Add("User", p.user)
		}
	}
	if pt != "" {
		ev.Add("PersistenceType", pt)
	}
	w.s.update(func(st *Status) { st.Events++ })
	w.out(ev)
}

func cmp(a, b *entry) *entry {
	if a != nil {
		return a
	}
	return b
}

// addContent adds what identifies e's content: Hash for a file, LinkTarget
// for a symbolic link, each with prefix ("" or "Previous").
func addContent(ev *event.Event, prefix string, e *entry) {
	switch {
	case e == nil:
	case e.Hash != "":
		ev.Add(prefix+"Hash", e.Hash)
	case e.Type == "symlink":
		ev.Add(prefix+"LinkTarget", e.Link)
	}
}

func mode(m uint32) string { return fmt.Sprintf("%04o", m) }
