package posture

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fakeRoot copies testdata/root to a temporary directory and sets the
// modes and owners git does not keep.
func fakeRoot(t testing.TB) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir("testdata/root", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("testdata/root", p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dst, "etc/shadow"), 0o640); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() == 0 {
		os.Chown(filepath.Join(dst, "etc/shadow"), 0, 42)
	}
	return dst
}

func loadTest(t *testing.T, name string) *Policy {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata/policies", name))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(name, data)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// render is the golden form of a report: one line per check.
func render(r *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "policy %s applicable=%v %s\n", r.PolicyID, r.Applicable, r.RequirementsReason)
	for _, res := range r.Results {
		fmt.Fprintf(&b, "%d %s: %s\n", res.CheckID, res.Status, res.Reason)
	}
	s := r.Summary
	fmt.Fprintf(&b, "summary passed=%d failed=%d not_applicable=%d total=%d score=%d\n", s.Passed, s.Failed, s.NotApplicable, s.Total, s.Score)
	return b.String()
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update and review the diff):\n%s", path, diffLines(string(want), got))
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			fmt.Fprintf(&b, "- %s\n+ %s\n", a, c)
		}
	}
	return b.String()
}

// The policies under testdata/policies evaluated against the fake root
// give exactly their golden results.
func TestPoliciesGolden(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the fixtures use Linux commands and owners")
	}
	root := fakeRoot(t)
	ev := NewEvaluator(Options{Root: root, Commands: true, CommandTimeout: 10 * time.Second})
	for _, name := range []string{"syntax.yml", "requirements.yml"} {
		t.Run(name, func(t *testing.T) {
			p := loadTest(t, name)
			r := ev.Evaluate(context.Background(), p)
			got := render(r)
			if os.Getuid() != 0 {
				// Without root the copy of /etc/shadow belongs to the test's
				// user; check 41 differs and is left out.
				got = dropLine(got, "41 ")
			}
			golden(t, filepath.Join("testdata/policies", strings.TrimSuffix(name, ".yml")+".golden"), got)
			for _, res := range r.Results {
				if res.Reason == "" || (res.Status != Passed && res.Status != Failed && res.Status != NotApplicable) {
					t.Errorf("check %d: status %q reason %q", res.CheckID, res.Status, res.Reason)
				}
			}
		})
	}
}

func dropLine(s, prefix string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), prefix) {
			b.WriteString(sc.Text() + "\n")
		}
	}
	return b.String()
}

func TestCommandsDisabled(t *testing.T) {
	p, err := Parse("inline", []byte(`
policy: {id: x}
checks:
  - {id: 1, title: t, condition: all, rules: ['c:echo hi -> hi']}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := NewEvaluator(Options{}).Evaluate(context.Background(), p)
	if got := r.Results[0]; got.Status != NotApplicable || !strings.Contains(got.Reason, "commands are disabled") {
		t.Fatalf("got %+v", got)
	}
}

func TestCommandTimeoutAndOutputBound(t *testing.T) {
	if _, err := lookPath("sh"); err != nil {
		t.Skip(err)
	}
	p, err := Parse("inline", []byte(`
policy: {id: x}
checks:
  - {id: 1, title: slow, condition: all, rules: ['c:sh -c "sleep 10 & sleep 10" -> x']}
  - {id: 2, title: big, condition: all, rules: ['c:sh -c "yes | head -c 100000; echo; echo last" -> r:^y']}
`))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := NewEvaluator(Options{Commands: true, CommandTimeout: 200 * time.Millisecond, MaxOutput: 4096}).Evaluate(context.Background(), p)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s: the process group was not killed", d)
	}
	if got := r.Results[0]; got.Status != NotApplicable || !strings.Contains(got.Reason, "did not finish within 200ms") {
		t.Errorf("slow: %+v", got)
	}
	if got := r.Results[1]; got.Status != Passed || !strings.Contains(got.Reason, "output truncated") {
		t.Errorf("big: %+v", got)
	}
}

func TestCancelledScan(t *testing.T) {
	p := loadTest(t, "requirements.yml")
	p.Requirements = nil
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := NewEvaluator(Options{Root: fakeRoot(t)}).Evaluate(ctx, p)
	for _, res := range r.Results {
		if res.Status != NotApplicable || !strings.Contains(res.Reason, "cancelled") {
			t.Errorf("%+v", res)
		}
	}
}

// Every testdata/bad/*.bad.yaml is rejected with the message on its first
// line ("# want: …").
func TestBadPolicies(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.bad.yaml")
	if len(files) < 5 {
		t.Fatalf("only %d fixtures", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := bytes.Cut(data, []byte("\n"))
			want := strings.TrimPrefix(string(first), "# want: ")
			_, err = Parse(filepath.Base(f), data)
			if err == nil {
				t.Fatalf("accepted; want %q", want)
			}
			if !errors.Is(err, ErrPolicy) {
				t.Errorf("error %v does not wrap ErrPolicy", err)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q\nwant it to contain %q", err, want)
			}
		})
	}
}

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`sshd -T`, []string{"sshd", "-T"}},
		{`sh -c "stat -Lc '%a %U' /etc/x"`, []string{"sh", "-c", "stat -Lc '%a %U' /etc/x"}},
		{`grep -E '^\s*a  b' f`, []string{"grep", "-E", `^\s*a  b`, "f"}},
		{`a "" b`, []string{"a", "", "b"}},
		{`x"y z"w`, []string{"xy zw"}},
	} {
		got, err := splitCommand(tc.in)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) || len(got) != len(tc.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestOSRegex(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`^Port\.+22`, `^Port.+22`},
		{`a.b`, `a\.b`},
		{`\d+\s\w`, `[0-9]+[ ][A-Za-z0-9@_\-]`},
		{`\(x\)|y$`, `\(x\)|y$`},
		{`a\pb`, `a[()*+,\-.:;<=>?\[\]!"'#$%&|{}]b`},
		{`lo\.**x`, `lo.*\*x`},
		{`^*a|+b`, `^\*a|\+b`},
		{`(\d+)+`, `([0-9]+)+`},
	} {
		if got := fromOSRegex(tc.in); got != tc.want {
			t.Errorf("fromOSRegex(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// What the translated patterns match, on lines written for this test.
	for _, tc := range []struct {
		pat, line string
		want      bool
	}{
		{`\.+.conf$`, "sshd.conf", true}, // \. is any character: a file-name filter
		{`\.+.conf$`, "sshdconf", false},
		{`^\.*DROP\.*eth0\.**\.*10.0.0.0/8`, "DROP  all  --  eth0  *  10.0.0.0/8  0.0.0.0/0", true},
		{`a\pb`, "a;b", true},
		{`a\pb`, "a/b", false}, // / is not in OS_Regex's punctuation
		{`^PASS_MAX_DAYS\s*\t*(\d+)`, "PASS_MAX_DAYS\t99999", true},
		{`\s`, "\t", false},    // \s is a space only; policies write \s*\t*
		{`ROOT`, "root", true}, // case-insensitive
	} {
		re, err := compileRegex(tc.pat, "osregex")
		if err != nil {
			t.Errorf("compileRegex(%q): %v", tc.pat, err)
			continue
		}
		if got := re.MatchString(tc.line); got != tc.want {
			t.Errorf("OS_Regex %q on %q = %v, want %v (RE2 %s)", tc.pat, tc.line, got, tc.want, re)
		}
	}
}

// A policy that names no engine gets OS_Regex, as in Wazuh's SCA module;
// a check's regex_type other than pcre2 does too.
func TestDefaultEngineIsOSRegex(t *testing.T) {
	// OS_Regex reads \. as any character, so this matches "a.conf"; PCRE2
	// would want a literal dot first.
	if re, err := compileRegex(`\.+.conf$`, "PCRE"); err != nil || !re.MatchString("a.conf") {
		t.Errorf("regex_type PCRE (not pcre2) is not read as OS_Regex: %v, %v", re, err)
	}
	for _, tc := range []struct{ header, want string }{
		{"", "osregex"},
		{"  regex_type: pcre2\n", "pcre2"},
		{"  regex_type: osregex\n", "osregex"},
	} {
		src := "policy:\n  id: p\n  name: p\n" + tc.header +
			"checks:\n  - id: 1\n    title: t\n    condition: all\n    rules: ['f:/etc/x -> r:\\.+.conf$']\n"
		p, err := Parse("p.yml", []byte(src))
		if err != nil {
			t.Fatalf("%q: %v", tc.header, err)
		}
		if p.RegexType != tc.want {
			t.Errorf("header %q: regex type %q, want %q", tc.header, p.RegexType, tc.want)
		}
	}
}

// One real run on this machine: the built-in baselines load and every
// check ends with a status and a reason.
func TestBuiltinsOnThisHost(t *testing.T) {
	ps, err := Builtins()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) == 0 {
		t.Fatal("no built-in policies")
	}
	ev := NewEvaluator(Options{})
	for _, p := range ps {
		r := ev.Evaluate(context.Background(), p)
		for _, res := range r.Results {
			if res.Reason == "" {
				t.Errorf("%s check %d: %s without a reason", p.ID, res.CheckID, res.Status)
			}
		}
		t.Logf("%s: applicable=%v %+v", p.ID, r.Applicable, r.Summary)
	}
}

// The baselines are complete: every check says why, how to fix it, and
// maps to the four frameworks; Debian's and Ubuntu's hold the same checks.
func TestBuiltinsComplete(t *testing.T) {
	deb, err := Builtin("vigil_debian12")
	if err != nil {
		t.Fatal(err)
	}
	ubu, err := Builtin("vigil_ubuntu")
	if err != nil {
		t.Fatal(err)
	}
	if len(deb.Checks) < 40 || len(deb.Checks) != len(ubu.Checks) {
		t.Fatalf("%d Debian checks, %d Ubuntu checks", len(deb.Checks), len(ubu.Checks))
	}
	for _, p := range []*Policy{deb, ubu} {
		if p.Requirements == nil {
			t.Errorf("%s has no requirements", p.ID)
		}
		for i, c := range p.Checks {
			if c.Description == "" || c.Rationale == "" || c.Remediation == "" {
				t.Errorf("%s %d: description, rationale or remediation missing", p.ID, c.ID)
			}
			for _, fw := range []string{"cis_csc_v8", "iso_27001-2022", "nis2", "gdpr"} {
				if len(c.Compliance[fw]) == 0 {
					t.Errorf("%s %d: no %s mapping", p.ID, c.ID, fw)
				}
			}
			for _, raw := range c.Rules {
				r, err := parseRule(raw, p.Variables, p.RegexType)
				if err != nil {
					t.Errorf("%s %d: %q: %v", p.ID, c.ID, raw, err)
				} else if r.kind == 'c' {
					t.Errorf("%s %d: built-in policies must not run commands: %q", p.ID, c.ID, raw)
				}
			}
			if p == ubu && c.Title != deb.Checks[i].Title {
				t.Errorf("check %d: Ubuntu %q, Debian %q", i, c.Title, deb.Checks[i].Title)
			}
		}
	}
}

// The Debian baseline against the fake root gives its golden results.
func TestBuiltinGolden(t *testing.T) {
	if runtime.GOOS != "linux" || os.Getuid() != 0 {
		t.Skip("needs Linux and root for the fake root's owners")
	}
	p, err := Builtin("vigil_debian12")
	if err != nil {
		t.Fatal(err)
	}
	r := NewEvaluator(Options{Root: fakeRoot(t)}).Evaluate(context.Background(), p)
	golden(t, "testdata/vigil_debian12.golden", render(r))
}

// With a root, a path cannot climb out of it with "..".
func TestRootConfinesDotDot(t *testing.T) {
	root := fakeRoot(t)
	p, err := Parse("inline", []byte(`
policy: {id: x}
checks:
  - {id: 1, title: t, condition: all, rules: ['f:/../../../../../../../etc/os-release -> r:^ID=vigil-test$']}
`))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=vigil-test\n"), 0o644)
	r := NewEvaluator(Options{Root: root}).Evaluate(context.Background(), p)
	if r.Results[0].Status != Passed || !strings.Contains(r.Results[0].Reason, "line 1 matches") {
		t.Fatalf("%+v", r.Results[0])
	}
}
