package vuln

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-edr/vigil/internal/inventory"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestCVSS3(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want float64
	}{
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 8.8},
		{"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1},
		{"CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:L", 3.7},
		{"CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9},
		{"CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", 0},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O", 9.8}, // temporal metrics ignored
	} {
		got, err := CVSS3(tc.v)
		if err != nil || got != tc.want {
			t.Errorf("%s: %v %v, want %v", tc.v, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "CVSS:2.0/AV:N", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:Q",
		"CVSS:3.1/AV:N/AV:L/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AVN/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/X"} {
		if _, err := CVSS3(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestEcosystems(t *testing.T) {
	for in, want := range map[string]string{
		"Debian:12": "Debian:12", "Debian:11": "Debian:11", "Ubuntu:22.04:LTS": "Ubuntu:22.04", "Ubuntu:24.10": "Ubuntu:24.10",
		"Ubuntu:Pro:18.04:LTS": "", "AlmaLinux:9": "AlmaLinux:9", "Rocky Linux:8": "Rocky Linux:8",
		"Red Hat:enterprise_linux:9::appstream": "Red Hat:9", "Red Hat:rhel_eus:9.2::baseos": "Red Hat:9",
		"PyPI": "", "Alpine:v3.18": "", "Debian": "", "Debian:sid": "", "SUSE:Linux Enterprise Server 15 SP5": "",
	} {
		e, ok := OSVEcosystem(in)
		if e.Name != want || ok != (want != "") {
			t.Errorf("%q: %q %v, want %q", in, e.Name, ok, want)
		}
	}
	for _, tc := range []struct {
		os   inventory.OS
		want string
	}{
		{inventory.OS{ID: "debian", VersionID: "12", Codename: "bookworm"}, "Debian:12"},
		{inventory.OS{ID: "debian", Codename: "trixie"}, "Debian:13"},
		{inventory.OS{ID: "ubuntu", VersionID: "22.04"}, "Ubuntu:22.04"},
		{inventory.OS{ID: "almalinux", VersionID: "9.3"}, "AlmaLinux:9"},
		{inventory.OS{ID: "rocky", VersionID: "8.9"}, "Rocky Linux:8"},
		{inventory.OS{ID: "rhel", VersionID: "9.4"}, "Red Hat:9"},
		{inventory.OS{ID: "alpine", VersionID: "3.19"}, ""},
		{inventory.OS{ID: "debian", Codename: "sid"}, ""},
	} {
		e, err := HostEcosystem(&tc.os)
		if e.Name != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("%+v: %q %v, want %q", tc.os, e.Name, err, tc.want)
		}
	}
}

// TestMatch runs each testdata/match*.json (packages, ecosystem,
// advisories) and compares the findings with its .golden.json.
func TestMatch(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "match*.json"))
	n := 0
	for _, f := range files {
		if !strings.HasSuffix(f, ".golden.json") {
			n++
			t.Run(filepath.Base(f), func(t *testing.T) { testMatch(t, f) })
		}
	}
	if n < 2 {
		t.Fatalf("%d match tests", n)
	}
}

func testMatch(t *testing.T, file string) {
	var in struct {
		Ecosystem  string              `json:"ecosystem"`
		Packages   []inventory.Package `json:"packages"`
		Advisories []struct {
			Advisory
			Affected []struct {
				Ecosystem string `json:"ecosystem"`
				Package   string `json:"package"`
				Affected
			} `json:"affected"`
		} `json:"advisories"`
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatal(err)
	}
	eco, ok := OSVEcosystem(in.Ecosystem)
	if !ok {
		t.Fatal(in.Ecosystem)
	}
	var cands []Candidate
	for i := range in.Advisories {
		a := &in.Advisories[i].Advisory
		for _, af := range in.Advisories[i].Affected {
			af.Affected.Ecosystem, af.Affected.Package = af.Ecosystem, af.Package
			cands = append(cands, Candidate{Advisory: a, Affected: af.Affected})
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(Match(in.Packages, eco, cands)); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	golden := strings.TrimSuffix(file, ".json") + ".golden.json"
	if *update {
		os.WriteFile(golden, got, 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(got)) != strings.TrimSpace(string(want)) {
		t.Errorf("findings differ from %s (go test -update rewrites it):\n%s", golden, got)
	}
}
