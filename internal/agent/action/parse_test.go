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

func TestParseStat(t *testing.T) {
	var out []string
	for _, line := range []string{
		"4242 (sleep) S 4200 4242 4200 34816 4242 4194304 103 0 0 0 0 0 0 0 20 0 1 0 987654 8519680 215 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0",
		"77 (a (b) c) R 1 77 77 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 42 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 0 0 0 0 0 0",
		"1 (init",
		"x (y) S 1 2 3",
	} {
		st, err := parseStat([]byte(line))
		b, _ := json.Marshal(st)
		out = append(out, line+"\n=> "+string(b)+" err="+errString(err))
	}
	golden(t, "stat.golden", strings.Join(out, "\n")+"\n")
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

// FuzzParseStat: never panics; what it accepts has a positive pid.
func FuzzParseStat(f *testing.F) {
	f.Add([]byte("4242 (sleep) S 4200 4242 4200 34816 4242 4194304 103 0 0 0 0 0 0 0 20 0 1 0 987654 8519680"))
	f.Add([]byte("77 (a (b) c) R 1 77 77 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 42 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseStat(b)
		if err == nil && (st.PID <= 0 || st.PPID < 0) {
			t.Fatalf("accepted %+v", st)
		}
	})
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
