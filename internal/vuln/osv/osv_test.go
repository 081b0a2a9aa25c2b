package osv

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-edr/vigil/internal/vuln"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

// TestRecordGolden: each testdata/*.json sampleRecord parses to its
// .golden.json (go test -update rewrites them).
func TestRecordGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".golden.json") {
			continue
		}
		n++
		res, err := ReadFile(f, f, Options{})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := json.MarshalIndent(view(res.Advisories, res.Skipped), "", "  ")
		golden := strings.TrimSuffix(f, ".json") + ".golden.json"
		if *update {
			os.WriteFile(golden, append(got, '\n'), 0o644)
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if string(bytes.TrimSpace(want)) != string(got) {
			t.Errorf("%s:\n%s", f, got)
		}
	}
	if n == 0 {
		t.Fatal("no records")
	}
}

// view is advisories as JSON with each affected entry's ecosystem and
// package (which the stored JSON leaves to columns).
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

func zipOf(t testing.TB, method uint16, files map[string][]byte) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, data := range files {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	zw.Close()
	return b.Bytes()
}

const sampleRecord = `{"id": "DSA-1-1", "affected": [{"package": {"ecosystem": "Debian:12", "name": "zlib"},
 "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:1.2.13.dfsg-1"}]}]}]}`

// TestZipLimits: a zip's records are read without using names as paths;
// bombs, oversized members, too many members and bad records are refused
// with the member named.
func TestZipLimits(t *testing.T) {
	big := bytes.Repeat([]byte(" "), 3<<20) // 3 MiB of spaces deflates ~1000×
	for _, tc := range []struct {
		name  string
		zip   []byte
		opts  Options
		want  string // "" accepted
		count int
	}{
		{"records", zipOf(t, zip.Deflate, map[string][]byte{"../../etc/a.json": []byte(sampleRecord), "dir/b.JSON": []byte(strings.Replace(sampleRecord, "DSA-1-1", "DSA-2-1", 1)), "c.txt": []byte("x")}), Options{}, "", 2},
		{"stored", zipOf(t, zip.Store, map[string][]byte{"a.json": []byte(sampleRecord)}), Options{}, "", 1},
		{"bomb", zipOf(t, zip.Deflate, map[string][]byte{"bomb.json": append([]byte(sampleRecord), big...)}), Options{}, `member "bomb.json": over the limit: inflates`, 0},
		{"big member", zipOf(t, zip.Store, map[string][]byte{"a.json": []byte(sampleRecord)}), Options{MaxRecord: 50}, `member "a.json": over the limit: declares`, 0},
		{"total", zipOf(t, zip.Store, map[string][]byte{"a.json": []byte(sampleRecord), "b.json": []byte(sampleRecord)}), Options{MaxTotal: int64(len(sampleRecord)) + 10}, `over the limit: the members inflate`, 0},
		{"members", zipOf(t, zip.Store, map[string][]byte{"a.json": []byte(sampleRecord), "b.json": []byte(sampleRecord)}), Options{MaxFiles: 1}, `2 members, more than 1`, 0},
		{"bad sampleRecord", zipOf(t, zip.Deflate, map[string][]byte{"x/bad.json": []byte(`{"id": "X", "affected": [{"package": {"ecosystem": "Debian:12", "name": "z"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "-1"}]}]}]}`)}), Options{}, `member "x/bad.json": $.affected[0].ranges[0].events[0].fixed: invalid version "-1": version number is empty`, 0},
		{"not a zip", append([]byte("PK\x03\x04"), big[:100]...), Options{}, "f.zip: not a readable zip", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f.zip")
			os.WriteFile(path, tc.zip, 0o600)
			res, err := ReadFile(path, "f.zip", tc.opts)
			if tc.want == "" {
				if err != nil || len(res.Advisories) != tc.count {
					t.Fatalf("%v, %d advisories", err, len(res.Advisories))
				}
				return
			}
			var fe *vuln.FileError
			if err == nil || !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "f.zip") {
				t.Fatalf("%v, want %q", err, tc.want)
			}
		})
	}
}

// FuzzOSV feeds a sampleRecord or (starting "PK") a zip: no panic, and whatever
// is accepted is valid UTF-8 with usable names and versions.
func FuzzOSV(f *testing.F) {
	f.Add([]byte(sampleRecord))
	if b, err := os.ReadFile("testdata/ubuntu.json"); err == nil {
		f.Add(b)
	}
	f.Add(zipOf(f, zip.Deflate, map[string][]byte{"a.json": []byte(sampleRecord)}))
	f.Add([]byte(`{"id": "X", "withdrawn": "2024-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var res Result
		var err error
		if bytes.HasPrefix(data, []byte("PK\x03\x04")) {
			res, err = ReadZip(bytes.NewReader(data), int64(len(data)), "f", Options{MaxRecord: 1 << 20, MaxTotal: 4 << 20, MaxFiles: 100})
		} else {
			err = res.add("f", "", data)
		}
		if err != nil {
			var fe *vuln.FileError
			if !errors.As(err, &fe) {
				t.Fatalf("not a FileError: %v", err)
			}
			return
		}
		for _, a := range res.Advisories {
			if !vuln.Name(a.ID) || len(a.Affected) == 0 || len(a.Summary) > vuln.MaxSummary+3 {
				t.Fatalf("advisory %+v", a)
			}
			for _, af := range a.Affected {
				if !vuln.Name(af.Package) || !strings.Contains(af.Ecosystem, ":") {
					t.Fatalf("affected %+v", af)
				}
			}
		}
	})
}
