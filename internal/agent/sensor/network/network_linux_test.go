//go:build linux

package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/vigil-edr/vigil/internal/event"
)

// requireRoot skips a test that needs the kernel: loading eBPF programs and
// reading every process's file table need root (CAP_BPF, CAP_PERFMON,
// CAP_SYS_PTRACE).
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load eBPF programs and read /proc/<pid>/fd; run the tests as root: NOT TESTED")
	}
}

// collector keeps every event the sensor sends (as copies: the sensor
// reuses its event).
type collector struct {
	mu  sync.Mutex
	evs []map[string]string
}

func (c *collector) out(ev *event.Event) {
	m := map[string]string{"category": strings.Join(ev.Categories, ",")}
	for _, f := range ev.Fields {
		m[f.Name] = f.Value
	}
	c.mu.Lock()
	c.evs = append(c.evs, m)
	c.mu.Unlock()
}

// want is a declarative matcher: every named field must have exactly this
// value ("category" is the event's categories joined by commas).
type want map[string]string

func (w want) String() string {
	keys := make([]string, 0, len(w))
	for k := range w {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q ", k, w[k])
	}
	return strings.TrimSpace(b.String())
}

// misses returns how many fields of w ev does not match.
func (w want) misses(ev map[string]string) int {
	n := 0
	for k, v := range w {
		if ev[k] != v {
			n++
		}
	}
	return n
}

// await waits until an event matches w and returns it; it fails showing
// the nearest events when none arrives within the deadline.
func (c *collector) await(t *testing.T, within time.Duration, w want) map[string]string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c.mu.Lock()
		for _, ev := range c.evs {
			if w.misses(ev) == 0 {
				c.mu.Unlock()
				return ev
			}
		}
		if time.Now().After(deadline) {
			evs := slices.Clone(c.evs)
			c.mu.Unlock()
			sort.SliceStable(evs, func(i, j int) bool { return w.misses(evs[i]) < w.misses(evs[j]) })
			var near []string
			for i := 0; i < len(evs) && i < 3; i++ {
				near = append(near, fmt.Sprint(evs[i]))
			}
			t.Fatalf("no event {%s} within %s among %d; nearest:\n%s", w, within, len(evs), strings.Join(near, "\n"))
		}
		c.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
}

// count returns how many events match w.
func (c *collector) count(w want) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, ev := range c.evs {
		if w.misses(ev) == 0 {
			n++
		}
	}
	return n
}

// start runs a sensor until the test ends and waits for it to stop.
func start(t *testing.T, opts Options) (*Sensor, *collector) {
	t.Helper()
	s := New(opts)
	c := &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, c.out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for s.Status().Mechanism == "" {
		if time.Now().After(deadline) {
			t.Fatal("sensor did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := s.Status()
	if !opts.DisableEBPF && st.Mechanism != MechEBPF {
		t.Skipf("eBPF mechanism unavailable on this kernel (%s): the eBPF sensor is NOT TESTED here", st)
	}
	// The first listening report has been sent once the mechanism is set
	// and the first flush passed; nothing else to wait for.
	return s, c
}

// bash returns bash's resolved path, or skips.
func bash(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not found: its /dev/tcp and /dev/udp are the tiny triggers")
	}
	p, err = filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func self(t *testing.T) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, _ = filepath.EvalSymlinks(p)
	return p
}

func port(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

// TestTCPConnectAccept: a shell connects to a listener the test runs, and
// exits at once. The outbound event names the shell (pid, image, command
// line, parent) and both ports; the inbound one names this process.
func TestTCPConnectAccept(t *testing.T) {
	requireRoot(t)
	sh := bash(t)
	// A long flush interval makes the sensor read the records after the
	// shell has exited: the attribution must come from the kernel's copy.
	_, c := start(t, Options{FlushEvery: 700 * time.Millisecond, ReportEvery: time.Hour})
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lport := port(ln.Addr())
	script := "exec 3<>/dev/tcp/127.0.0.1/" + lport
	cmd := exec.Command(sh, "-c", script)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	cport := port(conn.RemoteAddr())
	c.await(t, 5*time.Second, want{
		"category": "network_connection", "EventType": "connect", "Protocol": "tcp", "Initiated": "true",
		"ProcessId": strconv.Itoa(cmd.Process.Pid), "Image": sh, "CommandLine": sh + " -c " + script,
		"User": "root", "ParentProcessId": strconv.Itoa(os.Getpid()), "ParentImage": self(t),
		"SourceIp": "127.0.0.1", "SourcePort": cport, "DestinationIp": "127.0.0.1", "DestinationPort": lport,
		"SourceIsIpv6": "false", "DestinationIsIpv6": "false",
	})
	c.await(t, 5*time.Second, want{
		"category": "network_connection", "EventType": "accept", "Protocol": "tcp", "Initiated": "false",
		"ProcessId": strconv.Itoa(os.Getpid()), "Image": self(t),
		"SourceIp": "127.0.0.1", "SourcePort": cport, "DestinationIp": "127.0.0.1", "DestinationPort": lport,
	})
	c.await(t, 5*time.Second, want{
		"category": "network_listen", "EventType": "listen", "Protocol": "tcp",
		"ProcessId": strconv.Itoa(os.Getpid()), "SourceIp": "127.0.0.1", "SourcePort": lport,
	})
}

// TestTCPv6: both ends over ::1 are reported as IPv6.
func TestTCPv6(t *testing.T) {
	requireRoot(t)
	_, c := start(t, Options{ReportEvery: time.Hour})
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	conn, err := net.Dial("tcp6", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c.await(t, 5*time.Second, want{
		"EventType": "connect", "Initiated": "true", "Protocol": "tcp",
		"SourceIp": "::1", "SourcePort": port(conn.LocalAddr()), "DestinationIp": "::1", "DestinationPort": port(ln.Addr()),
		"SourceIsIpv6": "true", "DestinationIsIpv6": "true", "ProcessId": strconv.Itoa(os.Getpid()),
	})
}

// TestUDP: a shell's /dev/udp write (connect, then send) and this
// process's unconnected sends and receives; repeats to the same peer are
// folded and counted.
func TestUDP(t *testing.T) {
	requireRoot(t)
	sh := bash(t)
	_, c := start(t, Options{UDPWindow: 1500 * time.Millisecond, ReportEvery: time.Hour})
	srv, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	sport := port(srv.LocalAddr())
	script := "echo hello > /dev/udp/127.0.0.1/" + sport
	cmd := exec.Command(sh, "-c", script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	srv.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, err := srv.ReadFrom(make([]byte, 64)); err != nil { // the shell's datagram
		t.Fatal(err)
	}
	c.await(t, 5*time.Second, want{
		"EventType": "connect", "Protocol": "udp", "Initiated": "true",
		"ProcessId": strconv.Itoa(cmd.Process.Pid), "Image": sh, "CommandLine": sh + " -c " + script,
		"DestinationIp": "127.0.0.1", "DestinationPort": sport,
	})

	// Unconnected: five datagrams to the server, then one more after the
	// window. The server reads them all with their source address.
	cli, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	cport := port(cli.LocalAddr())
	buf := make([]byte, 64)
	exchange := func(n int) {
		for range n {
			if _, err := cli.WriteTo([]byte("x"), srv.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			srv.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, _, err := srv.ReadFrom(buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	exchange(5)
	send := want{"EventType": "send", "Protocol": "udp", "Initiated": "true", "ProcessId": strconv.Itoa(os.Getpid()),
		"SourcePort": cport, "DestinationIp": "127.0.0.1", "DestinationPort": sport}
	recv := want{"EventType": "receive", "Protocol": "udp", "Initiated": "false", "ProcessId": strconv.Itoa(os.Getpid()),
		"SourceIp": "127.0.0.1", "SourcePort": cport, "DestinationPort": sport}
	c.await(t, 5*time.Second, send)
	c.await(t, 5*time.Second, recv)
	time.Sleep(2 * time.Second) // past the window
	exchange(1)
	sendAgain := want{"Repeats": "4"}
	maps := func(a, b want) want {
		m := want{}
		for k, v := range a {
			m[k] = v
		}
		for k, v := range b {
			m[k] = v
		}
		return m
	}
	c.await(t, 5*time.Second, maps(send, sendAgain))
	c.await(t, 5*time.Second, maps(recv, sendAgain))
	if n := c.count(send); n != 2 {
		t.Errorf("%d send events for 6 datagrams in two windows, want 2 (the dedupe rule)", n)
	}
}

// TestListeningReport: a new TCP listener and a bound UDP socket appear in
// Listening and in the report events, with this process as owner.
func TestListeningReport(t *testing.T) {
	requireRoot(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	udp, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer udp.Close()
	ls, err := Listening()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]Listener{}
	for _, l := range ls {
		found[l.Protocol+" "+l.Local.String()] = l
	}
	for _, k := range []string{"tcp " + ln.Addr().String(), "udp " + udp.LocalAddr().String()} {
		l, ok := found[k]
		if !ok {
			t.Fatalf("%s not in Listening (%d sockets)", k, len(ls))
		}
		if l.PID != uint32(os.Getpid()) {
			t.Errorf("%s: pid %d, want %d", k, l.PID, os.Getpid())
		}
	}
	_, c := start(t, Options{ReportEvery: time.Hour, DisableEBPF: true, PollEvery: time.Hour})
	c.await(t, 5*time.Second, want{
		"category": "network_listen", "EventType": "listening_socket", "Protocol": "tcp",
		"SourceIp": "127.0.0.1", "SourcePort": port(ln.Addr()), "ProcessId": strconv.Itoa(os.Getpid()), "Image": self(t), "User": "root",
	})
	c.await(t, 5*time.Second, want{
		"EventType": "listening_socket", "Protocol": "udp", "SourceIp": "::1", "SourceIsIpv6": "true", "SourcePort": port(udp.LocalAddr()),
	})
}

// TestPollFallback: with eBPF disabled, a connection that stays open past
// one poll is reported both ways, with the process.
func TestPollFallback(t *testing.T) {
	requireRoot(t)
	s, c := start(t, Options{DisableEBPF: true, PollEvery: 200 * time.Millisecond, ReportEvery: time.Hour})
	if st := s.Status(); st.Mechanism != MechPoll || !strings.Contains(st.Detail, "misses connections") {
		t.Fatalf("status %s: want the polling mechanism with its limit stated", st)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	time.Sleep(300 * time.Millisecond) // the listener is known before the connection
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	pid := strconv.Itoa(os.Getpid())
	c.await(t, 5*time.Second, want{"EventType": "connect", "Initiated": "true", "ProcessId": pid, "Image": self(t),
		"SourcePort": port(conn.LocalAddr()), "DestinationPort": port(ln.Addr()), "Protocol": "tcp"})
	c.await(t, 5*time.Second, want{"EventType": "accept", "Initiated": "false", "ProcessId": pid,
		"SourcePort": port(conn.LocalAddr()), "DestinationPort": port(ln.Addr())})
}

// TestRecordLayout: the offsets decodeRecord reads are those of the struct
// bpf2go generated from the C source.
func TestRecordLayout(t *testing.T) {
	var e networkEvent
	got := map[string]uintptr{
		"size": unsafe.Sizeof(e), "StartTime": unsafe.Offsetof(e.StartTime), "Pid": unsafe.Offsetof(e.Pid),
		"Ret": unsafe.Offsetof(e.Ret), "Kind": unsafe.Offsetof(e.Kind), "ArgsLen": unsafe.Offsetof(e.ArgsLen),
		"Laddr": unsafe.Offsetof(e.Laddr), "Raddr": unsafe.Offsetof(e.Raddr), "Comm": unsafe.Offsetof(e.Comm),
		"Exe": unsafe.Offsetof(e.Exe), "Args": unsafe.Offsetof(e.Args),
	}
	want := map[string]uintptr{"size": recordSize, "StartTime": 8, "Pid": 16, "Ret": 40, "Kind": 44, "ArgsLen": 54,
		"Laddr": 56, "Raddr": 72, "Comm": 88, "Exe": 104, "Args": 360}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s at %d, decodeRecord assumes %d", k, got[k], w)
		}
	}
}

// TestDNSHostname: this process asks a DNS server the test runs on port 53
// (a loopback address) for two names, reading one answer with recvfrom and
// one with recvmsg, then connects to the addresses: the connect events
// carry the names as DestinationHostname.
func TestDNSHostname(t *testing.T) {
	requireRoot(t)
	var dns net.PacketConn
	for _, a := range []string{"127.0.0.53:53", "127.0.0.1:53", "127.83.0.1:53"} {
		var err error
		if dns, err = net.ListenPacket("udp4", a); err == nil {
			break
		}
	}
	if dns == nil {
		t.Skip("no loopback address with UDP port 53 free: DestinationHostname NOT TESTED")
	}
	defer dns.Close()
	_, c := start(t, Options{ReportEvery: time.Hour})
	cli, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	names := map[string]string{"c2.recvfrom.vigil-test.example": "127.0.0.9", "c2.recvmsg.vigil-test.example": "127.0.0.10"}
	buf := make([]byte, 512)
	for name, ip := range names {
		if _, err := dns.WriteTo(dnsAnswer(1, name, 30, netip.MustParseAddr(ip)), cli.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		cli.SetReadDeadline(time.Now().Add(2 * time.Second))
		if strings.Contains(name, "recvmsg") {
			_, _, _, _, err = cli.ReadMsgUDP(buf, nil)
		} else {
			_, _, err = cli.ReadFrom(buf)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// No wait: the answers' records precede the connects' in the ring.
	for name, ip := range names {
		ln, err := net.Listen("tcp4", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		conn, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
		c.await(t, 5*time.Second, want{"EventType": "connect", "DestinationIp": ip, "DestinationPort": port(ln.Addr()),
			"DestinationHostname": name, "ProcessId": strconv.Itoa(os.Getpid())})
	}
}
