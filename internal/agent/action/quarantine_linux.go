package action

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Quarantined describes one file in the quarantine store
// (DataDir/actions/quarantine/ID.json beside ID.data).
type Quarantined struct {
	ID        string    `json:"quarantine_id"`
	Path      string    `json:"path"`
	SHA256    string    `json:"sha256"`
	Size      int64     `json:"size"`
	Mode      uint32    `json:"mode"` // permission bits (and setuid/setgid/sticky)
	UID       uint32    `json:"uid"`
	GID       uint32    `json:"gid"`
	ModTime   time.Time `json:"mtime"`
	At        time.Time `json:"quarantined_at"`
	CommandID string    `json:"command_id"`
}

func (e *Executor) quarantineDir() (string, error) {
	d := filepath.Join(e.dir, "quarantine")
	return d, mkdirPrivate(d)
}

// Quarantine moves the regular file at path into the quarantine store
// (root-only: the directory is 0700, the file 0400 owned by root) and
// records its SHA-256, size, mode, owner and modification time. Symbolic
// links are not followed: name the file itself.
func (e *Executor) Quarantine(path, commandID string) (*Quarantined, error) {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return nil, fmt.Errorf("quarantine: %q is not a clean absolute path", path)
	}
	qdir, err := e.quarantineDir()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("quarantine: %s is not a regular file", path)
	}
	q := &Quarantined{ID: randomID(), Path: path, Size: st.Size, Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid,
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec).UTC(), At: e.opts.Now().UTC(), CommandID: commandID}
	data := filepath.Join(qdir, q.ID+".data")
	// Copy (hashing) rather than rename: the store may be on another file
	// system, and a copy leaves nothing half-moved if we crash.
	if q.SHA256, err = copyFile(f, data, 0o400); err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	meta, _ := json.MarshalIndent(q, "", "  ")
	if err := writeSynced(filepath.Join(qdir, q.ID+".json"), meta, 0o600); err != nil {
		os.Remove(data)
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	// Remove the original only if the path still names the file we copied.
	var now unix.Stat_t
	if err := unix.Lstat(path, &now); err != nil || now.Dev != st.Dev || now.Ino != st.Ino {
		os.Remove(data)
		os.Remove(filepath.Join(qdir, q.ID+".json"))
		return nil, fmt.Errorf("quarantine: %s was replaced while being quarantined", path)
	}
	if err := os.Remove(path); err != nil {
		os.Remove(data)
		os.Remove(filepath.Join(qdir, q.ID+".json"))
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	syncDir(filepath.Dir(path))
	return q, nil
}

// Restore puts a quarantined file back where it was, byte for byte, with
// its mode, owner and modification time, after checking its SHA-256. It
// never replaces a file that exists there now.
func (e *Executor) Restore(id string) (*Quarantined, error) {
	if !token(id) {
		return nil, fmt.Errorf("restore: %q is not a quarantine id", id)
	}
	qdir, err := e.quarantineDir()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(qdir, id+".json"))
	if err != nil {
		return nil, fmt.Errorf("restore: no quarantined file %s", id)
	}
	var q Quarantined
	if err := json.Unmarshal(b, &q); err != nil {
		return nil, fmt.Errorf("restore: %s.json: %w", id, err)
	}
	src, err := os.Open(filepath.Join(qdir, id+".data"))
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer src.Close()
	dir := filepath.Dir(q.Path)
	tmp := filepath.Join(dir, ".vigil-restore-"+id)
	sum, err := copyFile(src, tmp, 0o600)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	fail := func(err error) (*Quarantined, error) {
		os.Remove(tmp)
		return nil, fmt.Errorf("restore: %w", err)
	}
	if sum != q.SHA256 {
		return fail(fmt.Errorf("quarantined copy of %s is corrupt (SHA-256 %s, recorded %s)", q.Path, sum, q.SHA256))
	}
	if err := os.Lchown(tmp, int(q.UID), int(q.GID)); err != nil {
		return fail(err)
	}
	// After chown, which clears setuid and setgid bits.
	if err := unix.Fchmodat(unix.AT_FDCWD, tmp, q.Mode, 0); err != nil {
		return fail(err)
	}
	mt := unix.NsecToTimespec(q.ModTime.UnixNano())
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, tmp, []unix.Timespec{mt, mt}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fail(err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, q.Path, unix.RENAME_NOREPLACE); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fail(fmt.Errorf("%s exists; move it away first", q.Path))
		}
		return fail(err)
	}
	syncDir(dir)
	os.Remove(filepath.Join(qdir, id+".data"))
	os.Remove(filepath.Join(qdir, id+".json"))
	return &q, nil
}

// copyFile copies r into a new file at path (O_EXCL, mode), fsyncs it and
// returns the SHA-256 of the bytes copied.
func copyFile(r io.Reader, path string, mode os.FileMode) (string, error) {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), r)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func token(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func mkdirPrivate(d string) error {
	if err := os.MkdirAll(d, 0o700); err != nil {
		return fmt.Errorf("action: %w", err)
	}
	return os.Chmod(d, 0o700)
}
