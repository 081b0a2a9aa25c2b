package inventory

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// checkParsed fails when a parser's result is not valid UTF-8 or holds a
// value longer than MaxValue.
func checkParsed(t *testing.T, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var back any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case string:
			if !utf8.ValidString(x) || len(x) > MaxValue+3 {
				t.Fatalf("bad value %q", x)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(back)
}

func seed(f *testing.F, names ...string) {
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", n+".input"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzDpkgStatus(f *testing.F) {
	seed(f, "dpkg_status")
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, _, err := ParseDpkgStatus(bytes.NewReader(b))
		if err == nil {
			checkParsed(t, ps)
		}
	})
}

func FuzzRPM(f *testing.F) {
	seed(f, "rpm_qa")
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, _, err := ParseRPM(bytes.NewReader(b))
		if err == nil {
			checkParsed(t, ps)
		}
	})
}

func FuzzOSRelease(f *testing.F) {
	seed(f, "os_release", "os_release_escapes")
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := ParseOSRelease(bytes.NewReader(b))
		if err == nil {
			checkParsed(t, o)
		}
	})
}

// FuzzAccounts feeds the same bytes to the passwd and the group parser.
func FuzzAccounts(f *testing.F) {
	seed(f, "passwd", "group")
	f.Fuzz(func(t *testing.T, b []byte) {
		us, _, err := ParsePasswd(bytes.NewReader(b))
		if err == nil {
			checkParsed(t, us)
		}
		gs, _, err := ParseGroup(bytes.NewReader(b))
		if err == nil {
			checkParsed(t, gs)
		}
	})
}

func FuzzModules(f *testing.F) {
	seed(f, "proc_modules")
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, _, err := ParseModules(bytes.NewReader(b))
		if err == nil {
			checkParsed(t, ms)
		}
	})
}

func FuzzProcNet(f *testing.F) {
	seed(f, "proc_net_tcp", "proc_net_tcp6", "proc_net_udp")
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, proto := range []string{"tcp", "udp"} {
			ps, _, err := ParseProcNet(bytes.NewReader(b), proto)
			if err == nil {
				checkParsed(t, ps)
			}
		}
	})
}

// FuzzUevent also feeds the bytes to the unit file parser (both read small,
// line- or NUL-separated records).
func FuzzUevent(f *testing.F) {
	seed(f, "uevent_module_add", "uevent_net", "unit.service")
	f.Fuzz(func(t *testing.T, b []byte) {
		if u, err := ParseUevent(b); err == nil {
			checkParsed(t, u)
		}
		if e, err := ParseUnitExecStart(bytes.NewReader(b)); err == nil {
			checkParsed(t, e)
		}
	})
}
