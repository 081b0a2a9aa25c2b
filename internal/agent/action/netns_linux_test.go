package action

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/testkit"
)

func run(t *testing.T, args ...string) string {
	t.Helper()
	return testkit.Run(t, args...)
}

func newNetLab(t *testing.T) *testkit.NetLab { return testkit.NewNetLab(t, "vg") }

// TestIsolateInNetns: after isolate, the host reaches only the server (and
// only the server reaches it); after release everything is as before,
// including the host's own unrelated nftables rules; isolation is applied
// again by a restarted agent after the rules vanished (a reboot).
func TestIsolateInNetns(t *testing.T) {
	l := newNetLab(t)
	l.Listen(l.Server, testkit.LabServerIP+":8443")
	l.Listen(l.Inet, testkit.LabInternetIP+":80")
	l.Listen(l.Host, "0.0.0.0:22")
	// The host's own firewall, which must survive untouched.
	run(t, "ip", "netns", "exec", l.Host, "nft", "add table ip hostfw")
	run(t, "ip", "netns", "exec", l.Host, "nft", "add chain ip hostfw in { type filter hook input priority 0; policy accept; }")
	run(t, "ip", "netns", "exec", l.Host, "nft", "add rule ip hostfw in tcp dport 9 counter accept")
	before := l.Ruleset()

	dataDir := t.TempDir()
	opts := func(o *Options) {
		o.DataDir = dataDir
		o.NFT = []string{"ip", "netns", "exec", l.Host, "nft"}
		o.ServerAddrs = func(context.Context) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr(testkit.LabServerIP)}, nil
		}
	}
	e := newExecutor(t, opts)
	ctx := context.Background()
	check := func(stage string, server, internet, fromServer, fromInternet bool) {
		t.Helper()
		if got := l.Reach(l.Host, testkit.LabServerIP+":8443"); got != server {
			t.Errorf("%s: host → server reachable %v, want %v", stage, got, server)
		}
		if got := l.Reach(l.Host, testkit.LabInternetIP+":80"); got != internet {
			t.Errorf("%s: host → internet reachable %v, want %v", stage, got, internet)
		}
		if got := l.Reach(l.Server, "10.77.1.1:22"); got != fromServer {
			t.Errorf("%s: server → host reachable %v, want %v", stage, got, fromServer)
		}
		if got := l.Reach(l.Inet, "10.77.2.1:22"); got != fromInternet {
			t.Errorf("%s: internet → host reachable %v, want %v", stage, got, fromInternet)
		}
	}
	check("before", true, true, true, true)

	if _, err := e.Isolate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	check("isolated", true, false, true, false)
	if !strings.Contains(l.Ruleset(), "table ip hostfw") {
		t.Error("isolation removed the host's own table")
	}

	// A reboot clears the kernel rules; the restarted agent applies them again.
	run(t, "ip", "netns", "exec", l.Host, "nft", "delete table inet vigil")
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
	if after := l.Ruleset(); after != before {
		t.Errorf("ruleset after release differs:\n%s\nbefore:\n%s", after, before)
	}

	// An allow-list entry stays reachable while isolated.
	if _, err := e2.Isolate(ctx, []netip.Prefix{netip.MustParsePrefix(testkit.LabInternetIP + "/32")}); err != nil {
		t.Fatal(err)
	}
	check("isolated with allow-list", true, true, true, true)
	e2.Release(ctx)
	if after := l.Ruleset(); after != before {
		t.Errorf("ruleset after the second release differs:\n%s", after)
	}
}

// TestBlockExpiresInNetns: a block drops traffic both ways until it
// expires, by itself, in the kernel; blocking the server is refused.
func TestBlockExpiresInNetns(t *testing.T) {
	l := newNetLab(t)
	l.Listen(l.Server, testkit.LabServerIP+":8443")
	l.Listen(l.Inet, testkit.LabInternetIP+":80")
	l.Listen(l.Host, "0.0.0.0:22")
	before := l.Ruleset()
	e := newExecutor(t, func(o *Options) {
		o.NFT = []string{"ip", "netns", "exec", l.Host, "nft"}
		o.ServerAddrs = func(context.Context) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr(testkit.LabServerIP)}, nil
		}
	})
	ctx := context.Background()
	if _, err := e.Block(ctx, netip.MustParsePrefix("10.77.1.0/24"), time.Hour); err == nil {
		t.Fatal("blocking the server's network was accepted")
	}
	if _, err := e.Block(ctx, netip.MustParsePrefix("10.77.2.0/24"), 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if l.Reach(l.Host, testkit.LabInternetIP+":80") || l.Reach(l.Inet, "10.77.2.1:22") {
		t.Error("blocked network reachable")
	}
	if !l.Reach(l.Host, testkit.LabServerIP+":8443") {
		t.Error("server unreachable during a block")
	}
	waitFor(t, 10*time.Second, "the block to expire", func() bool { return l.Reach(l.Host, testkit.LabInternetIP+":80") })
	if !l.Reach(l.Inet, "10.77.2.1:22") {
		t.Error("inbound still blocked after expiry")
	}
	// Unblock before expiry removes the table again.
	if _, err := e.Block(ctx, netip.MustParsePrefix(testkit.LabInternetIP+"/32"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if l.Reach(l.Host, testkit.LabInternetIP+":80") {
		t.Error("blocked address reachable")
	}
	if _, err := e.Unblock(ctx, netip.MustParsePrefix(testkit.LabInternetIP+"/32")); err != nil {
		t.Fatal(err)
	}
	if !l.Reach(l.Host, testkit.LabInternetIP+":80") {
		t.Error("unblocked address unreachable")
	}
	if after := l.Ruleset(); after != before {
		t.Errorf("ruleset after unblock differs:\n%s", after)
	}
}
