package notify_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/notify"
)

// TestPolicyRanges checks one address inside, at each edge of, and just
// outside every blocked range, in IPv4 and IPv4-mapped IPv6 form. No
// packet is sent: Check is the function the dialer's hook calls.
func TestPolicyRanges(t *testing.T) {
	p, err := notify.NewPolicy(nil)
	must(t, err)
	blocked := []string{
		"127.0.0.1", "127.255.255.254", "127.1.2.3", // loopback
		"::1", "::", // IPv6 loopback, unspecified
		"10.0.0.0", "10.255.255.255", // private
		"172.16.0.1", "172.31.255.255",
		"192.168.0.1", "192.168.255.255",
		"169.254.0.1", "169.254.169.254", "169.254.255.255", // link-local, metadata
		"100.64.0.1", "100.100.100.200", "100.127.255.255", // CGNAT, Alibaba metadata
		"fc00::1", "fd00:ec2::254", "fdff:ffff::1", // unique local, AWS IPv6 metadata
		"fe80::1", "febf::1", // link-local
		"0.0.0.0", "0.1.2.3", // this network
		"224.0.0.1", "255.255.255.255", "ff02::1", // multicast, broadcast
		"64:ff9b::7f00:1", "2002:7f00:1::", // NAT64 and 6to4 forms of 127.0.0.1
		"::127.0.0.1", // IPv4-compatible
	}
	// IPv4-mapped IPv6 forms of every IPv4 entry.
	for _, s := range append([]string(nil), blocked...) {
		if a := netip.MustParseAddr(s); a.Is4() {
			blocked = append(blocked, "::ffff:"+s)
		}
	}
	allowed := []string{"1.1.1.1", "8.8.8.8", "9.255.255.255", "11.0.0.0", "172.15.255.255", "172.32.0.0",
		"192.167.255.255", "192.169.0.0", "169.253.255.255", "169.255.0.0", "100.63.255.255", "100.128.0.0",
		"126.255.255.255", "128.0.0.0", "1.0.0.0", "2606:4700::1111", "fbff::1"}
	for _, s := range blocked {
		if err := p.Check(netip.MustParseAddr(s)); !errors.Is(err, notify.ErrBlocked) {
			t.Errorf("%s: %v, want blocked", s, err)
		}
	}
	for _, s := range allowed {
		if err := p.Check(netip.MustParseAddr(s)); err != nil {
			t.Errorf("%s: %v, want allowed", s, err)
		}
		if a := netip.MustParseAddr(s); a.Is4() {
			if err := p.Check(netip.MustParseAddr("::ffff:" + s)); err != nil {
				t.Errorf("::ffff:%s: %v, want allowed", s, err)
			}
		}
	}
	// The allow-list opens exactly what it names.
	p2, err := notify.NewPolicy([]string{"10.20.0.0/16", "fd12::/48", "::ffff:192.168.7.7", "chat.corp.example"})
	must(t, err)
	for s, want := range map[string]bool{"10.20.3.4": true, "10.21.0.1": false, "fd12::5": true, "fd13::5": false,
		"192.168.7.7": true, "::ffff:192.168.7.7": true, "192.168.7.8": false, "127.0.0.1": false} {
		if got := p2.Check(netip.MustParseAddr(s)) == nil; got != want {
			t.Errorf("allow-list: %s allowed=%v, want %v", s, got, want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "not a host!", "http://x", "a..b"} {
		if _, err := notify.NewPolicy([]string{bad}); err == nil {
			t.Errorf("allow-list entry %q accepted", bad)
		}
	}
}

// listener returns a TCP server on addr that counts connections.
func listener(t *testing.T, network, addr string) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), &n
}

// TestDialBlocksLoopback dials real listeners on this host under every
// loopback spelling, including a DNS name (localhost) that resolves to one:
// the policy refuses each before connect(2), so the listener never sees a
// connection; the allow-list lets one through only when configured.
func TestDialBlocksLoopback(t *testing.T) {
	addr4, n4 := listener(t, "tcp4", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(addr4)
	addr2, n2 := listener(t, "tcp4", "127.0.0.2:0")
	_, port2, _ := net.SplitHostPort(addr2)
	p, err := notify.NewPolicy(nil)
	must(t, err)
	targets := []string{addr4, "localhost:" + port, "[::ffff:127.0.0.1]:" + port, "0.0.0.0:" + port, "127.0.0.2:" + port2}
	if addr6, n6 := listener(t, "tcp6", "[::1]:0"); n6 != nil {
		targets = append(targets, addr6)
		defer func() {
			if n6.Load() != 0 {
				t.Errorf("::1 listener saw %d connections", n6.Load())
			}
		}()
	}
	ctx := context.Background()
	for _, target := range targets {
		c, err := p.DialContext(ctx, "tcp", target)
		if err == nil {
			c.Close()
			t.Errorf("dial %s: connected", target)
			continue
		}
		if !errors.Is(err, notify.ErrBlocked) {
			t.Errorf("dial %s: %v, want ErrBlocked", target, err)
		}
	}
	time.Sleep(20 * time.Millisecond) // let any accept that did happen be counted
	if n4.Load() != 0 || n2.Load() != 0 {
		t.Fatalf("blocked dials reached the listeners: %d, %d", n4.Load(), n2.Load())
	}
	// Allow-listed by range: 127.0.0.1 connects, 127.0.0.2 still does not.
	pa, err := notify.NewPolicy(loopback)
	must(t, err)
	c, err := pa.DialContext(ctx, "tcp", addr4)
	must(t, err)
	c.Close()
	if _, err := pa.DialContext(ctx, "tcp", addr2); !errors.Is(err, notify.ErrBlocked) {
		t.Errorf("127.0.0.2 with only 127.0.0.1/32 allowed: %v", err)
	}
	// Allow-listed by name: the name is trusted whatever it resolves to.
	ph, err := notify.NewPolicy([]string{"localhost"})
	must(t, err)
	c, err = ph.DialContext(ctx, "tcp4", "localhost:"+port)
	must(t, err)
	c.Close()
	waitFor(t, time.Second, "the allowed connections", func() bool { return n4.Load() == 2 })
	if _, err := p.DialContext(ctx, "udp", addr4); !errors.Is(err, notify.ErrBlocked) {
		t.Errorf("udp: %v", err)
	}
}

// TestNoRedirectToBlocked: an allowed receiver answering with a redirect to
// a blocked address gets the delivery failed, and the blocked address is
// never contacted. Channels pointing at blocked addresses are refused when
// saved, and names resolving to loopback are refused when sent.
func TestNoRedirectToBlocked(t *testing.T) {
	_, hits := listener(t, "tcp4", "127.0.0.2:0")
	inner := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	ln, err := net.Listen("tcp4", "127.0.0.2:0")
	if err != nil {
		t.Skip(err)
	}
	inner.Listener = ln
	inner.Start()
	defer inner.Close()
	var innerHits atomic.Int32
	inner.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { innerHits.Add(1) })
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, inner.URL+"/metadata", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()

	e := newEnv(t)
	ch := e.channel(notify.Channel{Kind: notify.KindWebhook, URL: redirector.URL + "/hook", Secret: secret})
	err = e.n.SendTest(context.Background(), ch)
	var se *notify.SendError
	if !errors.As(err, &se) || !se.Permanent || !strings.Contains(se.Msg, "redirect") {
		t.Fatalf("redirect: %v", err)
	}
	if innerHits.Load() != 0 || hits.Load() != 0 {
		t.Fatal("the redirect target was contacted")
	}
	// Saving a channel at a blocked literal address is refused.
	for _, u := range []string{inner.URL + "/x", "https://169.254.169.254/latest/meta-data", "https://[::1]/x",
		"https://[::ffff:10.0.0.1]/x", "https://100.64.0.1/x", "https://[fd00::1]/x"} {
		c := notify.Channel{Kind: notify.KindWebhook, URL: u, Secret: secret, Name: "x"}
		if err := e.n.CreateChannel(context.Background(), &c); err == nil {
			t.Errorf("channel to %s accepted", u)
		}
	}
	// A name is checked when dialled: localhost resolves to loopback. A
	// notifier without the tests' allow-list refuses it, over HTTP and SMTP.
	strict, err := notify.New(notify.Options{Store: e.db})
	must(t, err)
	_, port, _ := net.SplitHostPort(redirector.Listener.Addr().String())
	lc := notify.Channel{Kind: notify.KindSlack, URL: "https://localhost:" + port + "/hook", Name: "rebind"}
	must(t, strict.CreateChannel(context.Background(), &lc))
	err = strict.SendTest(context.Background(), lc.ID)
	if !errors.Is(err, notify.ErrBlocked) {
		t.Errorf("send to localhost: %v, want blocked", err)
	}
	// SMTP dials through the same policy.
	mc := notify.Channel{Kind: notify.KindEmail, SMTPAddr: "localhost:" + port, Name: "m", From: "a@example.org", To: []string{"b@example.org"}}
	must(t, strict.CreateChannel(context.Background(), &mc))
	if err := strict.SendTest(context.Background(), mc.ID); !errors.Is(err, notify.ErrBlocked) {
		t.Errorf("smtp to localhost: %v, want blocked", err)
	}
	if st := strict.Stats(); st.Blocked != 2 {
		t.Errorf("blocked count %d, want 2", st.Blocked)
	}
}
