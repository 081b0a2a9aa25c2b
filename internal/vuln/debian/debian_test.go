package debian

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/vigil-edr/vigil/internal/vuln"
)

var update = flag.Bool("update", false, "rewrite testdata/tracker.golden.json")

func view(advs []vuln.Advisory, skipped map[string]int) any {
	type affected struct {
		Ecosystem, Package string
		vuln.Affected
	}
	type advisory struct {
		vuln.Advisory
		Affected []affected
	}
	out := struct {
		Advisories []advisory
		Skipped    map[string]int
	}{Skipped: skipped}
	for _, a := range advs {
		v := advisory{Advisory: a}
		for _, af := range a.Affected {
			v.Affected = append(v.Affected, affected{af.Ecosystem, af.Package, af})
		}
		out.Advisories = append(out.Advisories, v)
	}
	return out
}

// TestGolden: the sample export parses to testdata/tracker.golden.json.
func TestGolden(t *testing.T) {
	res, err := ReadFile("testdata/tracker.json", "tracker.json")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.MarshalIndent(view(res.Advisories, res.Skipped), "", "  ")
	if *update {
		os.WriteFile("testdata/tracker.golden.json", append(got, '\n'), 0o644)
	}
	want, err := os.ReadFile("testdata/tracker.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(bytes.TrimSpace(want)) != string(got) {
		t.Errorf("got:\n%s", got)
	}
}

func TestRejects(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{``, "t.json: $: unexpected end of the JSON text"},
		{`[]`, `t.json: at byte 0: $: not a JSON object of packages`},
		{`{"openssl": {"CVE-1": {"releases": {"bookworm": {"status": "resolved"}}}}}`, `t.json: $["openssl"]["CVE-1"].releases["bookworm"].fixed_version: resolved without a fixed_version`},
		{`{"openssl": {"CVE-1": {"releases": {"bookworm": {"status": "open", "fixed_version": "1.0"}}}}}`, `an open issue with a fixed_version`},
		{`{"openssl": {"CVE 1": {}}}`, `t.json: $["openssl"]["CVE 1"]: not a usable issue id`},
		{`{"openssl": {"CVE-1": {"description": "a` + "\xff" + `"}}}`, `t.json: at byte 40: $["openssl"]: invalid UTF-8`},
		{`{"openssl": {"CVE-1": {"releases": {"bookworm": {"status": 1}}}}}`, `t.json: at byte 60: $["openssl"].releases.status: expected a string, found number`},
		{`{"openssl": {"CVE-1": {}}`, `unexpected end of the JSON text`},
		{`{"openssl": 7}`, `t.json: at byte 13: $["openssl"]: expected an object, found number`},
	} {
		_, err := Read(strings.NewReader(tc.in), "t.json")
		var fe *vuln.FileError
		if err == nil || !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.60s: %v, want %q", tc.in, err, tc.want)
		}
	}
}

// FuzzTracker: no panic; an error is a FileError; what is accepted has
// usable names and a range per affected entry.
func FuzzTracker(f *testing.F) {
	if b, err := os.ReadFile("testdata/tracker.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"a1": {"CVE-1": {"releases": {"bookworm": {"status": "open"}}}}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Read(bytes.NewReader(data), "f")
		if err != nil {
			var fe *vuln.FileError
			if !errors.As(err, &fe) {
				t.Fatalf("not a FileError: %v", err)
			}
			return
		}
		for _, a := range res.Advisories {
			if !vuln.Name(a.ID) || len(a.Affected) == 0 {
				t.Fatalf("advisory %+v", a)
			}
			for _, af := range a.Affected {
				if !packageName(af.Package) || len(af.Ranges) != 1 || af.Severity == nil {
					t.Fatalf("affected %+v", af)
				}
			}
		}
	})
}
