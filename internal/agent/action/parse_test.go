package action

import (
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n%s", name, got)
	}
}

func TestParseProcNet(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "proc_net.input"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(in)), "\n") {
		proto, rest, _ := strings.Cut(line, " ")
		s, err := parseProcNetLine(rest, proto)
		b, _ := json.Marshal(s)
		out = append(out, string(b)+" err="+errString(err))
	}
	golden(t, "proc_net.golden", strings.Join(out, "\n")+"\n")
}

// TestRuleset pins the nft script for each state.
func TestRuleset(t *testing.T) {
	now := time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)
	states := map[string]netState{
		"empty": {},
		"isolated": {Isolated: true, Server: []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")},
			Allow: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
		"blocks": {Blocks: []netBlock{{netip.MustParsePrefix("203.0.113.0/24"), now.Add(90 * time.Minute)},
			{netip.MustParsePrefix("2001:db8:bad::/48"), now.Add(1500 * time.Millisecond)}}},
	}
	var out []string
	for _, name := range []string{"empty", "isolated", "blocks"} {
		out = append(out, "# "+name+"\n"+ruleset(states[name], now))
	}
	golden(t, "ruleset.golden", strings.Join(out, "\n"))
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// FuzzParseProcNet: never panics; accepted lines have parseable addresses.
func FuzzParseProcNet(f *testing.F) {
	f.Add("0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 12345 1 0000000000000000 100 0 0 10 0", "tcp")
	f.Add("1: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 999 2 0000000000000000 0", "udp6")
	f.Fuzz(func(t *testing.T, line, proto string) {
		s, err := parseProcNetLine(line, proto)
		if err != nil {
			return
		}
		if _, err := netip.ParseAddrPort(s.Local); err != nil {
			t.Fatalf("local %q: %v", s.Local, err)
		}
	})
}
