package fim

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-edr/vigil/internal/agent/throttle"
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
	// Round is the shortest time between two reads of the fanotify queue:
	// the events of the writes in between wait (and merge) in the kernel
	// and cost one wake-up of the agent instead of one or two per write.
	// Zero means 200 ms; negative reads as soon as an event arrives.
	Round time.Duration
	// Throttle, when on (the agent is over its CPU budget), makes the
	// sensor back off: it reads the queue every ThrottleRound, letting
	// events wait in the kernel (a queue overflow costs a rescan, never a
	// change). Nil never throttles.
	Throttle *throttle.Signal
	// ThrottleRound is the pause between reads while throttled. Zero means
	// 1 s.
	ThrottleRound time.Duration
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
	if opts.Round == 0 {
		opts.Round = 200 * time.Millisecond
	}
	if opts.ThrottleRound <= 0 {
		opts.ThrottleRound = time.Second
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
