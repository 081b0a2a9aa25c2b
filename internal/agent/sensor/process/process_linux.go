//go:build linux

package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vigil-edr/vigil/internal/agent/fdwait"
	"github.com/vigil-edr/vigil/internal/agent/usernames"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/hunt/auditd"
)

// catProcessCreation is the shared, read-only category list of every event.
var catProcessCreation = []string{"process_creation"}

// Run probes the kernel, installs the audit rules and reports every exec to
// out until ctx ends; then it removes the rules, restores what it changed
// and returns nil. It returns an error wrapping ErrUnavailable at once when
// the host offers no usable mechanism, and any error that stops the
// receiver.
func (s *Sensor) Run(ctx context.Context, out func(*event.Event)) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("process sensor: already running")
	}
	defer s.running.Store(false)
	log := s.opts.Logger

	a, err := openAudit(&s.opts)
	if err != nil {
		s.setState(MechUnavailable, "", err)
		log.Warn("process sensor unavailable", "err", err)
		return err
	}
	defer a.close()
	s.setState(a.mechanism, a.detail, nil)
	log.Info("process sensor started", "mechanism", a.mechanism, "detail", a.detail)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := newPipeline(&s.opts)
	o := &outlet{s: s, out: out, queue: make(chan item, s.opts.QueueSize)}
	var wg sync.WaitGroup
	for range s.opts.HashWorkers {
		wg.Go(p.hash.work)
	}
	wg.Go(func() { o.run(ctx) })
	wg.Go(func() { s.watchLost(ctx, a) })

	err = s.receive(ctx, a, p, o)
	close(o.queue)
	close(p.hash.jobs)
	cancel()
	wg.Wait()
	if err != nil {
		s.setState("", "", err)
		return err
	}
	return nil
}

// receive reads records, up to recvBatch per system call, until ctx ends,
// turns them into items and hands them to o in order.
func (s *Sensor) receive(ctx context.Context, a *auditConn, p *pipeline, o *outlet) error {
	// The socket stays out of the Go runtime's poller (package fdwait):
	// between rounds the records of the next execs gather in the kernel
	// without waking anything. Each round reads what is queued without
	// waiting; only a read that found nothing waits, in poll(2), for the
	// next record, at most recvTimeout when events may be pending. An idle
	// sensor does not wake up at all.
	fd := a.rxSock.fd
	w, err := fdwait.New(ctx)
	if err != nil {
		return fmt.Errorf("process sensor: %w", err)
	}
	defer w.Close()
	b := newBatch()
	roundStart := time.Now()
	var pauser fdwait.Pauser
	for ctx.Err() == nil {
		p.cacheOnly = s.opts.Throttle.On()
		n, err := b.recv(fd)
		for i := range n {
			if typ, data, ok := b.message(i); ok {
				p.record(typ, data)
			}
		}
		switch {
		case n == recvBatch:
			continue // probably more queued
		case err == nil:
			// Probably all read: hand over what is complete. (Waiting a
			// little for an exec's remaining records to gather costs more,
			// a timer wake-up per exec, than a wake-up per round.)
			if !o.drain(ctx, p) {
				return nil
			}
			s.deferred.Store(p.deferred)
			// Let the records of the next execs gather in the kernel and
			// take them in one round: ThrottleRound apart while backing
			// off, else Round.
			pause := time.Until(roundStart.Add(s.opts.Round))
			if p.cacheOnly {
				s.slowed.Add(1)
				pause = s.opts.ThrottleRound
			}
			if !pauser.Pause(ctx, pause) {
				return nil
			}
			roundStart = time.Now()
			p.newRound()
		case errors.Is(err, syscall.EAGAIN):
			// Nothing queued: wait for the next record.
			timeout := time.Duration(-1)
			if p.pending {
				timeout = recvTimeout
			}
			ready, err := w.Wait(fd, timeout)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				return fmt.Errorf("process sensor: wait for records: %w", err)
			}
			if !ready {
				// Quiet for recvTimeout: complete what is pending, since
				// the records that would complete it are not coming.
				p.flush()
				if !o.drain(ctx, p) {
					return nil
				}
			}
			roundStart = time.Now()
		case errors.Is(err, syscall.EINTR):
		case errors.Is(err, syscall.ENOBUFS):
			s.lost.Add(1)
			s.opts.Logger.Warn("process sensor: audit socket overrun, records lost")
		default:
			return fmt.Errorf("process sensor: receive: %w", err)
		}
	}
	return nil
}

// outlet calls out, one event at a time, in the order of the items. The
// receiver calls out itself for an item that is ready (no hash to wait for)
// when nothing is queued before it, which saves a goroutine hand-off per
// exec; other items go through queue to run, which waits for their hashes.
type outlet struct {
	s     *Sensor
	out   func(*event.Event)
	queue chan item
	// queued counts items given to queue whose out call has not returned.
	// Only the receiver increments it, so when it reads zero run is idle
	// and every earlier item has been delivered.
	queued atomic.Int64
}

// drain delivers or queues every completed event; false means ctx ended.
func (o *outlet) drain(ctx context.Context, p *pipeline) bool {
	for {
		it, ok := p.next()
		if !ok {
			return true
		}
		if o.queued.Load() == 0 && it.ready() {
			o.deliver(it, false)
			continue
		}
		o.queued.Add(1)
		select {
		case o.queue <- it:
		case <-ctx.Done():
			o.queued.Add(-1)
			return false
		}
	}
}

// ready reports whether the item needs no waiting for its hash.
func (it *item) ready() bool {
	if it.job == nil {
		return true
	}
	select {
	case <-it.job.done:
		return true
	default:
		return false
	}
}

// deliver adds the hash (when its job is done) and calls out.
func (o *outlet) deliver(it item, queued bool) {
	s := o.s
	if j := it.job; j != nil {
		select {
		case <-j.done:
			if j.sum != "" {
				it.ev.Add("Hashes", "SHA256="+j.sum)
			} else {
				s.unhash.Add(1)
			}
		default:
			s.unhash.Add(1)
		}
	} else if it.unhashed {
		s.unhash.Add(1)
	}
	s.events.Add(1)
	o.out(it.ev)
	if queued {
		o.queued.Add(-1)
	}
}

// run waits for each queued event's hash (at most HashWait) and delivers
// it, in queue order. After ctx ends it still delivers what is queued,
// without waiting for hashes.
func (o *outlet) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for it := range o.queue {
		if j := it.job; j != nil {
			timer.Reset(o.s.opts.HashWait)
			select {
			case <-j.done:
			case <-timer.C:
			case <-ctx.Done():
			}
			timer.Stop()
		}
		o.deliver(it, true)
	}
}

// watchLost reads the kernel's lost counter every StatusEvery.
func (s *Sensor) watchLost(ctx context.Context, a *auditConn) {
	t := time.NewTicker(s.opts.StatusEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d, err := a.pollLost()
		if err != nil {
			s.opts.Logger.Warn("process sensor: audit status", "err", err)
			continue
		}
		if d > 0 {
			s.lost.Add(uint64(d))
			s.opts.Logger.Warn("process sensor: the kernel lost audit records", "lost", d, "total", s.lost.Load())
		}
	}
}

// item is one event on its way to out, with the hash job it waits for.
type item struct {
	ev       *event.Event
	job      *hashJob
	unhashed bool
}

// pipeline turns raw audit messages into enriched events. It is used by the
// receiver goroutine only (the hasher has its own lock).
type pipeline struct {
	line    []byte
	co      *auditd.Coalescer
	execve  map[uint64]*auditd.Record // EXECVE records merged per serial, not yet given to co
	spare   *event.Event
	users   *usernames.Cache
	parents *parents
	cgroups cgroups
	stat    statBuf
	hash    *hasher
	failed  uint64
	// pending is true when records were taken since the last flush.
	pending bool
	// cacheOnly: take hashes from the cache only (the agent backs off);
	// deferred counts the hashes left out for it.
	cacheOnly bool
	deferred  uint64
	// roundCgroups holds parents' cgroups for the current receive round.
	roundCgroups map[string]cgroupInfo
}

// parentCgroup returns the cgroup of a parent process, remembered for the
// rest of the receive round (a shell starting many children is read once).
func (p *pipeline) parentCgroup(ppid string) (cgroupInfo, bool) {
	if ci, ok := p.roundCgroups[ppid]; ok {
		return ci, ci.path != ""
	}
	ci, ok := p.cgroups.lookup(ppid)
	if p.roundCgroups == nil || len(p.roundCgroups) >= 256 {
		p.roundCgroups = make(map[string]cgroupInfo)
	}
	p.roundCgroups[ppid] = ci
	return ci, ok
}

// newRound forgets what parentCgroup remembered.
func (p *pipeline) newRound() { clear(p.roundCgroups) }

// maxExecvePending bounds the serials whose EXECVE records are being
// merged; beyond it they are handed to the coalescer as they stand.
const maxExecvePending = 64

func newPipeline(opts *Options) *pipeline {
	return &pipeline{
		co:      auditd.NewCoalescer(0),
		execve:  make(map[uint64]*auditd.Record),
		users:   usernames.New("/etc/passwd"),
		parents: newParents(opts.ParentTable),
		hash:    newHasher(opts.MaxHashBytes, 256),
	}
}

// recordTypes names the audit message types the sensor parses. The kernel
// also sends PATH records (one per file the exec opened: the program, its
// interpreter, the dynamic loader) and a PROCTITLE; they are skipped
// unparsed, because SYSCALL's exe= is the Image, EXECVE has the whole argv
// and EOE ends the event. (They cannot be left out in the kernel without an
// exclude rule, which would hide them from every audit reader on the host.)
var recordTypes = map[uint16]string{
	1300: "SYSCALL",
	1307: "CWD",
	1309: "EXECVE",
	1320: "EOE",
}

// record takes one netlink message: its type and its text,
// "audit(SECONDS.MILLIS:SERIAL): key=value …".
func (p *pipeline) record(typ uint16, data []byte) {
	name, ok := recordTypes[typ]
	if !ok {
		return
	}
	p.pending = true
	data = bytes.TrimRight(data, "\x00\n")
	p.line = append(p.line[:0], "type="...)
	p.line = append(p.line, name...)
	p.line = append(p.line, " msg="...)
	p.line = append(p.line, data...)
	rec, err := auditd.ParseRecord(p.line)
	if err != nil {
		return
	}
	if rec.Type == "EXECVE" {
		// The kernel starts a new EXECVE record when the arguments do not
		// fit in one; merge them, in order, into the first.
		if m := p.execve[rec.Serial]; m != nil {
			m.Fields = append(m.Fields, rec.Fields...)
			return
		}
		if len(p.execve) >= maxExecvePending {
			p.flushExecve()
		}
		p.execve[rec.Serial] = &rec
		return
	}
	if m := p.execve[rec.Serial]; m != nil {
		p.co.Add(m, m.Serial)
		delete(p.execve, rec.Serial)
	}
	p.co.Add(&rec, rec.Serial)
}

// flushExecve hands the merged EXECVE records to the coalescer, oldest
// serial first.
func (p *pipeline) flushExecve() {
	serials := make([]uint64, 0, len(p.execve))
	for s := range p.execve {
		serials = append(serials, s)
	}
	slices.Sort(serials)
	for _, s := range serials {
		p.co.Add(p.execve[s], s)
		delete(p.execve, s)
	}
}

// flush completes everything pending.
func (p *pipeline) flush() {
	if len(p.execve) > 0 {
		p.flushExecve()
	}
	p.co.Flush()
	p.pending = false
}

// next returns the next completed, enriched event.
func (p *pipeline) next() (item, bool) {
	for {
		ev := p.spare
		if ev == nil {
			ev = new(event.Event)
		}
		if !p.co.Next(ev) {
			p.spare = ev
			return item{}, false
		}
		if v, _ := ev.Get("success"); v == "no" {
			p.failed++ // a failed exec creates no process
			continue
		}
		p.spare = nil
		return p.enrich(ev), true
	}
}

// enrich renames the coalescer's fields to the sensor's and adds the parent,
// user, cgroup and hash.
func (p *pipeline) enrich(ev *event.Event) item {
	ev.Product = "linux"
	ev.Categories = catProcessCreation
	var image, cmdline, pid, ppid, uid, comm string
	for i := range ev.Fields {
		f := &ev.Fields[i]
		switch f.Name {
		case "Image":
			image = f.Value
		case "CommandLine":
			cmdline = f.Value
		case "ProcessId":
			pid = f.Value
		case "ParentProcessId":
			ppid = f.Value
		case "comm":
			comm = f.Value
		case "User":
			uid = f.Value
			if n := p.users.Name(uid); n != "" {
				f.Value = n
			}
		case "tty":
			f.Name = "Terminal"
		case "ses":
			f.Name = "SessionId"
		}
	}
	if uid != "" {
		ev.Add("UserId", uid)
	}
	par, havePar := p.parents.get(ppid)
	if havePar {
		if par.image != "" {
			ev.Add("ParentImage", par.image)
		}
		if par.cmdline != "" {
			ev.Add("ParentCommandLine", par.cmdline)
		}
		if par.start != "" {
			ev.Add("ParentProcessStartTime", par.start)
		}
	}
	if pid != "" {
		// /proc/<pid>/stat first: when the process is gone already (most
		// short-lived ones are) that one failed open also saves the
		// cgroup's.
		start, alive := p.stat.startTime(pid, ppid, comm)
		if start != "" {
			ev.Add("ProcessStartTime", start)
		}
		var cg cgroupInfo
		ok := false
		if alive {
			cg, ok = p.cgroups.lookup(pid)
		}
		inherited := false
		if !ok && ppid != "" && ppid != "0" && ppid != "1" && ppid != "2" {
			// Gone already (records are read in rounds): a child is in its
			// parent's cgroup unless its launcher moved it before the exec,
			// as systemd (pid 1) does; so say where the value came from.
			cg, ok = p.parentCgroup(ppid)
			if !ok && havePar && par.cgroup.path != "" {
				// The parent is gone too (a script's last children):
				// the cgroup its own exec event had.
				cg, ok = par.cgroup, true
			}
			inherited = ok
		}
		kept := parent{image: image, cmdline: cmdline, start: start}
		if ok {
			kept.cgroup = cg
		}
		p.parents.put(pid, kept)
		if ok {
			ev.Add("Cgroup", cg.path)
			if cg.id != "" {
				ev.Add("CgroupId", cg.id)
			}
			if cg.container != "" {
				ev.Add("ContainerId", cg.container)
			}
			if inherited {
				ev.Add("CgroupSource", "parent")
			}
		}
	}
	it := item{ev: ev}
	sum, job, missing, ok := p.hash.lookup(image, p.cacheOnly)
	switch {
	case sum != "":
		ev.Add("Hashes", "SHA256="+sum)
	case job != nil:
		it.job = job
	case !missing && !ok:
		it.unhashed = true
		if p.cacheOnly {
			p.deferred++
		}
	}
	return it
}
