package atomics

import (
	"errors"
	"os"
	"strings"
	"time"
)

// ErrUnsupported: the Runner needs Linux.
var ErrUnsupported = errors.New("running atomic tests is supported on Linux only")

// RunOptions configure a Runner.
type RunOptions struct {
	AtomicsDir string
	// Timeout bounds the test command and, separately, its cleanup; each
	// prerequisite check gets at most PrereqTimeout. Defaults 30 s and 15 s.
	Timeout       time.Duration
	PrereqTimeout time.Duration
	// HostNetwork runs tests in the host's network namespace; by default
	// each test gets a fresh namespace with only a loopback interface.
	HostNetwork bool
	// NoSession leaves the test shell in the caller's audit session; by
	// default it gets a fresh one (see the package doc).
	NoSession bool
	// ScratchDir is where per-test working directories are made
	// (default os.TempDir()).
	ScratchDir string
	// Env is the tests' environment (default os.Environ()); variables
	// starting with VIGIL_ are always removed, so an API token never
	// reaches an attack command.
	Env []string
}

func (o *RunOptions) defaults() {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.PrereqTimeout <= 0 {
		o.PrereqTimeout = 15 * time.Second
	}
	if o.ScratchDir == "" {
		o.ScratchDir = os.TempDir()
	}
	if o.Env == nil {
		o.Env = os.Environ()
	}
	kept := make([]string, 0, len(o.Env))
	for _, kv := range o.Env {
		if !strings.HasPrefix(strings.ToUpper(kv), "VIGIL_") {
			kept = append(kept, kv)
		}
	}
	o.Env = kept
}

// Step is one command the Runner ran.
type Step struct {
	PID      int       `json:"pid,omitempty"`
	Session  string    `json:"session,omitempty"` // audit session id of its shell
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ExitCode int       `json:"exit_code"`
	TimedOut bool      `json:"timed_out,omitempty"`
	Err      string    `json:"error,omitempty"` // could not start, or killed
	Output   string    `json:"-"`               // the last bytes of stdout and stderr
}

// Execution is what happened when a test was run.
type Execution struct {
	// PrereqFailed is the description of the first prerequisite that was
	// not met; then the test did not run and Test and Cleanup are empty.
	PrereqFailed string `json:"prereq_failed,omitempty"`
	Test         Step   `json:"test"`
	Cleanup      *Step  `json:"cleanup,omitempty"`
}

// Ran reports whether the test command was started.
func (e *Execution) Ran() bool { return e.PrereqFailed == "" && !e.Test.Start.IsZero() }

// tail keeps the last max bytes written to it.
const outputTail = 4 << 10
