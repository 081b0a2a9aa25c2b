package network

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// ErrUnavailable is wrapped by the error Run returns when the host offers no
// mechanism the sensor can use (neither eBPF nor sock_diag, no privilege,
// an unsupported operating system).
var ErrUnavailable = errors.New("network sensor unavailable")

// Mechanism values reported in Status.
const (
	MechEBPF        = "ebpf-tracepoints"
	MechPoll        = "sock_diag-poll"
	MechUnavailable = "unavailable"
)

// Options configure a Sensor. The zero value is usable; New fills defaults.
type Options struct {
	// Logger receives the mechanism chosen and problems. Nil discards.
	Logger *slog.Logger
	// UDPWindow is the UDP dedupe window: datagrams between the same
	// process and peer (same direction) within it after a reported one are
	// counted, not reported. Zero means 60 s.
	UDPWindow time.Duration
	// RingBytes is the kernel ring buffer between the eBPF programs and the
	// sensor (a power of two, at least 64 KiB). Zero means 1 MiB (about
	// 1,700 records). Records that do not fit are dropped and counted.
	RingBytes int
	// FlushEvery is the longest a record waits in the ring buffer before
	// the sensor reads it (FlushEvery/10 after a drain that found a quarter
	// of the ring or more). Zero means 1 s: every read is a wake-up of the agent,
	// and a connection event is not needed sooner than the batch that
	// carries it to the server (sent at most every second).
	FlushEvery time.Duration
	// PollEvery is the sock_diag polling interval of the fallback
	// mechanism. Zero means 2 s.
	PollEvery time.Duration
	// ReportEvery is how often the listening-socket report is sent. Zero
	// means 10 minutes; the first report is sent at start.
	ReportEvery time.Duration
	// DisableEBPF forces the fallback mechanism (for tests and for hosts
	// where eBPF is not wanted).
	DisableEBPF bool
	// ProcCache bounds the processes whose image, command line and user are
	// remembered. Zero means 4096.
	ProcCache int
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.UDPWindow <= 0 {
		o.UDPWindow = time.Minute
	}
	if o.RingBytes <= 0 {
		o.RingBytes = 1 << 20
	}
	if o.RingBytes < 64<<10 {
		o.RingBytes = 64 << 10
	}
	for o.RingBytes&(o.RingBytes-1) != 0 { // round up to a power of two
		o.RingBytes += o.RingBytes & -o.RingBytes
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = time.Second
	}
	if o.PollEvery <= 0 {
		o.PollEvery = 2 * time.Second
	}
	if o.ReportEvery <= 0 {
		o.ReportEvery = 10 * time.Minute
	}
	if o.ProcCache <= 0 {
		o.ProcCache = 4096
	}
}

// Status says which mechanism the sensor uses and how it is doing.
type Status struct {
	// Mechanism is MechEBPF, MechPoll or MechUnavailable; "" before Run has
	// probed the kernel.
	Mechanism string
	// Detail explains the choice (why eBPF could not be used) and the
	// mechanism's limits.
	Detail string
	// Err is why the sensor cannot run or stopped; "" when healthy.
	Err string
	// Events counts the events passed to out (connections, listens and
	// listening-socket report entries).
	Events uint64
	// Dropped counts records the kernel ring buffer could not take.
	Dropped uint64
	// Unattributed counts events whose process could not be found (the
	// fallback mechanism, when the process exited before the poll).
	Unattributed uint64
}

// String renders s for the agent's health event.
func (s Status) String() string {
	mech := s.Mechanism
	if mech == "" {
		mech = "none"
	}
	out := fmt.Sprintf("mechanism=%q events=%d dropped=%d unattributed=%d", mech, s.Events, s.Dropped, s.Unattributed)
	if s.Detail != "" {
		out += fmt.Sprintf(" detail=%q", s.Detail)
	}
	if s.Err != "" {
		out += fmt.Sprintf(" err=%q", s.Err)
	}
	return out
}

// Sensor reports network connections and listening sockets. Create it with
// New.
type Sensor struct {
	opts Options

	running      atomic.Bool
	events       atomic.Uint64
	dropped      atomic.Uint64
	unattributed atomic.Uint64

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
	st.Dropped = s.dropped.Load()
	st.Unattributed = s.unattributed.Load()
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

// Listener is one listening socket: a TCP socket in LISTEN, or a bound,
// unconnected UDP socket.
type Listener struct {
	Protocol string // "tcp" or "udp"
	Local    netip.AddrPort
	PID      uint32 // a process holding the socket; 0 when none was found
	UID      uint32 // the socket's owner
	Inode    uint32
}
