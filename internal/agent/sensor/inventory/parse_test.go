package inventory

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden.json files")

// parsed is what a golden file holds: the items and the skipped count.
type parsed struct {
	Items   any `json:"items"`
	Skipped int `json:"skipped"`
}

// TestParsers runs every parser over its testdata input and compares the
// result with the golden file beside it (go test -update rewrites them).
func TestParsers(t *testing.T) {
	wrap := func(items any, skipped int, err error) (parsed, error) {
		return parsed{items, skipped}, err
	}
	cases := []struct {
		input string
		parse func(r io.Reader) (parsed, error)
	}{
		{"dpkg_status", func(r io.Reader) (parsed, error) { return wrap(ParseDpkgStatus(r)) }},
		{"rpm_qa", func(r io.Reader) (parsed, error) { return wrap(ParseRPM(r)) }},
		{"os_release", func(r io.Reader) (parsed, error) { o, err := ParseOSRelease(r); return parsed{o, 0}, err }},
		{"os_release_escapes", func(r io.Reader) (parsed, error) { o, err := ParseOSRelease(r); return parsed{o, 0}, err }},
		{"passwd", func(r io.Reader) (parsed, error) { return wrap(ParsePasswd(r)) }},
		{"group", func(r io.Reader) (parsed, error) { return wrap(ParseGroup(r)) }},
		{"proc_modules", func(r io.Reader) (parsed, error) { return wrap(ParseModules(r)) }},
		{"proc_net_tcp", func(r io.Reader) (parsed, error) { return wrap(ParseProcNet(r, "tcp")) }},
		{"proc_net_tcp6", func(r io.Reader) (parsed, error) { return wrap(ParseProcNet(r, "tcp")) }},
		{"proc_net_udp", func(r io.Reader) (parsed, error) { return wrap(ParseProcNet(r, "udp")) }},
		{"uevent_module_add", func(r io.Reader) (parsed, error) {
			b, _ := io.ReadAll(r)
			u, err := ParseUevent(b)
			return parsed{u, 0}, err
		}},
		{"uevent_net", func(r io.Reader) (parsed, error) {
			b, _ := io.ReadAll(r)
			u, err := ParseUevent(b)
			return parsed{u, 0}, err
		}},
		{"unit.service", func(r io.Reader) (parsed, error) { e, err := ParseUnitExecStart(r); return parsed{e, 0}, err }},
	}
	for _, c := range cases {
		t.Run(c.input, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", c.input+".input"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := c.parse(f)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, '\n')
			golden := filepath.Join("testdata", c.input+".golden.json")
			if *update {
				if err := os.WriteFile(golden, b, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(b, want) {
				t.Errorf("%s differs from %s:\n%s", c.input, golden, b)
			}
		})
	}
}

// TestPasswordsNeverKept: the password field of passwd and group never
// reaches the parsed items.
func TestPasswordsNeverKept(t *testing.T) {
	us, _, _ := ParsePasswd(strings.NewReader("bob:$6$secrethash:1000:1000::/home/bob:/bin/sh\n"))
	gs, _, _ := ParseGroup(strings.NewReader("sudo:$6$grouphash:27:bob\n"))
	b, _ := json.Marshal([]any{us, gs})
	if len(us) != 1 || len(gs) != 1 || bytes.Contains(b, []byte("hash")) {
		t.Fatalf("parsed %s", b)
	}
}

// TestLimits: an overlong line is skipped, not fatal, and values are cut to
// MaxValue and made valid UTF-8.
func TestLimits(t *testing.T) {
	long := strings.Repeat("x", MaxLine+10)
	in := "a:x:1:1::/:/bin/sh\n" + long + "\n" + "b:x:2:2:" + strings.Repeat("é", MaxValue) + "\xff:/:/bin/sh\n"
	us, skipped, err := ParsePasswd(strings.NewReader(in))
	if err != nil || len(us) != 2 || skipped != 1 {
		t.Fatalf("users %d skipped %d err %v", len(us), skipped, err)
	}
	if g := us[1].Gecos; len(g) > MaxValue+3 || !strings.HasPrefix(g, "éé") || strings.ContainsRune(g, 0xff) {
		t.Errorf("gecos not cut or cleaned: %d bytes", len(g))
	}
	many := strings.Repeat("m 1 0 - Live 0x0\n", MaxItems+1)
	if _, _, err := ParseModules(strings.NewReader(many)); err != ErrTooMany {
		t.Errorf("too many modules: err %v", err)
	}
}

func TestCompareVersions(t *testing.T) {
	cases := []struct {
		mgr, a, b string
		want      int
	}{
		{"dpkg", "1.0", "1.0", 0},
		{"dpkg", "1.0-1", "1.0-2", -1},
		{"dpkg", "1:0.9", "2.0", 1},
		{"dpkg", "1.0~rc1", "1.0", -1},
		{"dpkg", "1.0~~", "1.0~", -1},
		{"dpkg", "1.0a", "1.0", 1},
		{"dpkg", "1.0+b1", "1.0", 1},
		{"dpkg", "1.10", "1.9", 1},
		{"dpkg", "3.0.11-1~deb12u2", "3.0.11-1", -1},
		{"dpkg", "2.36-9+deb12u4", "2.36-9+deb12u10", -1},
		{"dpkg", "1.001", "1.1", 0},
		{"rpm", "5.14.0-362.8.1.el9_3", "5.14.0-284.11.1.el9_2", 1},
		{"rpm", "1:3.0.7-24.el9", "3.0.8-1.el9", 1},
		{"rpm", "1.0~rc1-1", "1.0-1", -1},
		{"rpm", "1.0^git1-1", "1.0-1", 1},
		{"rpm", "1.0^git1-1", "1.0.1-1", -1},
		{"rpm", "1.0a-1", "1.0.1-1", -1},
		{"rpm", "2.0-1", "2.0-1", 0},
		{"rpm", "1.010-1", "1.9-1", 1},
	}
	for _, c := range cases {
		got := compareVersions(c.mgr, c.a, c.b)
		if sign(got) != c.want {
			t.Errorf("%s %s vs %s: %d, want %d", c.mgr, c.a, c.b, got, c.want)
		}
		if back := compareVersions(c.mgr, c.b, c.a); sign(back) != -c.want {
			t.Errorf("%s %s vs %s: %d, not antisymmetric", c.mgr, c.b, c.a, back)
		}
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
