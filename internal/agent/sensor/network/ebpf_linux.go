//go:build linux

package network

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// probe is the eBPF mechanism, loaded and attached.
type probe struct {
	objs   networkObjects
	links  []link.Link
	reader *ringbuf.Reader
}

// attachments: every program and the tracepoint it runs on.
func (o *networkObjects) attachments() []struct {
	group, name string
	prog        *ebpf.Program
} {
	p := &o.networkPrograms
	return []struct {
		group, name string
		prog        *ebpf.Program
	}{
		{"sched", "sched_process_exec", p.SchedExec},
		{"syscalls", "sys_enter_connect", p.EnterConnect},
		{"syscalls", "sys_exit_connect", p.ExitConnect},
		{"syscalls", "sys_enter_accept", p.EnterAccept},
		{"syscalls", "sys_exit_accept", p.ExitAccept},
		{"syscalls", "sys_enter_accept4", p.EnterAccept4},
		{"syscalls", "sys_exit_accept4", p.ExitAccept4},
		{"syscalls", "sys_enter_sendto", p.EnterSendto},
		{"syscalls", "sys_exit_sendto", p.ExitSendto},
		{"syscalls", "sys_enter_sendmsg", p.EnterSendmsg},
		{"syscalls", "sys_exit_sendmsg", p.ExitSendmsg},
		{"syscalls", "sys_enter_recvfrom", p.EnterRecvfrom},
		{"syscalls", "sys_exit_recvfrom", p.ExitRecvfrom},
		{"syscalls", "sys_enter_recvmsg", p.EnterRecvmsg},
		{"syscalls", "sys_exit_recvmsg", p.ExitRecvmsg},
		{"syscalls", "sys_enter_listen", p.EnterListen},
		{"syscalls", "sys_exit_listen", p.ExitListen},
	}
}

// ensureTracefs mounts tracefs at /sys/kernel/tracing when neither it nor
// debugfs's tracing directory is there: tracepoints are attached by the id
// the kernel publishes in it. It reports whether it mounted it.
func ensureTracefs() (bool, error) {
	for _, d := range []string{"/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"} {
		if _, err := os.Stat(d); err == nil {
			return false, nil
		}
	}
	if err := unix.Mount("tracefs", "/sys/kernel/tracing", "tracefs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return false, fmt.Errorf("tracefs is not mounted and mounting it failed: %w", err)
	}
	return true, nil
}

// loadProbe loads the programs (CO-RE relocated against the running
// kernel's BTF), attaches them and opens the ring buffer. Any failure
// undoes what was done and says which step failed.
func loadProbe(opts *Options) (*probe, string, error) {
	mounted, err := ensureTracefs()
	if err != nil {
		return nil, "", err
	}
	note := ""
	if mounted {
		note = "mounted tracefs at /sys/kernel/tracing"
	}
	// Kernels before 5.11 charge eBPF maps to RLIMIT_MEMLOCK; later ones
	// to the cgroup, where this is a no-op.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, note, fmt.Errorf("raising RLIMIT_MEMLOCK for eBPF maps: %w", err)
	}
	spec, err := loadNetwork()
	if err != nil {
		return nil, note, err
	}
	if err := spec.Variables["dedup_window_ns"].Set(uint64(opts.UDPWindow.Nanoseconds())); err != nil {
		return nil, note, err
	}
	if err := spec.Variables["wakeup_bytes"].Set(uint64(min(64<<10, opts.RingBytes/4))); err != nil {
		return nil, note, err
	}
	spec.Maps["events"].MaxEntries = uint32(opts.RingBytes)
	p := &probe{}
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			// The last lines say why; the whole log is long.
			lines := ve.Log
			if len(lines) > 8 {
				lines = lines[len(lines)-8:]
			}
			return nil, note, fmt.Errorf("eBPF verifier refused the programs: %s", strings.Join(lines, "; "))
		}
		return nil, note, fmt.Errorf("loading eBPF programs: %w", err)
	}
	for _, a := range p.objs.attachments() {
		l, err := link.Tracepoint(a.group, a.name, a.prog, nil)
		if err != nil {
			p.Close()
			return nil, note, fmt.Errorf("attaching to tracepoint %s/%s: %w", a.group, a.name, err)
		}
		p.links = append(p.links, l)
	}
	p.reader, err = ringbuf.NewReader(p.objs.Events)
	if err != nil {
		p.Close()
		return nil, note, fmt.Errorf("ring buffer: %w", err)
	}
	return p, note, nil
}

// drops sums the per-CPU count of records the ring buffer could not take.
func (p *probe) drops() uint64 {
	var per []uint64
	if err := p.objs.Drops.Lookup(uint32(0), &per); err != nil {
		return 0
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n
}

// Close detaches the programs first (no new records), then frees the rest.
func (p *probe) Close() error {
	for _, l := range p.links {
		l.Close()
	}
	p.links = nil
	if p.reader != nil {
		p.reader.Close()
	}
	return p.objs.Close()
}
