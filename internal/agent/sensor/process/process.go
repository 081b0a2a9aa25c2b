package process

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-edr/vigil/internal/agent/throttle"
)

// ErrUnavailable is wrapped by the error Run returns when the host offers no
// mechanism the sensor can use (no kernel audit, no privilege, locked rules,
// an unsupported operating system).
var ErrUnavailable = errors.New("process sensor unavailable")

// Mechanism values reported in Status.
const (
	MechUnicast     = "audit-netlink unicast"
	MechMulticast   = "audit-netlink multicast"
	MechUnavailable = "unavailable"
)

// RuleKeyPrefix starts the key of every audit rule the sensor installs.
const RuleKeyPrefix = "vigil_exec"

// RuleKeyFor returns the audit rule key of the agent with this id:
// RuleKeyPrefix, "_" and the id's first eight letters and digits (an
// enrolled agent's id is a random UUID, so two agents on one host differ).
func RuleKeyFor(agentID string) string {
	var b strings.Builder
	b.WriteString(RuleKeyPrefix + "_")
	n := 0
	for _, r := range agentID {
		if n == 8 {
			break
		}
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			b.WriteRune(r)
			n++
		}
	}
	return b.String()
}

// Options configure a Sensor. The zero value is usable; New fills defaults.
type Options struct {
	// Logger receives the mechanism chosen, lost records and teardown
	// problems. Nil discards.
	Logger *slog.Logger
	// HashWorkers is how many goroutines hash executables. Zero means 1.
	HashWorkers int
	// MaxHashBytes bounds the size of an executable that is hashed; bigger
	// files get no Hashes field. Zero means 256 MiB.
	MaxHashBytes int64
	// HashWait is how long the output waits for a hash before sending the
	// event without it. Zero means 2 s.
	HashWait time.Duration
	// QueueSize bounds the events between the receiver and out. Zero means
	// 4096.
	QueueSize int
	// RuleKey is the audit rule key (-k) of the installed rules; the sensor
	// removes only rules with this key, so two agents on one host (a
	// service and `vigil up`'s) each keep their own. Agents pass
	// RuleKeyFor(agent id). Zero means "vigil_exec_p<pid>", unique to this
	// process.
	RuleKey string
	// BacklogLimit is the kernel audit backlog (records) the sensor asks for
	// when it is the audit daemon; it never lowers a bigger setting. Zero
	// means 32768.
	BacklogLimit uint32
	// BacklogWaitTime is the kernel's backlog_wait_time (in kernel ticks)
	// the sensor asks for when it is the audit daemon; it never lowers a
	// bigger setting. Zero means 15000.
	BacklogWaitTime uint32
	// StatusEvery is how often the kernel's lost counter is read. Zero
	// means 5 s.
	StatusEvery time.Duration
	// ParentTable bounds the recent exec events remembered by pid for
	// ParentImage and ParentCommandLine. Zero means 8192.
	ParentTable int
	// Throttle, when on (the agent is over its CPU budget), makes the
	// sensor back off: executables not hashed yet are not hashed (their
	// events go without Hashes, counted in Status.Deferred), and audit
	// records are read in rounds ThrottleRound apart, waiting in the
	// kernel's backlog meanwhile. Nil never throttles.
	Throttle *throttle.Signal
	// ThrottleRound is the pause between receive rounds while throttled.
	// Zero means 250 ms.
	ThrottleRound time.Duration
	// Round is the shortest time between the starts of two receive rounds
	// (a round reads everything queued, 32 records per system call): the
	// records of the execs in between gather in the kernel and cost one
	// wake-up instead of several per exec. Zero means 100 ms (each wake-up
	// costs the Go scheduler and netpoller more than the records it reads:
	// 20 ms rounds measured 540–640 µs of agent CPU per exec, 100 ms 378–403
	// µs, 250 ms 365–380 µs); negative reads
	// as soon as a record arrives.
	Round time.Duration
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HashWorkers <= 0 {
		o.HashWorkers = 1
	}
	if o.MaxHashBytes <= 0 {
		o.MaxHashBytes = 256 << 20
	}
	if o.HashWait <= 0 {
		o.HashWait = 2 * time.Second
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 4096
	}
	if o.RuleKey == "" {
		o.RuleKey = RuleKeyPrefix + "_p" + strconv.Itoa(os.Getpid())
	}
	if o.BacklogLimit == 0 {
		o.BacklogLimit = 32768
	}
	if o.BacklogWaitTime == 0 {
		o.BacklogWaitTime = 15000
	}
	if o.StatusEvery <= 0 {
		o.StatusEvery = 5 * time.Second
	}
	if o.ParentTable <= 0 {
		o.ParentTable = 8192
	}
	if o.ThrottleRound <= 0 {
		o.ThrottleRound = 250 * time.Millisecond
	}
	if o.Round == 0 {
		o.Round = 100 * time.Millisecond
	}
}

// Status says which mechanism the sensor uses and how it is doing.
type Status struct {
	// Mechanism is MechUnicast, MechMulticast or MechUnavailable; "" before
	// Run has probed the kernel.
	Mechanism string
	// Err is why the sensor cannot run or stopped; "" when healthy.
	Err string
	// Detail explains the choice: who holds the audit PID, which rules were
	// installed, the kernel's backlog settings.
	Detail string
	// Events counts the events passed to out.
	Events uint64
	// Lost counts records the kernel reported lost since Run started plus
	// socket overruns (multicast only; each is at least one record).
	Lost uint64
	// Unhashed counts events sent without Hashes although the executable
	// existed (too big, the hash queue full, not ready in time, or deferred).
	Unhashed uint64
	// Deferred counts the hashes not computed because the agent was
	// backing off (also counted in Unhashed).
	Deferred uint64
	// Throttled counts receive rounds slowed down while backing off.
	Throttled uint64
}

// String renders s for the agent's health event.
func (s Status) String() string {
	mech := s.Mechanism
	if mech == "" {
		mech = "none"
	}
	out := fmt.Sprintf("mechanism=%q events=%d lost=%d unhashed=%d", mech, s.Events, s.Lost, s.Unhashed)
	if s.Deferred > 0 || s.Throttled > 0 {
		out += fmt.Sprintf(" deferred=%d throttled_rounds=%d", s.Deferred, s.Throttled)
	}
	if s.Detail != "" {
		out += fmt.Sprintf(" detail=%q", s.Detail)
	}
	if s.Err != "" {
		out += fmt.Sprintf(" err=%q", s.Err)
	}
	return out
}

// Sensor reports process executions. Create it with New.
type Sensor struct {
	opts Options

	running  atomic.Bool
	events   atomic.Uint64
	lost     atomic.Uint64
	unhash   atomic.Uint64
	deferred atomic.Uint64
	slowed   atomic.Uint64

	mu        sync.Mutex
	mechanism string
	detail    string
	err       string
}

// New returns a Sensor; nothing happens until Run.
func New(opts Options) *Sensor {
	opts.setDefaults()
	return &Sensor{opts: opts}
}

// Status returns the current status. It is safe to call at any time.
func (s *Sensor) Status() Status {
	s.mu.Lock()
	st := Status{Mechanism: s.mechanism, Detail: s.detail, Err: s.err}
	s.mu.Unlock()
	st.Events = s.events.Load()
	st.Lost = s.lost.Load()
	st.Unhashed = s.unhash.Load()
	st.Deferred = s.deferred.Load()
	st.Throttled = s.slowed.Load()
	return st
}

func (s *Sensor) setState(mechanism, detail string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mechanism != "" {
		s.mechanism = mechanism
	}
	if detail != "" {
		s.detail = detail
	}
	s.err = ""
	if err != nil {
		s.err = err.Error()
	}
}
