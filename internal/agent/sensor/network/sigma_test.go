package network

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/detect/sigma"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/testkit"
)

// TestSigmaHQRules: events built from kernel records by fill are matched by
// SigmaHQ's Linux network_connection rules, unmodified, exactly when they
// should be. (The test imports the detection engine; the sensor itself
// does not, see deps_test.go.)
func TestSigmaHQRules(t *testing.T) {
	dir := testkit.Corpus(t, "sigma", "rules", "linux", "network_connection")
	files, err := filepath.Glob(filepath.Join(dir, "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rules in %s: %v", dir, err)
	}
	byFile := map[string]*sigma.Matcher{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		e, err := sigma.Compile(f, data, sigma.Options{})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		byFile[filepath.Base(f)] = e.NewMatcher()
	}
	out := sigmaConn{kind: kindConnect, image: "/usr/bin/bash", local: "10.0.0.5:40000"}
	cases := []struct {
		name  string
		rule  string
		c     sigmaConn
		match bool
	}{
		{"bash reverse shell", "net_connection_lnx_back_connect_shell_dev.yml", with(out, "203.0.113.9:443", ""), true},
		{"bash to loopback", "net_connection_lnx_back_connect_shell_dev.yml", with(out, "127.0.0.1:443", ""), false},
		{"callback port", "net_connection_lnx_susp_malware_callback_port.yml", with(out, "203.0.113.9:4444", ""), true},
		{"callback port, private peer", "net_connection_lnx_susp_malware_callback_port.yml", with(out, "192.168.1.9:4444", ""), false},
		{"callback port, inbound", "net_connection_lnx_susp_malware_callback_port.yml", sigmaConn{kind: kindAccept, image: "/usr/sbin/sshd", local: "10.0.0.5:4444", peer: "203.0.113.9:50000"}, false},
		{"callback port over IPv6", "net_connection_lnx_susp_malware_callback_port.yml", sigmaConn{kind: kindConnect, image: "/tmp/x", local: "[2001:db8::5]:40000", peer: "[2001:db8::9]:4444"}, true},
		{"ngrok", "net_connection_lnx_ngrok_tunnel.yml", with(out, "203.0.113.7:443", "tunnel.us.ngrok.com"), true},
		{"localtonet", "net_connection_lnx_domain_localtonet_tunnel.yml", with(out, "203.0.113.7:443", "eu.localto.net"), true},
		{"monero pool", "net_connection_lnx_crypto_mining_indicators.yml", with(out, "203.0.113.7:3333", "pool.supportxmr.com"), true},
		{"no hostname known", "net_connection_lnx_ngrok_tunnel.yml", with(out, "203.0.113.7:443", ""), false},
	}
	var ev event.Event
	for _, tc := range cases {
		m, ok := byFile[tc.rule]
		if !ok {
			t.Errorf("%s: rule %s not in the corpus", tc.name, tc.rule)
			continue
		}
		r := record{Kind: tc.c.kind, Protocol: protoTCP, PID: 4242, PPID: 1, UID: 1000,
			Local: netip.MustParseAddrPort(tc.c.local), Remote: netip.MustParseAddrPort(tc.c.peer)}
		fill(&ev, time.Unix(1764281400, 0), &r, &proc{image: tc.c.image, cmdline: tc.c.image, user: "alice", uid: "1000"}, tc.c.host)
		if got := len(m.Match(&ev)) > 0; got != tc.match {
			t.Errorf("%s: %s matched=%v, want %v; event %v", tc.name, tc.rule, got, tc.match, ev.Fields)
		}
	}
}

// sigmaConn is one connection of TestSigmaHQRules.
type sigmaConn struct {
	kind        uint16
	image, host string
	local, peer string
}

func with(c sigmaConn, peer, host string) sigmaConn { c.peer, c.host = peer, host; return c }
