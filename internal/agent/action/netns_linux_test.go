package action

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netLab is three network namespaces: "host" (where the agent's rules go)
// joined by veth pairs to "server" (10.77.1.2) and "internet" (10.77.2.2).
type netLab struct {
	t                    *testing.T
	host, server, inet   string
	serverIP, internetIP string
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newNetLab(t *testing.T) *netLab {
	if testing.Short() {
		t.Skip("network namespace test: not with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	for _, bin := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (apt-get install iproute2 nftables)", bin)
		}
	}
	id := os.Getpid() % 100000
	l := &netLab{t: t, host: fmt.Sprintf("vgh%d", id), server: fmt.Sprintf("vgs%d", id), inet: fmt.Sprintf("vgi%d", id),
		serverIP: "10.77.1.2", internetIP: "10.77.2.2"}
	for _, ns := range []string{l.host, l.server, l.inet} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	pair := func(peer, hostIf, peerIf, hostIP, peerIP string) {
		run(t, "ip", "link", "add", hostIf, "netns", l.host, "type", "veth", "peer", "name", peerIf, "netns", peer)
		run(t, "ip", "-n", l.host, "addr", "add", hostIP+"/24", "dev", hostIf)
		run(t, "ip", "-n", peer, "addr", "add", peerIP+"/24", "dev", peerIf)
		run(t, "ip", "-n", l.host, "link", "set", hostIf, "up")
		run(t, "ip", "-n", peer, "link", "set", peerIf, "up")
	}
	pair(l.server, "to-srv", "to-host", "10.77.1.1", l.serverIP)
	pair(l.inet, "to-net", "to-host", "10.77.2.1", l.internetIP)
	return l
}

// in runs fn on an OS thread moved into namespace ns; the thread is thrown
// away afterwards (the goroutine exits locked), so no other code runs there.
func (l *netLab) in(ns string, fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			l.t.Error(err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			l.t.Error(err)
			return
		}
		fn()
	}()
	<-done
}

// listen starts a TCP server accepting (and closing) connections in ns.
func (l *netLab) listen(ns, addr string) {
	var ln net.Listener
	l.in(ns, func() {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			l.t.Error(err)
		}
	})
	if ln == nil {
		l.t.FailNow()
	}
	l.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// reach reports whether a TCP connection from ns to addr succeeds.
func (l *netLab) reach(ns, addr string) bool {
	ok := false
	l.in(ns, func() {
		c, err := net.DialTimeout("tcp", addr, 400*time.Millisecond)
		if err == nil {
			c.Close()
			ok = true
		}
	})
	return ok
}

func (l *netLab) ruleset() string {
	return run(l.t, "ip", "netns", "exec", l.host, "nft", "list", "ruleset")
}

// TestIsolateInNetns: after isolate, the host reaches only the server (and
// only the server reaches it); after release everything is as before,
// including the host's own unrelated nftables rules; isolation is applied
// again by a restarted agent after the rules vanished (a reboot).
func TestIsolateInNetns(t *testing.T) {
	l := newNetLab(t)
	l.listen(l.server, l.serverIP+":8443")
	l.listen(l.inet, l.internetIP+":80")
	l.listen(l.host, "0.0.0.0:22")
	// The host's own firewall, which must survive untouched.
	run(t, "ip", "netns", "exec", l.host, "nft", "add table ip hostfw")
	run(t, "ip", "netns", "exec", l.host, "nft", "add chain ip hostfw in { type filter hook input priority 0; policy accept; }")
	run(t, "ip", "netns", "exec", l.host, "nft", "add rule ip hostfw in tcp dport 9 counter accept")
	before := l.ruleset()

	dataDir := t.TempDir()
	opts := func(o *Options) {
		o.DataDir = dataDir
		o.NFT = []string{"ip", "netns", "exec", l.host, "nft"}
		o.ServerAddrs = func(context.Context) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr(l.serverIP)}, nil
		}
	}
	e := newExecutor(t, opts)
	ctx := context.Background()
	check := func(stage string, server, internet, fromServer, fromInternet bool) {
		t.Helper()
		if got := l.reach(l.host, l.serverIP+":8443"); got != server {
			t.Errorf("%s: host → server reachable %v, want %v", stage, got, server)
		}
		if got := l.reach(l.host, l.internetIP+":80"); got != internet {
			t.Errorf("%s: host → internet reachable %v, want %v", stage, got, internet)
		}
		if got := l.reach(l.server, "10.77.1.1:22"); got != fromServer {
			t.Errorf("%s: server → host reachable %v, want %v", stage, got, fromServer)
		}
		if got := l.reach(l.inet, "10.77.2.1:22"); got != fromInternet {
			t.Errorf("%s: internet → host reachable %v, want %v", stage, got, fromInternet)
		}
	}
	check("before", true, true, true, true)

	if _, err := e.Isolate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	check("isolated", true, false, true, false)
	if !strings.Contains(l.ruleset(), "table ip hostfw") {
		t.Error("isolation removed the host's own table")
	}

	// A reboot clears the kernel rules; the restarted agent applies them again.
	run(t, "ip", "netns", "exec", l.host, "nft", "delete table inet vigil")
	check("rules lost", true, true, true, true)
	e2 := newExecutor(t, opts)
	if err := e2.ApplySaved(ctx); err != nil {
		t.Fatal(err)
	}
	check("re-applied after restart", true, false, true, false)

	if _, err := e2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	check("released", true, true, true, true)
	if after := l.ruleset(); after != before {
		t.Errorf("ruleset after release differs:\n%s\nbefore:\n%s", after, before)
	}

	// An allow-list entry stays reachable while isolated.
	if _, err := e2.Isolate(ctx, []netip.Prefix{netip.MustParsePrefix(l.internetIP + "/32")}); err != nil {
		t.Fatal(err)
	}
	check("isolated with allow-list", true, true, true, true)
	e2.Release(ctx)
	if after := l.ruleset(); after != before {
		t.Errorf("ruleset after the second release differs:\n%s", after)
	}
}

// TestBlockExpiresInNetns: a block drops traffic both ways until it
// expires, by itself, in the kernel; blocking the server is refused.
func TestBlockExpiresInNetns(t *testing.T) {
	l := newNetLab(t)
	l.listen(l.server, l.serverIP+":8443")
	l.listen(l.inet, l.internetIP+":80")
	l.listen(l.host, "0.0.0.0:22")
	before := l.ruleset()
	e := newExecutor(t, func(o *Options) {
		o.NFT = []string{"ip", "netns", "exec", l.host, "nft"}
		o.ServerAddrs = func(context.Context) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr(l.serverIP)}, nil
		}
	})
	ctx := context.Background()
	if _, err := e.Block(ctx, netip.MustParsePrefix("10.77.1.0/24"), time.Hour); err == nil {
		t.Fatal("blocking the server's network was accepted")
	}
	if _, err := e.Block(ctx, netip.MustParsePrefix("10.77.2.0/24"), 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if l.reach(l.host, l.internetIP+":80") || l.reach(l.inet, "10.77.2.1:22") {
		t.Error("blocked network reachable")
	}
	if !l.reach(l.host, l.serverIP+":8443") {
		t.Error("server unreachable during a block")
	}
	waitFor(t, 10*time.Second, "the block to expire", func() bool { return l.reach(l.host, l.internetIP+":80") })
	if !l.reach(l.inet, "10.77.2.1:22") {
		t.Error("inbound still blocked after expiry")
	}
	// Unblock before expiry removes the table again.
	if _, err := e.Block(ctx, netip.MustParsePrefix(l.internetIP+"/32"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if l.reach(l.host, l.internetIP+":80") {
		t.Error("blocked address reachable")
	}
	if _, err := e.Unblock(ctx, netip.MustParsePrefix(l.internetIP+"/32")); err != nil {
		t.Fatal(err)
	}
	if !l.reach(l.host, l.internetIP+":80") {
		t.Error("unblocked address unreachable")
	}
	if after := l.ruleset(); after != before {
		t.Errorf("ruleset after unblock differs:\n%s", after)
	}
}
