package hunt

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-edr/vigil/internal/detect/correlate"
	"github.com/vigil-edr/vigil/internal/detect/sigma"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/testkit"
)

func corpus(tb testing.TB) string {
	tb.Helper()
	return testkit.Corpus(tb)
}

func engine(tb testing.TB, paths ...string) (*sigma.Engine, *correlate.Engine) {
	tb.Helper()
	rules, errs := sigma.LoadPaths(paths...)
	eng, cerrs := sigma.NewEngine(rules, sigma.Options{})
	errs = append(errs, cerrs...)
	corr, rerrs := correlate.New(rules, func(ref string) bool { _, ok := eng.Lookup(ref); return ok }, correlate.Options{})
	errs = append(errs, rerrs...)
	if len(errs) > 0 {
		tb.Fatalf("rules: %v", errs)
	}
	return eng, corr
}

func hunt(tb testing.TB, eng *sigma.Engine, corr *correlate.Engine, paths ...string) ([]Detection, *Summary) {
	tb.Helper()
	files, err := Walk(paths)
	if err != nil {
		tb.Fatal(err)
	}
	var got []Detection
	sum, err := Run(context.Background(), eng, corr, files, Options{}, func(d Detection) error {
		got = append(got, d)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return got, sum
}

func count(ds []Detection, title string) int {
	n := 0
	for _, d := range ds {
		if d.RuleTitle == title {
			n++
		}
	}
	return n
}

// Every SigmaHQ rule in the corpus loads; the issue allows 1 % rejections.
func TestCorpusRulesLoad(t *testing.T) {
	c := corpus(t)
	rules, errs := sigma.LoadPaths(filepath.Join(c, "sigma", "rules"), filepath.Join(c, "sigma", "rules-threat-hunting"))
	eng, cerrs := sigma.NewEngine(rules, sigma.Options{})
	errs = append(errs, cerrs...)
	files := 0
	filepath.WalkDir(filepath.Join(c, "sigma"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yml") && strings.Contains(p, "/rules") && !strings.Contains(p, "regression_data") {
			files++
		}
		return nil
	})
	if files != 2517 {
		t.Errorf("corpus has %d rule files, expected 2517", files)
	}
	for _, err := range errs {
		t.Logf("rejected: %v", err)
		if _, ok := err.(*sigma.Error); !ok {
			t.Errorf("rejection without file and reason: %v", err)
		}
	}
	if max := files / 100; len(errs) > max {
		t.Errorf("%d rules rejected, more than 1%% (%d)", len(errs), max)
	}
	t.Logf("%d rule files, %d compiled, %d rejected; index %+v", files, len(eng.Rules()), len(errs), eng.Stats())
}

// upstreamMismatch lists regression cases whose match_count disagrees with the
// rule as written, with the count the Sigma semantics give and why. The test
// still checks that exact count, so a change in behaviour is caught.
var upstreamMismatch = map[string]struct {
	got    int
	reason string
}{
	"45e112d0-7759-4c2a-aa36-9f8fb79d3393": {3, "all three Sysmon 13 events set a ZoneMap\\Domains\\ value to DWORD 2, which the rule's filter does not exclude; info.yml says 1"},
}

// SigmaHQ's regression cases: the rule fires exactly match_count times on the
// EVTX and on its JSON rendering.
func TestRegressionCases(t *testing.T) {
	c := corpus(t)
	root := filepath.Join(c, "sigma")
	cases, err := FindCases(filepath.Join(root, "regression_data"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 98 {
		t.Errorf("found %d regression cases, want 98", len(cases))
	}
	rules, errs := sigma.LoadPaths(filepath.Join(root, "rules"), filepath.Join(root, "rules-threat-hunting"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	results := RunCases(context.Background(), cases, rules)
	evtx, json := 0, 0
	for _, r := range results {
		if strings.HasSuffix(r.File, ".evtx") {
			evtx++
		} else {
			json++
		}
		want := r.Want
		if m, ok := upstreamMismatch[r.RuleID]; ok {
			want = m.got
		}
		ok := r.Err == nil && (want < 0 && r.Got > 0 || want >= 0 && r.Got == want)
		if !ok {
			t.Errorf("%s %q on %s: got %d matches, want %d (err %v)", r.RuleID, r.RuleTitle, filepath.Base(r.File), r.Got, want, r.Err)
		}
	}
	if evtx != 98 || json != 98 {
		t.Errorf("ran %d EVTX and %d JSON renderings, want 98 each", evtx, json)
	}
}

func TestHuntSyslogAndCorrelation(t *testing.T) {
	c := corpus(t)
	eng, corr := engine(t, "testdata/rules/ssh_failed_password.yml", "testdata/rules/ssh_bruteforce_correlation.yml")
	ds, sum := hunt(t, eng, corr, filepath.Join(c, "logs", "loghub", "OpenSSH", "OpenSSH_2k.log"))
	// The corpus README counts 520 "Failed password" lines.
	if n := count(ds, "SSH failed password"); n != 520 {
		t.Errorf("SSH failed password: %d detections, want 520", n)
	}
	if n := count(ds, "SSH failed password (base)"); n != 0 {
		t.Errorf("base rule of a correlation (generate: false) was reported %d times", n)
	}
	if n := count(ds, "SSH brute force from one address"); n == 0 {
		t.Error("brute-force correlation never fired on a log that is mostly brute force")
	}
	for _, d := range ds {
		if d.Correlation != nil && (len(d.Correlation.Refs) == 0 || d.Fields[0].Name != "SourceIp" || d.Fields[0].Value == "") {
			t.Errorf("correlation hit without events or group: %+v", d)
		}
	}
	if sum.Files != 1 || sum.Events != 2000 {
		t.Errorf("summary files=%d events=%d, want 1 and 2000", sum.Files, sum.Events)
	}
}

func TestHuntAuditd(t *testing.T) {
	c := corpus(t)
	eng, _ := engine(t, "testdata/rules/auditd_execve.yml")
	ds, sum := hunt(t, eng, nil, filepath.Join(c, "auditd", "auparse", "testdata"))
	if len(ds) == 0 {
		t.Fatalf("no EXECVE record found in the auditd corpus (events %d)", sum.Events)
	}
	for _, d := range ds {
		if _, ok := fieldValue(d.Fields, "type"); !ok {
			t.Errorf("detection without the matched type field: %+v", d)
		}
	}
}

func fieldValue(fs []event.Field, name string) (string, bool) {
	for _, f := range fs {
		if f.Name == name {
			return f.Value, true
		}
	}
	return "", false
}

func TestHuntGenericJSON(t *testing.T) {
	eng, _ := engine(t, "testdata/rules/curl_pipe_sh.yml")
	ds, sum := hunt(t, eng, nil, "testdata/generic.jsonl")
	if len(ds) != 1 || ds[0].Record != 1 || ds[0].Time.Format("15:04:05") != "03:04:05" {
		t.Fatalf("detections = %+v", ds)
	}
	if sum.Events != 2 || sum.Warnings != 1 {
		t.Errorf("events=%d warnings=%d, want 2 events and 1 warning for the broken line", sum.Events, sum.Warnings)
	}
}

// A corrupt chunk is skipped with a counted warning; the rest of the file is
// still hunted.
func TestHuntCorruptEVTX(t *testing.T) {
	c := corpus(t)
	eng, _ := engine(t, filepath.Join(c, "sigma", "rules", "windows"))
	// The largest corpus file has several chunks.
	var src string
	var size int64
	filepath.WalkDir(filepath.Join(c, "evtx"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".evtx") {
			if info, _ := d.Info(); info.Size() > size {
				src, size = p, info.Size()
			}
		}
		return nil
	})
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	_, clean := hunt(t, eng, nil, src)
	bad := bytes.Clone(data)
	// Second chunk: the file header is 4 KiB, chunks 64 KiB; flip bytes in its record area.
	off := 4096 + 65536 + 1024
	if len(bad) < off+16 {
		t.Skipf("largest corpus EVTX %s has one chunk", src)
	}
	for i := 0; i < 16; i++ {
		bad[off+i] ^= 0xff
	}
	p := filepath.Join(t.TempDir(), "corrupt.evtx")
	if err := os.WriteFile(p, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	_, sum := hunt(t, eng, nil, p)
	if sum.Warnings == 0 {
		t.Fatal("corrupt chunk produced no warning")
	}
	if sum.Events == 0 || sum.Events >= clean.Events {
		t.Errorf("events after corruption = %d, clean file = %d: want some but fewer", sum.Events, clean.Events)
	}
	// Truncation in the middle of a chunk.
	tr := filepath.Join(t.TempDir(), "truncated.evtx")
	os.WriteFile(tr, data[:len(data)/2+333], 0o600)
	_, sum = hunt(t, eng, nil, tr)
	if sum.Events == 0 || len(sum.Errors) != 0 {
		t.Errorf("truncated file: events %d, errors %v", sum.Events, sum.Errors)
	}
}

func TestWritersEscapeHostileText(t *testing.T) {
	d := Detection{RuleTitle: "=cmd|' /C calc'!A0", Source: "x.evtx", Fields: []event.Field{
		{Name: "CommandLine", Value: "evil\x1b]0;pwned\x07\x1b[2J"},
	}}
	var b bytes.Buffer
	w, _ := NewWriter("table", &b)
	w.Write(d)
	if bytes.ContainsRune(b.Bytes(), 0x1b) || bytes.ContainsRune(b.Bytes(), 0x07) {
		t.Errorf("table output carries terminal control characters: %q", b.String())
	}
	b.Reset()
	w, _ = NewWriter("csv", &b)
	w.Write(d)
	w.Flush()
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(rows) != 2 || strings.HasPrefix(rows[1][2], "=") {
		t.Errorf("csv rows %q (err %v): a formula cell survived", rows, err)
	}
	b.Reset()
	w, _ = NewWriter("jsonl", &b)
	w.Write(d)
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"rule_id", "rule_title", "level", "tags", "timestamp", "source", "record_id", "fields"} {
		if _, ok := m[k]; !ok {
			t.Errorf("jsonl output lacks key %q", k)
		}
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name, head string
		want       Format
	}{
		{"a.evtx", "ElfFile\x00rest", FormatEVTX},
		{"a.log", `{"a":1}`, FormatJSON},
		{"a.log", " [\n{", FormatJSON},
		{"audit.log", "type=SYSCALL msg=audit(1.2:3): x=y", FormatAuditd},
		{"audit.log", "node=host type=SYSCALL msg=audit(1.2:3): x=y", FormatAuditd},
		{"auth.log", "Dec 10 06:55:46 LabSZ sshd[24200]: hi", FormatSyslog},
		{"blob.bin", "\x00\x01\x02", ""},
		{"LICENSE", "                    GNU GENERAL PUBLIC LICENSE\n", ""},
		{"rfc5424.log", "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed", FormatSyslog},
		{"empty.log", "", ""},
	}
	for _, tc := range tests {
		if got := Detect(tc.name, []byte(tc.head)); got != tc.want {
			t.Errorf("Detect(%q, %q) = %q, want %q", tc.name, tc.head, got, tc.want)
		}
	}
}
