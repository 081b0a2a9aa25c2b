package authlog

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// ErrNoSource means the host has neither a usable journal nor an
// authentication log file.
var ErrNoSource = errors.New("authlog: no journal and no /var/log/auth.log or /var/log/secure")

// ErrUnsupported is returned by Run on systems the sensor does not support.
var ErrUnsupported = errors.New("authlog: not supported")

// Options configure a Sensor. The zero value is usable.
type Options struct {
	// Path, when set, is the file to tail instead of the journal or the
	// default log files.
	Path string
	// Logger receives source changes and restarts. Nil discards.
	Logger *slog.Logger
	// PollInterval is how often a tailed file is checked for new lines and
	// rotation. Zero means 1 s (a wake-up of the agent each time).
	PollInterval time.Duration
}

// Status says what the sensor reads and whether it works.
type Status struct {
	// Source is "journal", the path of the tailed file, or "" before Run
	// has chosen one.
	Source string
	// Err is the last error: why no source could be used, or why the
	// journal reader had to be restarted. Nil when healthy.
	Err error
	// Events counts the events passed to out.
	Events uint64
}

// String renders s for the agent's health event.
func (s Status) String() string {
	src := s.Source
	if src == "" {
		src = "none"
	}
	if s.Err != nil {
		return fmt.Sprintf("source=%s events=%d err=%v", src, s.Events, s.Err)
	}
	return fmt.Sprintf("source=%s events=%d", src, s.Events)
}

// Sensor follows the authentication log.
type Sensor struct {
	opts Options

	mu     sync.Mutex
	status Status
}

// New returns a Sensor with defaults filled in.
func New(opts Options) *Sensor {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	return &Sensor{opts: opts}
}

// Name is the sensor's name in agent health reports.
func (s *Sensor) Name() string { return "authlog" }

// Status returns a snapshot of the sensor's state.
func (s *Sensor) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

func (s *Sensor) setErr(err error) {
	s.mu.Lock()
	s.status.Err = err
	s.mu.Unlock()
}
