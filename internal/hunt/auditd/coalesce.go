package auditd

import (
	"slices"
	"strconv"
	"strings"

	"github.com/vigil-edr/vigil/internal/event"
)

// DefaultMaxPending is the number of serials a Coalescer holds when
// NewCoalescer is given zero.
const DefaultMaxPending = 256

// maxGroupRecords bounds the records kept per serial (an execve with many
// PATH items); further records of that serial are dropped.
const maxGroupRecords = 64

// Coalescer groups the records of one audit event (same serial) and turns
// each execve/execveat syscall into a Sigma process_creation event with
// Image, CommandLine, CurrentDirectory, ProcessId, ParentProcessId, User and
// LogonId.
//
// A group is complete when its EOE or PROCTITLE record arrives (the kernel
// writes PROCTITLE last before EOE), when Flush is called, or when more than
// the maximum number of serials are pending: then the oldest is completed as
// it stands and counted in Evicted. A Coalescer is not safe for concurrent
// use.
type Coalescer struct {
	max     int
	pending []*group // in arrival order
	ready   []*group
	done    [16]uint64 // recently completed or ignored serials
	doneAt  int
	evicted uint64
	free    []*group
}

type group struct {
	serial  uint64
	records []Record
	lines   []uint64
}

// NewCoalescer returns a Coalescer holding at most maxPending serials
// (DefaultMaxPending when zero or negative).
func NewCoalescer(maxPending int) *Coalescer {
	if maxPending <= 0 {
		maxPending = DefaultMaxPending
	}
	return &Coalescer{max: maxPending}
}

// Evicted returns how many groups were completed early because too many
// serials were pending.
func (c *Coalescer) Evicted() uint64 { return c.evicted }

// Add offers a record; line is its line number, used as the Record of the
// event built from it. The record is copied.
func (c *Coalescer) Add(r *Record, line uint64) {
	switch r.Type {
	case "SYSCALL", "EXECVE", "CWD", "PATH", "PROCTITLE", "EOE":
	default:
		return
	}
	if c.isDone(r.Serial) {
		return
	}
	g := c.find(r.Serial)
	if r.Type == "SYSCALL" {
		arch, _ := r.Get("arch")
		nr, _ := r.Get("syscall")
		if name, ok := r.Get("SYSCALL"); ok && name != "" {
			if name != "execve" && name != "execveat" {
				c.ignore(r.Serial, g)
				return
			}
		} else if !isExec(arch, nr) {
			c.ignore(r.Serial, g)
			return
		}
	}
	if r.Type == "EOE" {
		if g != nil {
			c.complete(g)
		}
		return
	}
	if g == nil {
		if len(c.pending) >= c.max {
			c.evicted++
			c.complete(c.pending[0])
		}
		g = c.newGroup(r.Serial)
		c.pending = append(c.pending, g)
	}
	if len(g.records) < maxGroupRecords {
		g.records = append(g.records, Record{
			Node: r.Node, Type: r.Type, Time: r.Time, Serial: r.Serial,
			Fields: slices.Clone(r.Fields),
		})
		g.lines = append(g.lines, line)
	}
	if r.Type == "PROCTITLE" {
		c.complete(g)
	}
}

// Flush completes every pending group, at the end of the input.
func (c *Coalescer) Flush() {
	for len(c.pending) > 0 {
		c.complete(c.pending[0])
	}
}

// Next fills ev with the next process_creation event, if one is ready.
func (c *Coalescer) Next(ev *event.Event) bool {
	for len(c.ready) > 0 {
		g := c.ready[0]
		c.ready = c.ready[1:]
		ok := g.build(ev)
		c.release(g)
		if ok {
			return true
		}
	}
	return false
}

func (c *Coalescer) find(serial uint64) *group {
	for _, g := range c.pending {
		if g.serial == serial {
			return g
		}
	}
	return nil
}

func (c *Coalescer) newGroup(serial uint64) *group {
	var g *group
	if n := len(c.free); n > 0 {
		g, c.free = c.free[n-1], c.free[:n-1]
	} else {
		g = new(group)
	}
	g.serial = serial
	return g
}

func (c *Coalescer) release(g *group) {
	clear(g.records)
	g.records, g.lines = g.records[:0], g.lines[:0]
	if len(c.free) < 8 {
		c.free = append(c.free, g)
	}
}

func (c *Coalescer) remove(g *group) {
	if i := slices.Index(c.pending, g); i >= 0 {
		c.pending = slices.Delete(c.pending, i, i+1)
	}
}

func (c *Coalescer) complete(g *group) {
	c.remove(g)
	c.markDone(g.serial)
	c.ready = append(c.ready, g)
}

// ignore drops a serial whose syscall is not an exec.
func (c *Coalescer) ignore(serial uint64, g *group) {
	if g != nil {
		c.remove(g)
		c.release(g)
	}
	c.markDone(serial)
}

func (c *Coalescer) markDone(serial uint64) {
	c.done[c.doneAt] = serial
	c.doneAt = (c.doneAt + 1) % len(c.done)
}

func (c *Coalescer) isDone(serial uint64) bool {
	return slices.Contains(c.done[:], serial) && serial != 0
}

// build fills ev from the group; it reports false when the group holds no
// exec syscall.
func (g *group) build(ev *event.Event) bool {
	var sys, cwd, title *Record
	var path0 *Record
	var execve *Record
	merged := false
	line := uint64(0)
	for i := range g.records {
		r := &g.records[i]
		switch r.Type {
		case "SYSCALL":
			sys, line = r, g.lines[i]
		case "EXECVE":
			// The kernel continues a long argument list in further EXECVE
			// records of the same event; their fields are joined in order.
			switch {
			case execve == nil:
				execve = r
			case !merged:
				execve = &Record{Type: "EXECVE", Fields: append(slices.Clip(execve.Fields), r.Fields...)}
				merged = true
			default:
				execve.Fields = append(execve.Fields, r.Fields...)
			}
		case "CWD":
			cwd = r
		case "PROCTITLE":
			title = r
		case "PATH":
			if v, _ := r.Get("item"); v == "0" && path0 == nil {
				path0 = r
			}
		}
	}
	if sys == nil {
		return false
	}
	ev.Reset()
	ev.Time = sys.Time
	ev.Product = "linux"
	ev.Categories = catProcessCreation
	ev.Record = line
	image, ok := sys.Get("exe")
	if !ok && path0 != nil {
		image, _ = path0.Get("name")
	}
	add := func(name, value string) {
		if value != "" {
			ev.Add(name, value)
		}
	}
	add("Image", image)
	cmdline := ""
	if execve != nil {
		cmdline = commandLine(execve)
	} else if title != nil {
		cmdline, _ = title.Get("proctitle")
	}
	add("CommandLine", cmdline)
	if cwd != nil {
		v, _ := cwd.Get("cwd")
		add("CurrentDirectory", v)
	}
	pid, _ := sys.Get("pid")
	ppid, _ := sys.Get("ppid")
	add("ProcessId", pid)
	add("ParentProcessId", ppid)
	// User: the enriched name when auditd gives one, else the numeric uid.
	user, ok := sys.Get("UID")
	if !ok {
		user, _ = sys.Get("uid")
	}
	add("User", user)
	// auid 4294967295 (-1) means "never logged in" (daemons): no LogonId.
	if auid, _ := sys.Get("auid"); auid != "4294967295" && auid != "-1" {
		add("LogonId", auid)
	}
	for _, name := range [...]string{"comm", "tty", "ses", "success"} {
		v, _ := sys.Get(name)
		add(name, v)
	}
	for _, f := range sys.Fields {
		if f.Name == "key" {
			add("key", f.Value)
		}
	}
	return true
}

// commandLine joins the EXECVE arguments a0…a(argc-1) with spaces. An
// argument too long for one record is split into aN[0], aN[1] … after
// aN_len=…; the pieces are joined back.
func commandLine(r *Record) string {
	argc := -1
	if v, ok := r.Get("argc"); ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 && n < 1<<16 {
			argc = n
		}
	}
	var b strings.Builder
	var parts []string // pieces of a split argument, by index
	n := 0
	flush := func() {
		if parts == nil {
			return
		}
		if n > 0 {
			b.WriteByte(' ')
		}
		for _, p := range parts {
			b.WriteString(p)
		}
		parts = nil
		n++
	}
	cur := -1
	for _, f := range r.Fields {
		if !isArgKey(f.Name) {
			continue
		}
		idxStr, piece, split := strings.Cut(f.Name[1:], "[")
		idx, err := strconv.Atoi(idxStr)
		if err != nil || (argc >= 0 && idx >= argc) {
			continue
		}
		if idx != cur {
			flush()
			cur = idx
		}
		if split {
			pi, err := strconv.Atoi(strings.TrimSuffix(piece, "]"))
			if err != nil || pi > 1<<16 {
				continue
			}
			for len(parts) <= pi {
				parts = append(parts, "")
			}
			parts[pi] = f.Value
		} else {
			parts = append(parts[:0], f.Value)
		}
	}
	flush()
	return b.String()
}
