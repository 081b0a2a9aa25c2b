//go:build linux

package network

import (
	"context"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/vigil-edr/vigil/internal/event"
)

// BenchmarkRecord measures the user-space work per ring-buffer record:
// decoding, the process cache (a hit: the common case of a process with
// several connections) and building the event.
func BenchmarkRecord(b *testing.B) {
	raw := seedRecord()
	procs := newProcs(64)
	var (
		r   record
		ev  event.Event
		clk clock
	)
	clk.sync()
	b.ReportAllocs()
	b.SetBytes(recordSize)
	for b.Loop() {
		if err := decodeRecord(raw, &r); err != nil {
			b.Fatal(err)
		}
		fill(&ev, clk.wall(r.Mono), &r, procs.lookup(&r), "")
	}
}

// BenchmarkKernel measures what the eBPF programs add to the syscalls they
// watch, with the kernel's own accounting (bpf_stats): bpf-ns/op is the
// programs' run time per operation, on top of ns/op. "off" is the same
// operation without the sensor. The workloads: a loopback TCP connection
// (connect, accept, close: one event each way), a UDP datagram to the same
// peer (folded by the dedupe rule: the steady state of a chatty UDP
// client), and a unix-socket recvmsg (a socket the sensor ignores, on the
// hottest hook).
func BenchmarkKernel(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to load eBPF programs: NOT MEASURED")
	}
	workloads := []struct {
		name string
		run  func(b *testing.B) func()
	}{
		{"tcp-connect-accept", tcpOnce},
		{"udp-send-folded", udpOnce},
		{"unix-recvmsg", unixOnce},
	}
	for _, w := range workloads {
		b.Run(w.name+"/off", func(b *testing.B) {
			op := w.run(b)
			b.ResetTimer()
			for b.Loop() {
				op()
			}
		})
		b.Run(w.name+"/on", func(b *testing.B) {
			opts := Options{}
			opts.setDefaults()
			p, _, err := loadProbe(&opts)
			if err != nil {
				b.Skipf("eBPF unavailable: %v", err)
			}
			defer p.Close()
			stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
			if err != nil {
				b.Skipf("bpf_stats: %v", err)
			}
			defer stats.Close()
			s := New(opts)
			var events atomic.Uint64
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.runProbe(ctx, p, nil, func(*event.Event) { events.Add(1) }) }()
			op := w.run(b)
			before := progTime(p)
			b.ResetTimer()
			for b.Loop() {
				op()
			}
			b.StopTimer()
			b.ReportMetric(float64(progTime(p)-before)/float64(b.N), "bpf-ns/op")
			time.Sleep(opts.FlushEvery + 50*time.Millisecond)
			cancel()
			<-done
			b.ReportMetric(float64(events.Load())/float64(b.N), "events/op")
			if d := s.Status().Dropped; d > 0 {
				b.ReportMetric(float64(d)/float64(b.N), "dropped/op")
			}
		})
	}
}

func progTime(p *probe) time.Duration {
	var sum time.Duration
	for _, a := range p.objs.attachments() {
		if st, err := a.prog.Stats(); err == nil {
			sum += st.Runtime
		}
	}
	return sum
}

func tcpOnce(b *testing.B) func() {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	addr := ln.Addr().String()
	return func() {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			b.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
		c.Close()
	}
}

func udpOnce(b *testing.B) func() {
	srv, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	cli, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close(); cli.Close() })
	to := netip.MustParseAddrPort(srv.LocalAddr().String())
	buf := make([]byte, 16)
	return func() {
		if _, err := cli.WriteToUDPAddrPort(buf[:1], to); err != nil {
			b.Fatal(err)
		}
		if _, _, err := srv.ReadFrom(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func unixOnce(b *testing.B) func() {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_DGRAM, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { syscall.Close(fds[0]); syscall.Close(fds[1]) })
	buf := make([]byte, 16)
	return func() {
		if err := syscall.Sendmsg(fds[0], buf[:1], nil, nil, 0); err != nil {
			b.Fatal(err)
		}
		if _, _, _, _, err := syscall.Recvmsg(fds[1], buf, nil, 0); err != nil {
			b.Fatal(err)
		}
	}
}
