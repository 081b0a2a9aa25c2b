package fim

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ErrUnsupported is returned by Run on systems the sensor does not support.
var ErrUnsupported = errors.New("fim: not supported")

// DefaultPaths are watched when Options.Paths is empty. Globs are expanded
// when Run starts; a path that does not exist yet is watched for creation
// when its parent exists.
var DefaultPaths = []string{
	"/etc", "/bin", "/sbin", "/usr/bin", "/usr/sbin", "/boot",
	"/root/.ssh", "/home/*/.ssh",
	"/etc/cron*", "/var/spool/cron",
	"/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system",
	"/etc/ld.so.preload",
	"/root/.bashrc", "/root/.profile", "/root/.bash_profile",
	"/home/*/.bashrc", "/home/*/.profile", "/home/*/.bash_profile",
}

// Actions, the values of the Action field.
const (
	ActionCreated            = "created"
	ActionModified           = "modified"
	ActionDeleted            = "deleted"
	ActionRenamed            = "renamed"
	ActionPermissionsChanged = "permissions_changed"
	ActionOwnerChanged       = "owner_changed"
)

// Persistence types, the values of the PersistenceType field.
const (
	PersistCron              = "cron"
	PersistSystemd           = "systemd"
	PersistSSHAuthorizedKeys = "ssh_authorized_keys"
	PersistShellProfile      = "shell_profile"
	PersistLDPreload         = "ld_preload"
)

// Category lists. Events point at these shared slices; nothing may modify
// them.
var (
	catFile        = []string{"file_event"}
	catPersistence = []string{"file_event", "persistence"}
)

// Options configure a Sensor. The zero value watches DefaultPaths without
// keeping a baseline across restarts.
type Options struct {
	// Paths to watch: directories (recursively, not crossing mount points)
	// and single files, with glob patterns. Empty means DefaultPaths.
	Paths []string
	// StateDir holds the baseline file (baseline.json). Empty keeps the
	// baseline in memory only, so changes made while the agent was down go
	// unnoticed.
	StateDir string
	// Logger receives degraded-mode warnings. Nil discards.
	Logger *slog.Logger
	// MaxHashBytes bounds the files that are hashed; larger files are
	// recorded without a hash. Zero means 64 MiB.
	MaxHashBytes int64
	// MaxFiles bounds the baseline (files and directories); entries beyond
	// it are not recorded and counted in Status.Skipped. Zero means 200,000.
	MaxFiles int
	// PollInterval is the rescan interval when fanotify cannot be used.
	// Zero means 30 s.
	PollInterval time.Duration
	// Poll forces the polling fallback even where fanotify works.
	Poll bool
}

// Status says how the sensor watches and whether it works.
type Status struct {
	// Source is "fanotify", "poll" or "" before Run started.
	Source string
	// Err says why the sensor is degraded (why fanotify could not be used,
	// a queue overflow, a baseline that could not be saved). Nil when
	// healthy.
	Err error
	// Ready is true once the baseline is complete and changes are watched.
	Ready bool
	// Events counts the events passed to out.
	Events uint64
	// Files is the number of baseline entries; Watches the number of
	// directories marked for fanotify; Skipped the entries not recorded
	// because of MaxFiles; Overflows the fanotify queue overflows (each is
	// followed by a rescan).
	Files, Watches, Skipped, Overflows int
}

// String renders s for the agent's health event.
func (s Status) String() string {
	src := s.Source
	if src == "" {
		src = "none"
	}
	str := fmt.Sprintf("source=%s ready=%t events=%d files=%d watches=%d skipped=%d overflows=%d",
		src, s.Ready, s.Events, s.Files, s.Watches, s.Skipped, s.Overflows)
	if s.Err != nil {
		str += " err=" + s.Err.Error()
	}
	return str
}

// Sensor watches files for changes.
type Sensor struct {
	opts Options

	mu     sync.Mutex
	status Status
}

// New returns a Sensor with defaults filled in.
func New(opts Options) *Sensor {
	if len(opts.Paths) == 0 {
		opts.Paths = DefaultPaths
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxHashBytes <= 0 {
		opts.MaxHashBytes = 64 << 20
	}
	if opts.MaxFiles <= 0 {
		opts.MaxFiles = 200_000
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 30 * time.Second
	}
	return &Sensor{opts: opts}
}

// Name is the sensor's name in agent health reports.
func (s *Sensor) Name() string { return "fim" }

// Status returns a snapshot of the sensor's state.
func (s *Sensor) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

func (s *Sensor) update(f func(*Status)) {
	s.mu.Lock()
	f(&s.status)
	s.mu.Unlock()
}

// persistenceType classifies path as a place where an attacker can make
// code run again (at boot, on a schedule, at login), or returns "".
func persistenceType(path string) string {
	base := filepath.Base(path)
	dir := filepath.Dir(path)
	switch {
	case path == "/etc/ld.so.preload" || base == "ld.so.preload":
		return PersistLDPreload
	case base == "authorized_keys" || base == "authorized_keys2":
		return PersistSSHAuthorizedKeys
	case strings.Contains(path, "/systemd/system/") || strings.Contains(path, "/systemd/user/") ||
		strings.HasSuffix(path, "/systemd/system") || strings.HasSuffix(path, "/systemd/user"):
		return PersistSystemd
	case isShellProfile(path, base, dir):
		return PersistShellProfile
	}
	for p := path; p != "/" && p != "." && p != ""; p = filepath.Dir(p) {
		b := filepath.Base(p)
		if strings.HasPrefix(b, "cron") || strings.HasSuffix(b, "crontab") || b == "crontabs" {
			return PersistCron
		}
		if p == "/var/spool/cron" {
			return PersistCron
		}
	}
	return ""
}

func isShellProfile(path, base, dir string) bool {
	switch path {
	case "/etc/profile", "/etc/bash.bashrc", "/etc/bashrc", "/etc/zshrc", "/etc/zprofile", "/etc/environment":
		return true
	}
	if dir == "/etc/profile.d" {
		return true
	}
	switch base {
	case ".bashrc", ".profile", ".bash_profile", ".bash_login", ".bash_logout", ".zshrc", ".zprofile", ".zlogin":
		return true
	}
	return false
}

// ---- baseline ----

// entry is the recorded state of one path.
type entry struct {
	Type  string `json:"type"`            // "file", "dir", "symlink", "other"
	Hash  string `json:"sha256,omitzero"` // hex SHA-256 of the content; files up to MaxHashBytes only
	Link  string `json:"link,omitzero"`   // symlink target
	Mode  uint32 `json:"mode"`            // permission bits incl. setuid/setgid/sticky
	UID   uint32 `json:"uid"`
	GID   uint32 `json:"gid"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime_ns"`
	Ctime int64  `json:"ctime_ns"`
	Ino   uint64 `json:"ino"`
}

// baselineFile is the on-disk form; see "Baseline file" in the package doc.
type baselineFile struct {
	Version int               `json:"version"`
	Saved   time.Time         `json:"saved"`
	Entries map[string]*entry `json:"entries"`
}

const baselineVersion = 1

func (s *Sensor) baselinePath() string {
	if s.opts.StateDir == "" {
		return ""
	}
	return filepath.Join(s.opts.StateDir, "baseline.json")
}

// loadBaseline returns the saved entries, or nil when there is no usable
// baseline.
func (s *Sensor) loadBaseline() (map[string]*entry, error) {
	p := s.baselinePath()
	if p == "" {
		return nil, nil
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var bf baselineFile
	if err := json.Unmarshal(b, &bf); err != nil {
		return nil, fmt.Errorf("fim: baseline %s: %w", p, err)
	}
	if bf.Version != baselineVersion {
		return nil, fmt.Errorf("fim: baseline %s: version %d, want %d", p, bf.Version, baselineVersion)
	}
	for k, v := range bf.Entries {
		if v == nil {
			delete(bf.Entries, k)
		}
	}
	return bf.Entries, nil
}

// saveBaseline writes the entries atomically: a temporary file in StateDir,
// synced, then renamed over baseline.json.
func (s *Sensor) saveBaseline(entries map[string]*entry) error {
	p := s.baselinePath()
	if p == "" {
		return nil
	}
	if err := os.MkdirAll(s.opts.StateDir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(baselineFile{Version: baselineVersion, Saved: time.Now().UTC(), Entries: entries})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.opts.StateDir, ".baseline-*.json")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("fim: save baseline: %w", err)
	}
	return nil
}
