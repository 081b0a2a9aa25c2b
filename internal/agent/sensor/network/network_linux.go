//go:build linux

package network

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/vigil-edr/vigil/internal/agent/fdwait"
	"github.com/vigil-edr/vigil/internal/event"
)

const ebpfLimits = "not seen: socket operations submitted through io_uring, 32-bit compat syscalls, addresses passed to sendmmsg/recvmmsg"

// Run probes the kernel, reports connections and listening sockets to out
// until ctx ends, and then detaches everything it attached. It returns an
// error wrapping ErrUnavailable when no mechanism works.
func (s *Sensor) Run(ctx context.Context, out func(*event.Event)) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("network sensor: Run called twice")
	}
	defer s.running.Store(false)
	diag, diagErr := openDiag()
	if diag != nil {
		defer diag.Close()
	}
	why := "disabled by configuration"
	if !s.opts.DisableEBPF {
		p, note, err := loadProbe(&s.opts)
		if err == nil {
			defer p.Close()
			detail := ebpfLimits
			if note != "" {
				detail = note + "; " + detail
			}
			if diag == nil {
				detail += fmt.Sprintf("; no listening-socket report: %v", diagErr)
			}
			s.setState(MechEBPF, detail, nil)
			s.opts.Logger.Info("network sensor", "mechanism", MechEBPF)
			return s.runProbe(ctx, p, diag, out)
		}
		why = err.Error()
		s.opts.Logger.Warn("network sensor: eBPF unavailable, falling back to sock_diag polling", "err", err)
	}
	if diag == nil {
		err := fmt.Errorf("%w: eBPF: %s; sock_diag: %v", ErrUnavailable, why, diagErr)
		s.setState(MechUnavailable, "", err)
		return err
	}
	s.setState(MechPoll, fmt.Sprintf("eBPF not used (%s); polling every %s misses connections that open and close between polls, and names no process for one whose process exited first", why, s.opts.PollEvery), nil)
	return s.runPoll(ctx, diag, out)
}

// clock converts the kernel's CLOCK_MONOTONIC stamps to wall time.
type clock struct{ offset int64 }

func (c *clock) sync() {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) == nil {
		c.offset = time.Now().UnixNano() - ts.Nano()
	}
}

func (c *clock) wall(mono uint64) time.Time { return time.Unix(0, c.offset+int64(mono)).UTC() }

// runProbe is the eBPF receive loop: one goroutine reads the ring buffer,
// enriches and calls out; in between (every FlushEvery) it collects the
// kernel's drop count and sends the listening report when due.
func (s *Sensor) runProbe(ctx context.Context, p *probe, diag *diagSock, out func(*event.Event)) error {
	var (
		clk   clock
		rec   ringbuf.Record
		r     record
		ev    event.Event
		procs = newProcs(s.opts.ProcCache)
		names = newHosts(4096)
	)
	clk.sync()
	nextReport := time.Now()
	// The ring is drained without waiting (a deadline in the past) every
	// FlushEvery, on a timer: waiting in the reader's epoll instead is a
	// system call blocked for up to FlushEvery, which the runtime takes
	// its P back from and then wakes its monitor for, dozens of wake-ups a
	// time. After a drain that took a quarter of the ring or more, the next
	// comes after FlushEvery/10, so a burst is not dropped while a timer
	// runs.
	var pauser fdwait.Pauser
	drained := 0
	p.reader.SetDeadline(time.Unix(1, 0))
	for {
		err := p.reader.ReadInto(&rec)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			s.dropped.Store(p.drops())
			now := time.Now()
			if diag != nil && !now.Before(nextReport) {
				clk.sync()
				s.report(diag, procs, &ev, out)
				nextReport = now.Add(s.opts.ReportEvery)
			}
			next := s.opts.FlushEvery
			if drained >= p.reader.BufferSize()/4 {
				next /= 10
			}
			drained = 0
			if !pauser.Pause(ctx, next) {
				return nil
			}
			continue
		case err != nil:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("ring buffer: %w", err)
		}
		drained += len(rec.RawSample) + 8 // each record has an 8-byte header in the ring
		if len(rec.RawSample) == dnsRecordSize {
			if n := int(binary.NativeEndian.Uint16(rec.RawSample[2:])); n <= dnsRecordSize-8 {
				names.learn(time.Now(), rec.RawSample[8:8+n])
			}
			continue
		}
		if err := decodeRecord(rec.RawSample, &r); err != nil {
			s.opts.Logger.Debug("network sensor: bad record", "err", err)
			continue
		}
		t := clk.wall(r.Mono)
		fill(&ev, t, &r, procs.lookup(&r), names.name(t, r.Remote.Addr()))
		s.events.Add(1)
		out(&ev)
	}
}

// Listening lists the host's listening sockets with the pid of a process
// holding each (the network namespace of the caller).
func Listening() ([]Listener, error) {
	d, err := openDiag()
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return listening(d)
}

func listening(d *diagSock) ([]Listener, error) {
	var ls []Listener
	add := func(so *sock) {
		ls = append(ls, Listener{Protocol: protoName(so.Protocol), Local: so.Local, UID: so.UID, Inode: so.Inode})
	}
	if err := d.dump(protoTCP, 1<<tcpListen, add); err != nil {
		return nil, err
	}
	if err := d.dump(protoUDP, 1<<tcpClose, add); err != nil {
		return nil, err
	}
	owners := make(map[uint32]uint32, len(ls))
	for _, l := range ls {
		if l.Inode != 0 {
			owners[l.Inode] = 0
		}
	}
	socketOwners(owners)
	for i := range ls {
		ls[i].PID = owners[ls[i].Inode]
	}
	return ls, nil
}

// report sends the listening-socket report: one event per listener, all
// with the same ReportTime.
func (s *Sensor) report(d *diagSock, procs *procs, ev *event.Event, out func(*event.Event)) {
	ls, err := listening(d)
	if err != nil {
		s.opts.Logger.Warn("network sensor: listening report", "err", err)
		return
	}
	now := time.Now().UTC()
	stamp := now.Format(time.RFC3339Nano)
	for _, l := range ls {
		ev.Reset()
		ev.Time = now
		ev.Product = "linux"
		ev.Source = "network"
		ev.Categories = catListen
		ev.Add("EventType", TypeListening)
		ev.Add("ReportTime", stamp)
		if l.PID == 0 {
			s.unattributed.Add(1)
		}
		addProcess(ev, l.PID, 0, procs.current(l.PID, l.UID))
		ev.Add("Protocol", l.Protocol)
		addEnd(ev, "Source", l.Local)
		s.events.Add(1)
		out(ev)
	}
}

// runPoll is the fallback: a sock_diag dump every PollEvery; sockets that
// were not there at the previous poll are reported. The first poll only
// records what exists.
func (s *Sensor) runPoll(ctx context.Context, d *diagSock, out func(*event.Event)) error {
	var (
		ev    event.Event
		procs = newProcs(s.opts.ProcCache)
		seen  = map[uint64]bool{}
		first = true
	)
	t := time.NewTicker(s.opts.PollEvery)
	defer t.Stop()
	nextReport := time.Now()
	for {
		now := time.Now()
		if !now.Before(nextReport) {
			s.report(d, procs, &ev, out)
			nextReport = now.Add(s.opts.ReportEvery)
		}
		if err := s.poll(d, procs, seen, first, &ev, out); err != nil {
			s.opts.Logger.Warn("network sensor: poll", "err", err)
		}
		first = false
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *Sensor) poll(d *diagSock, procs *procs, seen map[uint64]bool, first bool, ev *event.Event, out func(*event.Event)) error {
	// A TCP socket on a listening port was accepted; any other was
	// connected from here (the kernel does not hand out a listening port
	// as an ephemeral one).
	listen := map[uint16]bool{}
	if err := d.dump(protoTCP, 1<<tcpListen, func(so *sock) { listen[so.Local.Port()] = true }); err != nil {
		return err
	}
	var fresh []sock
	cur := make(map[uint64]bool, len(seen))
	collect := func(so *sock) {
		cur[so.Cookie] = true
		if !seen[so.Cookie] && !first {
			fresh = append(fresh, *so)
		}
	}
	if err := d.dump(protoTCP, 1<<tcpEstablished|1<<tcpSynSent, collect); err != nil {
		return err
	}
	if err := d.dump(protoUDP, 1<<tcpEstablished, collect); err != nil {
		return err
	}
	clear(seen)
	for k := range cur {
		seen[k] = true
	}
	if len(fresh) == 0 {
		return nil
	}
	owners := make(map[uint32]uint32, len(fresh))
	for _, so := range fresh {
		if so.Inode != 0 {
			owners[so.Inode] = 0
		}
	}
	socketOwners(owners)
	now := time.Now().UTC()
	for i := range fresh {
		so := &fresh[i]
		r := record{Kind: kindConnect, Protocol: so.Protocol, Local: so.Local, Remote: so.Remote, UID: so.UID}
		if so.Protocol == protoTCP && listen[so.Local.Port()] {
			r.Kind = kindAccept
		}
		r.PID = owners[so.Inode]
		if r.PID == 0 {
			s.unattributed.Add(1)
		} else {
			r.PPID = ppidOf(r.PID)
		}
		p := procs.current(r.PID, r.UID)
		if r.PPID != 0 {
			p.parentImage = procs.readlink(fmt.Sprintf("/proc/%d/exe", r.PPID))
		}
		fill(ev, now, &r, p, "")
		s.events.Add(1)
		out(ev)
	}
	return nil
}
