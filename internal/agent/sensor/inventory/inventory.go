package inventory

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-edr/vigil/internal/agent/throttle"
)

// ErrUnsupported is returned by Run on systems the sensor does not support.
var ErrUnsupported = errors.New("inventory: not supported")

// Kinds of inventory item: the ItemKind of snapshot chunks and the prefix of
// the change categories ("package" → "package_change").
const (
	KindOS      = "os"
	KindPackage = "package"
	KindUser    = "user"
	KindGroup   = "group"
	KindPort    = "listening_port"
	KindService = "service"
	KindModule  = "kernel_module"
)

// Kinds lists every kind in the order a snapshot sends them.
var Kinds = []string{KindOS, KindPackage, KindUser, KindGroup, KindPort, KindService, KindModule}

// OS is the operating system and kernel (os-release and uname).
type OS struct {
	Hostname      string `json:"hostname"`
	Name          string `json:"name"`              // os-release NAME, e.g. "Debian GNU/Linux"
	ID            string `json:"id"`                // os-release ID, e.g. "debian"
	IDLike        string `json:"id_like,omitempty"` // os-release ID_LIKE
	VersionID     string `json:"version_id"`        // os-release VERSION_ID, e.g. "12"
	Codename      string `json:"codename,omitempty"`
	PrettyName    string `json:"pretty_name"`
	KernelName    string `json:"kernel_name"`    // uname -s
	KernelRelease string `json:"kernel_release"` // uname -r
	KernelVersion string `json:"kernel_version"` // uname -v
	Machine       string `json:"machine"`        // uname -m
}

// Package is one installed package.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"` // as the manager writes it: dpkg "[epoch:]upstream[-revision]", rpm "[epoch:]version-release"
	Arch    string `json:"arch"`
	Manager string `json:"manager"` // "dpkg" or "rpm"
	// Source is the source package (dpkg Source:, rpm SOURCERPM without
	// ".src.rpm"); SourceVersion its version when it differs from Version.
	// Debian's security tracker names source packages.
	Source        string `json:"source,omitempty"`
	SourceVersion string `json:"source_version,omitempty"`
	// Status is dpkg's package state (installed, unpacked, half-configured,
	// …); "installed" for rpm.
	Status string `json:"status"`
}

// User is one /etc/passwd entry. The password field is never read.
type User struct {
	Name  string `json:"name"`
	UID   uint32 `json:"uid"`
	GID   uint32 `json:"gid"`
	Gecos string `json:"gecos,omitempty"`
	Home  string `json:"home"`
	Shell string `json:"shell"`
}

// Group is one /etc/group entry. The password field is never read.
type Group struct {
	Name    string   `json:"name"`
	GID     uint32   `json:"gid"`
	Members []string `json:"members,omitempty"`
}

// Port is one listening socket: TCP in LISTEN state, or UDP bound to a local
// address without a peer.
type Port struct {
	Protocol    string `json:"protocol"` // "tcp" or "udp"
	LocalIP     string `json:"local_ip"`
	LocalPort   uint16 `json:"local_port"`
	Inode       uint64 `json:"-"`
	UID         uint32 `json:"uid"` // the socket's owner
	User        string `json:"user,omitempty"`
	PID         int    `json:"pid,omitempty"` // 0 when no process holding it was found
	Image       string `json:"image,omitempty"`
	CommandLine string `json:"command_line,omitempty"`
}

// Service is one systemd service unit.
type Service struct {
	Name string `json:"name"`
	// State is "enabled" (linked from a .wants or .requires directory under
	// /etc/systemd/system), "masked" (linked to /dev/null) or "disabled".
	State   string `json:"state"`
	Running bool   `json:"running"` // a populated cgroup of that name exists
	Path    string `json:"path,omitempty"`
	// ExecStart is the unit file's first ExecStart= command line.
	ExecStart string `json:"exec_start,omitempty"`
}

// Module is one loaded kernel module (/proc/modules).
type Module struct {
	Name  string   `json:"name"`
	Size  uint64   `json:"size"`
	Refs  int64    `json:"refs"`
	Deps  []string `json:"used_by,omitempty"` // the modules using this one
	State string   `json:"state"`             // Live, Loading, Unloading
	// Taint is the module's taint flags without parentheses, e.g. "OE"
	// (out of tree, unsigned); empty when untainted.
	Taint string `json:"taint,omitempty"`
}

// Snapshot is everything one collection found. A kind whose collection
// failed is absent from Have and its slice is nil.
type Snapshot struct {
	Time     time.Time       `json:"time"`
	Have     map[string]bool `json:"have"` // kind → collected
	OS       OS              `json:"os"`
	Packages []Package       `json:"packages"`
	Users    []User          `json:"users"`
	Groups   []Group         `json:"groups"`
	Ports    []Port          `json:"ports"`
	Services []Service       `json:"services"`
	Modules  []Module        `json:"modules"`

	carried map[string]bool // kinds copied from the previous collection because this one failed
}

// Options configure a Sensor. The zero value inventories the host.
type Options struct {
	// Root is prepended to the host paths that are read (/etc/passwd,
	// /etc/group, /etc/os-release, /var/lib/dpkg/status, systemd unit
	// directories); empty means "/". Tests point it at a copy.
	Root string
	// StateDir holds inventory.json, the last collection, so changes made
	// while the agent was down are reported at start. Empty keeps it in
	// memory only.
	StateDir string
	// ProcModules is the kernel module list; empty means /proc/modules.
	ProcModules string
	// SnapshotEvery is how often a full snapshot is sent; zero means 12 h.
	// One is sent at start.
	SnapshotEvery time.Duration
	// DiffEvery is how often the inventory is collected and compared with
	// the last one; zero means 60 s.
	DiffEvery time.Duration
	// WatchEvery is how often the trigger files (package databases, passwd,
	// group, unit directories) are checked for changes, which start a
	// comparison early; zero means 2 s.
	WatchEvery time.Duration
	// NoUevent disables the kernel uevent listener for module loads.
	NoUevent bool
	// Throttle, when on, postpones periodic and trigger-file collections
	// (the agent is over its CPU budget). Nil never postpones.
	Throttle *throttle.Signal
	// Logger receives collection errors. Nil discards.
	Logger *slog.Logger
}

// Status says what the sensor collects and whether it works.
type Status struct {
	// Snapshots and Diffs count the full snapshots sent and the
	// comparisons made; Changes the change events sent.
	Snapshots, Diffs, Changes uint64
	// Postponed counts collections put off while the agent backed off.
	Postponed uint64
	// Uevents counts kernel module uevents received; Uevent is "on" when
	// the uevent listener runs, otherwise why not.
	Uevents uint64
	Uevent  string
	// Packages is the package manager(s) read ("dpkg", "rpm", "dpkg+rpm")
	// or "none".
	Packages string
	// Items counts the items of the last collection by kind.
	Items map[string]int
	// Err is the last collection error (one kind failing is reported here
	// and that kind is left out until it works again). Nil when healthy.
	Err error
}

// String renders s for the agent's health event.
func (s Status) String() string {
	str := fmt.Sprintf("snapshots=%d diffs=%d changes=%d postponed=%d uevent=%s uevents=%d packages=%s", s.Snapshots, s.Diffs, s.Changes, s.Postponed, s.Uevent, s.Uevents, s.Packages)
	for _, k := range Kinds {
		if n, ok := s.Items[k]; ok {
			str += fmt.Sprintf(" %s=%d", k, n)
		}
	}
	if s.Err != nil {
		str += " err=" + s.Err.Error()
	}
	return str
}

// Sensor collects the host's inventory.
type Sensor struct {
	opts Options

	mu     sync.Mutex
	status Status
}

// New returns a Sensor with defaults filled in.
func New(opts Options) *Sensor {
	if opts.Root == "" {
		opts.Root = "/"
	}
	if opts.ProcModules == "" {
		opts.ProcModules = "/proc/modules"
	}
	if opts.SnapshotEvery <= 0 {
		opts.SnapshotEvery = 12 * time.Hour
	}
	if opts.DiffEvery <= 0 {
		opts.DiffEvery = time.Minute
	}
	if opts.WatchEvery <= 0 {
		opts.WatchEvery = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Sensor{opts: opts, status: Status{Uevent: "off", Packages: "none"}}
}

// Name is the sensor's name in agent health reports.
func (s *Sensor) Name() string { return "inventory" }

// Status returns a snapshot of the sensor's state.
func (s *Sensor) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.Items = make(map[string]int, len(s.status.Items))
	for k, v := range s.status.Items {
		st.Items[k] = v
	}
	return st
}

func (s *Sensor) update(f func(*Status)) {
	s.mu.Lock()
	f(&s.status)
	s.mu.Unlock()
}
