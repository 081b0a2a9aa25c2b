//go:build linux

package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

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
	queue := make(chan item, s.opts.QueueSize)
	var wg sync.WaitGroup
	for range s.opts.HashWorkers {
		wg.Go(p.hash.work)
	}
	wg.Go(func() { s.output(ctx, queue, out) })
	wg.Go(func() { s.watchLost(ctx, a) })

	err = s.receive(ctx, a, p, queue)
	close(queue)
	close(p.hash.jobs)
	cancel()
	wg.Wait()
	if err != nil {
		s.setState("", "", err)
		return err
	}
	return nil
}

// batchDelay is how long the receiver waits after the socket ran dry
// before reading again. The kernel writes the five to eight records of an
// exec one by one; waking for each costs more than the work on it (a
// blocking receive, a thread wake-up, the scheduler), so the receiver lets
// them gather. The records wait in the kernel (unicast) or in our 16 MiB
// socket buffer (multicast) meanwhile.
const batchDelay = 2 * time.Millisecond

// receive reads records until ctx ends, turns them into items and queues
// them in order.
func (s *Sensor) receive(ctx context.Context, a *auditConn, p *pipeline, queue chan<- item) error {
	blocking, waited := true, false
	for ctx.Err() == nil {
		msg, err := a.rx.Receive(!blocking)
		switch {
		case err == nil:
			p.record(uint16(msg.Type), msg.Data)
			blocking = false
			continue
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN) && !blocking:
			// The socket ran dry: hand over what is complete, let more
			// records gather once, then block again.
			if !s.drain(ctx, p, queue) {
				return nil
			}
			if !waited {
				waited = true
				time.Sleep(batchDelay)
				continue
			}
			blocking, waited = true, false
			continue
		case errors.Is(err, syscall.EAGAIN):
			// Quiet for recvTimeout: complete what is pending, since the
			// records that would complete it are not coming.
			p.flush()
			if !s.drain(ctx, p, queue) {
				return nil
			}
			continue
		case errors.Is(err, syscall.ENOBUFS):
			s.lost.Add(1)
			s.opts.Logger.Warn("process sensor: audit socket overrun, records lost")
			continue
		default:
			return fmt.Errorf("process sensor: receive: %w", err)
		}
	}
	return nil
}

// drain queues every completed event; false means ctx ended.
func (s *Sensor) drain(ctx context.Context, p *pipeline, queue chan<- item) bool {
	for {
		it, ok := p.next()
		if !ok {
			return true
		}
		select {
		case queue <- it:
		case <-ctx.Done():
			return false
		}
	}
}

// output waits for each event's hash (at most HashWait) and calls out, in
// queue order. After ctx ends it still delivers what is queued, without
// waiting for hashes.
func (s *Sensor) output(ctx context.Context, queue <-chan item, out func(*event.Event)) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for it := range queue {
		if j := it.job; j != nil {
			timer.Reset(s.opts.HashWait)
			select {
			case <-j.done:
			case <-timer.C:
			case <-ctx.Done():
			}
			timer.Stop()
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
		out(it.ev)
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
	users   users
	parents *parents
	cgroups cgroups
	hash    *hasher
	failed  uint64
}

// maxExecvePending bounds the serials whose EXECVE records are being
// merged; beyond it they are handed to the coalescer as they stand.
const maxExecvePending = 64

func newPipeline(opts *Options) *pipeline {
	return &pipeline{
		co:      auditd.NewCoalescer(0),
		execve:  make(map[uint64]*auditd.Record),
		users:   users{path: "/etc/passwd"},
		parents: newParents(opts.ParentTable),
		hash:    newHasher(opts.MaxHashBytes, 256),
	}
}

// recordTypes names the audit message types the coalescer needs.
var recordTypes = map[uint16]string{
	1300: "SYSCALL",
	1302: "PATH",
	1307: "CWD",
	1309: "EXECVE",
	1320: "EOE",
	1327: "PROCTITLE",
}

// record takes one netlink message: its type and its text,
// "audit(SECONDS.MILLIS:SERIAL): key=value …".
func (p *pipeline) record(typ uint16, data []byte) {
	name, ok := recordTypes[typ]
	if !ok {
		return
	}
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
	var image, cmdline, pid, ppid, uid string
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
		case "User":
			uid = f.Value
			if n := p.users.name(uid); n != "" {
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
	if par, ok := p.parents.get(ppid); ok {
		if par.image != "" {
			ev.Add("ParentImage", par.image)
		}
		if par.cmdline != "" {
			ev.Add("ParentCommandLine", par.cmdline)
		}
	}
	if pid != "" {
		p.parents.put(pid, parent{image: image, cmdline: cmdline})
		if cg, ok := p.cgroups.lookup(pid); ok {
			ev.Add("Cgroup", cg.path)
			if cg.id != "" {
				ev.Add("CgroupId", cg.id)
			}
			if cg.container != "" {
				ev.Add("ContainerId", cg.container)
			}
		}
	}
	it := item{ev: ev}
	sum, job, missing, ok := p.hash.lookup(image)
	switch {
	case sum != "":
		ev.Add("Hashes", "SHA256="+sum)
	case job != nil:
		it.job = job
	case !missing && !ok:
		it.unhashed = true
	}
	return it
}
