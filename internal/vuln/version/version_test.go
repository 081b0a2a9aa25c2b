package version

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

type pair struct {
	a, b string
	want int // sign
	line int
}

func readGolden(t *testing.T, name string) []pair {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []pair
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			t.Fatalf("%s:%d: want A OP B, got %q", name, n, sc.Text())
		}
		want := map[string]int{"<": -1, "=": 0, ">": 1}
		w, ok := want[f[1]]
		if !ok {
			t.Fatalf("%s:%d: unknown operator %q", name, n, f[1])
		}
		out = append(out, pair{f[0], f[2], w, n})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 20 {
		t.Fatalf("%s: only %d comparisons", name, len(out))
	}
	return out
}

var ops = map[int]string{-1: "<", 0: "=", 1: ">"}

// TestGolden: every comparison of the golden tables holds both ways, and
// agrees with the real package manager where it is installed.
func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		file   string
		scheme Scheme
		real   func(t *testing.T, ps []pair) []int // nil when the tool is missing
	}{
		{"dpkg.golden", Dpkg, dpkgOracle},
		{"rpm.golden", RPM, rpmOracle},
	} {
		t.Run(tc.scheme.String(), func(t *testing.T) {
			ps := readGolden(t, tc.file)
			for _, p := range ps {
				if err := tc.scheme.Valid(p.a); err != nil {
					t.Errorf("%s:%d: %v", tc.file, p.line, err)
				}
				if err := tc.scheme.Valid(p.b); err != nil {
					t.Errorf("%s:%d: %v", tc.file, p.line, err)
				}
				if got := sign(tc.scheme.Compare(p.a, p.b)); got != p.want {
					t.Errorf("%s:%d: %s %s %s, want %s", tc.file, p.line, p.a, ops[got], p.b, ops[p.want])
				}
				if got := sign(tc.scheme.Compare(p.b, p.a)); got != -p.want {
					t.Errorf("%s:%d reversed: %s %s %s, want %s", tc.file, p.line, p.b, ops[got], p.a, ops[-p.want])
				}
			}
			real := tc.real(t, ps)
			if real == nil {
				return
			}
			for i, p := range ps {
				if real[i] != p.want {
					t.Errorf("%s:%d: the real %s says %s %s %s", tc.file, p.line, tc.scheme, p.a, ops[real[i]], p.b)
				}
			}
		})
	}
}

// dpkgOracle asks `dpkg --compare-versions` for each pair; nil when dpkg
// is not installed.
func dpkgOracle(t *testing.T, ps []pair) []int {
	t.Helper()
	bin, err := exec.LookPath("dpkg")
	if err != nil {
		t.Log("dpkg not installed: not checked against it")
		return nil
	}
	ask := func(a, op, b string) bool {
		err := exec.Command(bin, "--compare-versions", a, op, b).Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return true
		case errors.As(err, &ee) && ee.ExitCode() == 1:
			return false
		}
		t.Fatalf("dpkg --compare-versions %q %s %q: %v", a, op, b, err)
		return false
	}
	out := make([]int, len(ps))
	for i, p := range ps {
		switch {
		case ask(p.a, "lt", p.b):
			out[i] = -1
		case ask(p.a, "eq", p.b):
			out[i] = 0
		default:
			out[i] = 1
		}
	}
	return out
}

// rpmOracle asks rpm's Lua rpm.vercmp (rpm ≥ 4.16) for all pairs in one
// run; nil when rpm is not installed.
func rpmOracle(t *testing.T, ps []pair) []int {
	t.Helper()
	bin, err := exec.LookPath("rpm")
	if err != nil {
		t.Log("rpm not installed: not checked against it")
		return nil
	}
	var lua strings.Builder
	lua.WriteString("%{lua:")
	for _, p := range ps {
		fmt.Fprintf(&lua, "print(rpm.vercmp(%q, %q)) print('\\n') ", p.a, p.b)
	}
	lua.WriteString("}")
	out, err := exec.Command(bin, "--eval", lua.String()).Output()
	if err != nil {
		t.Fatalf("rpm --eval: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) != len(ps) {
		t.Fatalf("rpm --eval: %d answers for %d pairs: %.200s", len(f), len(ps), out)
	}
	res := make([]int, len(ps))
	for i, s := range f {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("rpm --eval answer %q", s)
		}
		res[i] = sign(n)
	}
	return res
}

// randomVersion builds a version from the pieces that matter to the
// algorithms: epochs, numeric runs with leading zeros, letters, '.', '+',
// '~', '^' (rpm) and a revision or release.
func randomVersion(r *rand.Rand, s Scheme) string {
	pieces := []string{"0", "1", "2", "01", "10", "9", "a", "b", "Z", "rc", ".", ".", "~", "+"}
	if s == RPM {
		pieces = append(pieces[:len(pieces)-1], "^", "_")
	}
	var b strings.Builder
	if r.IntN(5) == 0 {
		fmt.Fprintf(&b, "%d:", r.IntN(3))
	}
	b.WriteString([]string{"0", "1", "2", "10"}[r.IntN(4)])
	for n := r.IntN(5); n > 0; n-- {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	if s == Dpkg && r.IntN(3) > 0 || s == RPM {
		// rpm's vercmp skips the release when one side has none, so
		// both sides get one there.
		b.WriteString("-")
		b.WriteString([]string{"0", "1", "2", "1a", "1+b1", "1~deb12u1", "1.el9", "1~rc"}[r.IntN(8)])
	}
	v := b.String()
	if s.Valid(v) != nil {
		return "1.0"
	}
	return v
}

// TestAgainstManagers compares a few hundred generated pairs with the
// real dpkg and rpm (each skipped where not installed).
func TestAgainstManagers(t *testing.T) {
	for _, tc := range []struct {
		scheme Scheme
		oracle func(t *testing.T, ps []pair) []int
	}{{Dpkg, dpkgOracle}, {RPM, rpmOracle}} {
		t.Run(tc.scheme.String(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, uint64(tc.scheme)))
			ps := make([]pair, 300)
			for i := range ps {
				ps[i] = pair{a: randomVersion(r, tc.scheme), b: randomVersion(r, tc.scheme)}
				if i%10 == 0 {
					ps[i].b = ps[i].a + []string{"~", "0", "a", ".0", "+1"}[r.IntN(5)]
					if tc.scheme.Valid(ps[i].b) != nil {
						ps[i].b = ps[i].a
					}
				}
				if i%10 == 5 {
					// The same version spelled differently: an explicit
					// zero epoch and a leading zero.
					e, rest, ok := strings.Cut(ps[i].a, ":")
					if !ok {
						e, rest = "0", ps[i].a
					}
					ps[i].b = e + ":0" + rest
				}
			}
			real := tc.oracle(t, ps)
			if real == nil {
				t.Skip(tc.scheme.String() + " not installed")
			}
			bad, seen := 0, map[int]int{}
			for i, p := range ps {
				seen[real[i]]++
				if got := sign(tc.scheme.Compare(p.a, p.b)); got != real[i] {
					bad++
					t.Errorf("%s %s %s, the real %s says %s", p.a, ops[got], p.b, tc.scheme, ops[real[i]])
				}
			}
			t.Logf("%d pairs (%d <, %d =, %d >), %d disagreements", len(ps), seen[-1], seen[0], seen[1], bad)
			if seen[-1] < 50 || seen[0] < 10 || seen[1] < 50 {
				t.Errorf("generated pairs are too one-sided: %v", seen)
			}
		})
	}
}

func TestValid(t *testing.T) {
	for _, tc := range []struct {
		s    Scheme
		v    string
		want string // "" valid, else a part of the error
	}{
		{Dpkg, "1.0", ""},
		{Dpkg, "1:2.38.1-5+deb12u3", ""},
		{Dpkg, "3.0.11-1~deb12u1", ""},
		{Dpkg, " 1.0 ", ""},
		{Dpkg, "1:1.0:2-1", ""},
		{Dpkg, "", "empty"},
		{Dpkg, "1.0 1", "embedded spaces"},
		{Dpkg, ":1.0", "epoch in version is empty"},
		{Dpkg, "a:1.0", "not number"},
		{Dpkg, "2147483648:1", "too big"},
		{Dpkg, "1:", "nothing after colon"},
		{Dpkg, "1.0-", "revision number is empty"},
		{Dpkg, "-1", "version number is empty"},
		{Dpkg, "1.0_1", "invalid character in version"},
		{Dpkg, "1:1.0-1:2", "invalid character in revision"},
		{Dpkg, "1.0\x00", "invalid character"},
		{Dpkg, strings.Repeat("1", 300), "longer"},
		{RPM, "1.0-1.el9", ""},
		{RPM, "2:1.0^git1-1", ""},
		{RPM, "1.0", ""},
		{RPM, "", "empty"},
		{RPM, ":1.0", "epoch is empty"},
		{RPM, "x:1.0", "not a number"},
		{RPM, "1.0-", "release is empty"},
		{RPM, "-1", "version is empty"},
		{RPM, "1:2:3", "inside the version"},
		{RPM, "1.0 -1", "white space"},
		{RPM, "1.0\xff", "non-ASCII"},
	} {
		err := tc.s.Valid(tc.v)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s %q: %v", tc.s, tc.v, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalid)):
			t.Errorf("%s %q: %v, want an error with %q", tc.s, tc.v, err, tc.want)
		}
	}
}

func BenchmarkCompare(b *testing.B) {
	b.ReportAllocs()
	for _, s := range []Scheme{Dpkg, RPM} {
		b.Run(s.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.Compare("1:3.0.11-1~deb12u1.el9", "1:3.0.13-1~deb12u2.el9")
			}
		})
	}
}
