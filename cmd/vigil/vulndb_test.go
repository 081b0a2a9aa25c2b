package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/vigil-edr/vigil/internal/agent"
	sensorinv "github.com/vigil-edr/vigil/internal/agent/sensor/inventory"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/inventory"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
	"github.com/vigil-edr/vigil/internal/vuln"
)

var update = flag.Bool("update", false, "rewrite the expected messages of testdata/vulndb/bad")

// fixturePkg is one installed source package the fixtures are written
// around.
type fixturePkg struct{ Name, Version string }

// fixtureData fills the templates under testdata/vulndb.
type fixtureData struct {
	P0, P1, P2, P3, P4   fixturePkg
	Codename, Other      string // this release's code name, and another one
	Eco, OtherEco, Label string // "Debian:12", "Debian:11", "Debian 12"
}

// Versions just above and just below v in dpkg order (checked with dpkg
// itself below).
func above(v string) string { return v + "+vigil1" }
func below(v string) string { return v + "~vigil1" }

// machinePackages reads this machine's packages with the agent's own
// parser and checks each source package and version against dpkg-query.
func machinePackages(t *testing.T) ([]sensorinv.Package, sensorinv.OS) {
	t.Helper()
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("not a dpkg system")
	}
	f, err := os.Open("/var/lib/dpkg/status")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	pkgs, _, err := sensorinv.ParseDpkgStatus(f)
	if err != nil {
		t.Fatal(err)
	}
	rf, err := os.Open("/etc/os-release")
	if err != nil {
		t.Skip(err)
	}
	defer rf.Close()
	osr, err := sensorinv.ParseOSRelease(rf)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("dpkg-query", "-W", "-f", `${Package}\t${Version}\t${source:Package}\t${source:Version}\t${db:Status-Status}\n`).Output()
	if err != nil {
		t.Fatal(err)
	}
	type src struct{ name, version string }
	want := map[string]src{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) == 5 && f[4] != "not-installed" && f[4] != "config-files" {
			want[f[0]+" "+f[1]] = src{f[2], f[3]}
		}
	}
	if len(pkgs) != len(want) {
		t.Errorf("the sensor read %d packages, dpkg-query lists %d", len(pkgs), len(want))
	}
	for _, p := range pkgs {
		w, ok := want[p.Name+" "+p.Version]
		sv := p.SourceVersion
		if sv == "" {
			sv = p.Version
		}
		if !ok || w.name != p.Source || w.version != sv {
			t.Errorf("%s %s: sensor source %s %s, dpkg-query %+v", p.Name, p.Version, p.Source, sv, w)
		}
	}
	return pkgs, osr
}

// pickSources chooses five source packages spread over the sorted list,
// each with one installed version.
func pickSources(t *testing.T, pkgs []sensorinv.Package) []fixturePkg {
	versions := map[string][]string{}
	for _, p := range pkgs {
		v := p.SourceVersion
		if v == "" {
			v = p.Version
		}
		if !slices.Contains(versions[p.Source], v) {
			versions[p.Source] = append(versions[p.Source], v)
		}
	}
	var names []string
	for n, vs := range versions {
		if len(vs) == 1 {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	if len(names) < 10 {
		t.Skipf("only %d source packages installed", len(names))
	}
	var out []fixturePkg
	// P0, when there is one, is a source package with a binary whose own
	// version has an epoch the source version lacks (util-linux's
	// bsdutils 1:2.38.1-5+deb12u3): matching by the binary's version
	// would miss its finding.
	for _, p := range pkgs {
		if strings.Contains(p.Version, ":") && p.SourceVersion != "" && !strings.Contains(p.SourceVersion, ":") && len(versions[p.Source]) == 1 {
			out = append(out, fixturePkg{p.Source, p.SourceVersion})
			break
		}
	}
	for i := 1; len(out) < 5; i++ {
		n := names[i*len(names)/7]
		if len(out) == 0 || n != out[0].Name {
			out = append(out, fixturePkg{n, versions[n][0]})
		}
	}
	return out
}

func dpkgLess(t *testing.T, a, b string) {
	t.Helper()
	if err := exec.Command("dpkg", "--compare-versions", a, "lt", b).Run(); err != nil {
		t.Fatalf("dpkg does not say %s < %s: %v", a, b, err)
	}
}

// renderFixtures writes the fixture files for d into dir: the tracker
// JSON, one OSV record alone and the others in a zip. It returns the
// three paths and the expected findings.
func renderFixtures(t *testing.T, d fixtureData, dir string) (tracker, single, zipped string, want []string) {
	t.Helper()
	funcs := template.FuncMap{"above": above, "below": below}
	render := func(path string) []byte {
		tm, err := template.New(filepath.Base(path)).Funcs(funcs).Option("missingkey=error").ParseFiles(path)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := tm.Execute(&b, d); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	tracker = filepath.Join(dir, "tracker.json")
	must(t, os.WriteFile(tracker, render("testdata/vulndb/tracker.json.tmpl"), 0o600))
	tmpls, _ := filepath.Glob("testdata/vulndb/osv/*.json.tmpl")
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for _, p := range tmpls {
		name := strings.TrimSuffix(filepath.Base(p), ".tmpl")
		data := render(p)
		if name == "DSA-9001-1.json" {
			single = filepath.Join(dir, name)
			must(t, os.WriteFile(single, data, 0o600))
			continue
		}
		w, err := zw.Create("osv/" + name)
		must(t, err)
		w.Write(data)
	}
	w, _ := zw.Create("README.txt")
	w.Write([]byte("not a record"))
	must(t, zw.Close())
	zipped = filepath.Join(dir, "debian-osv.zip")
	must(t, os.WriteFile(zipped, zb.Bytes(), 0o600))
	for _, line := range strings.Split(string(render("testdata/vulndb/findings.golden.tmpl")), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			want = append(want, line)
		}
	}
	return tracker, single, zipped, want
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func findingLines(fs []vuln.Finding) []string {
	var out []string
	for _, f := range fs {
		fixed := f.Fixed
		if fixed == "" {
			fixed = "-"
		}
		out = append(out, fmt.Sprintf("%s %s %s %s | %s | %s | %s | %s", f.Source, f.AdvisoryID, f.Package, f.Installed, f.Affected, fixed, f.Severity.Level, f.Why))
	}
	slices.Sort(out)
	return out
}

// stageInventory applies a snapshot of pkgs and osr for agentID through
// the agent's own chunk encoding and the store.
func stageInventory(t *testing.T, db *sqlite.DB, agentID string, osr sensorinv.OS, pkgs []sensorinv.Package, at time.Time) {
	t.Helper()
	snap := &sensorinv.Snapshot{Time: at, Have: map[string]bool{sensorinv.KindOS: true, sensorinv.KindPackage: true}, OS: osr, Packages: pkgs}
	var evs []*event.Event
	if _, _, err := sensorinv.SnapshotEvents(snap, sensorinv.NewSnapshotID(at), func(ev *event.Event) { evs = append(evs, ev) }); err != nil {
		t.Fatal(err)
	}
	applied := false
	for _, ev := range evs {
		c, ok, err := inventory.ChunkFromEvent(ev)
		if !ok || err != nil {
			t.Fatalf("chunk: %v", err)
		}
		a, err := db.AddInventoryChunk(context.Background(), agentID, c, at)
		must(t, err)
		applied = applied || a
	}
	if !applied {
		t.Fatal("snapshot not applied")
	}
}

func runVigil(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// TestVulnDBMachine: fixtures written around five source packages really
// installed here (read with the agent's dpkg parser, checked against
// dpkg-query) are imported with `vigil vulndb import`; the findings for
// this machine's whole package list are exactly the expected ones: fixed
// later, open, last_affected and listed versions are found; fixed at or
// before the installed version, never affected, undetermined, introduced
// later, other releases and ecosystems, withdrawn records and packages
// not installed are not. Upgrading a package in a new snapshot makes the
// host stale and its finding goes away.
// machineFixtures picks the packages, checks the derived versions with
// dpkg and renders the fixtures into dir.
func machineFixtures(t *testing.T, dir string) (pkgs []sensorinv.Package, osr sensorinv.OS, tracker, single, zipped string, want []string) {
	t.Helper()
	pkgs, osr = machinePackages(t)
	if osr.ID != "debian" {
		t.Skipf("the fixtures are Debian's; this is %s", osr.ID)
	}
	eco, err := vuln.HostEcosystem(&inventory.OS{ID: osr.ID, VersionID: osr.VersionID, Codename: osr.Codename})
	if err != nil {
		t.Skip(err)
	}
	ps := pickSources(t, pkgs)
	d := fixtureData{P0: ps[0], P1: ps[1], P2: ps[2], P3: ps[3], P4: ps[4], Codename: osr.Codename, Other: "bullseye",
		Eco: eco.Name, OtherEco: "Debian:11", Label: eco.Label()}
	if d.Codename == "bullseye" {
		d.Other, d.OtherEco = "bookworm", "Debian:12"
	}
	for _, p := range ps {
		dpkgLess(t, below(p.Version), p.Version)
		dpkgLess(t, p.Version, above(p.Version))
		dpkgLess(t, above(p.Version), above(above(p.Version)))
	}
	t.Logf("fixtures around %v in %s", ps, eco.Name)
	tracker, single, zipped, want = renderFixtures(t, d, dir)
	slices.Sort(want)
	return pkgs, osr, tracker, single, zipped, want
}

func TestVulnDBMachine(t *testing.T) {
	dir := t.TempDir()
	pkgs, osr, tracker, single, zipped, want := machineFixtures(t, dir)
	ps := pickSources(t, pkgs)
	data := filepath.Join(dir, "data")
	must(t, os.MkdirAll(data, 0o700))
	db, err := sqlite.Open(context.Background(), filepath.Join(data, "vigil.db"), sqlite.Options{})
	must(t, err)
	defer db.Close()
	const agentID = "agent-machine"
	stageInventory(t, db, agentID, osr, pkgs, time.Now().Add(-time.Hour).UTC())

	out, err := runVigil(t, "vulndb", "import", "--data", data, tracker, zipped, single)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	for _, s := range []string{"(debian): 5 advisories, 6 affected packages; skipped 1 not affected, 1 release sid, 1 undetermined; database generation 1",
		"(osv): 5 advisories, 5 affected packages; skipped 1 GIT range, 1 ecosystem PyPI, 1 ecosystem Ubuntu:Pro:18.04:LTS, 1 no matched ecosystem, 1 withdrawn, 1 zip member not .json; database generation 2",
		"DSA-9001-1.json (osv): 1 advisories, 1 affected packages; database generation 3", "re-evaluated 1 hosts"} {
		if !strings.Contains(out, s) {
			t.Errorf("import output lacks %q:\n%s", s, out)
		}
	}
	hf, err := db.HostFindings(context.Background(), agentID)
	must(t, err)
	got := findingLines(hf.Findings)
	t.Logf("findings:\n%s", strings.Join(got, "\n"))
	if !slices.Equal(got, want) {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.HasPrefix(hf.Evaluation.Ecosystem, "Debian:") || hf.Evaluation.Generation != 3 || hf.Evaluation.SnapshotID == "" {
		t.Errorf("state %+v", hf.Evaluation)
	}
	for _, f := range hf.Findings {
		if len(f.Binaries) == 0 || f.AdvisoryID == "DSA-9001-1" && !slices.Equal(f.Aliases, []string{"CVE-2099-0101"}) ||
			f.AdvisoryID == "DSA-9001-1" && f.Severity.Score != 9.8 || f.Summary == "" {
			t.Errorf("finding %+v", f)
		}
	}

	out, err = runVigil(t, "vulndb", "status", "--data", data, "--format", "json")
	must(t, err)
	var st vuln.Status
	must(t, json.Unmarshal([]byte(out), &st))
	if st.Generation != 3 || st.Hosts != 1 || st.Stale != 0 || st.Findings != len(want) || len(st.Sources) != 2 ||
		st.Sources[0].Source != "debian" || st.Sources[0].Advisories != 5 || st.Sources[1].Advisories != 6 ||
		st.Sources[0].LastImport == nil || st.Sources[0].LastImport.Skipped["undetermined"] != 1 {
		t.Errorf("status %s", out)
	}
	if out, err = runVigil(t, "vulndb", "status", "--data", data); err != nil || !strings.Contains(out, "hosts evaluated 1, stale 0, findings 5") {
		t.Errorf("status: %v\n%s", err, out)
	}

	// P0 upgraded past its fix: the host is stale, then clean of CVE-2099-0001.
	up := slices.Clone(pkgs)
	for i := range up {
		if up[i].Source == ps[0].Name {
			up[i].Version, up[i].SourceVersion = above(ps[0].Version), ""
		}
	}
	stageInventory(t, db, agentID, osr, up, time.Now().UTC())
	stale, err := db.StaleHosts(context.Background())
	if err != nil || !slices.Equal(stale, []string{agentID}) {
		t.Fatalf("stale after a snapshot: %v %v", stale, err)
	}
	ev := &vuln.Evaluator{Store: db, Inventories: db}
	if n, err := ev.EvaluateStale(context.Background()); n != 1 || err != nil {
		t.Fatalf("evaluate: %d %v", n, err)
	}
	hf, err = db.HostFindings(context.Background(), agentID)
	must(t, err)
	if got := findingLines(hf.Findings); len(got) != len(want)-1 || slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "CVE-2099-0001") }) {
		t.Errorf("after the upgrade:\n%s", strings.Join(got, "\n"))
	}
}

// TestVulnDBImportRejects: malformed files are refused with the file and
// the place, and nothing of them is stored.
func TestVulnDBImportRejects(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cases, _ := filepath.Glob("testdata/vulndb/bad/*")
	if len(cases) == 0 {
		t.Fatal("no bad fixtures")
	}
	for _, c := range cases {
		if strings.HasSuffix(c, ".want") {
			continue
		}
		out, err := runVigil(t, "vulndb", "import", "--data", data, c)
		if *update && err != nil {
			must(t, os.WriteFile(c+".want", []byte(strings.TrimPrefix(err.Error(), c)+"\n"), 0o600))
		}
		wantB, rerr := os.ReadFile(c + ".want")
		if rerr != nil {
			t.Fatalf("%s: %v", c, rerr)
		}
		var fe *vuln.FileError
		if err == nil || !errors.As(err, &fe) {
			t.Errorf("%s: accepted or not a FileError: %v\n%s", c, err, out)
			continue
		}
		if got, want := err.Error(), strings.TrimSpace(string(wantB)); got != c+want {
			t.Errorf("%s:\n got %s\nwant %s%s", c, got, c, want)
		}
	}
	out, err := runVigil(t, "vulndb", "status", "--data", data)
	if err != nil || !strings.Contains(out, "database generation 0") {
		t.Errorf("something was stored: %v\n%s", err, out)
	}
}

// TestVulnDBLocalAgent: the whole path on this host. The fixtures are
// imported into a running server's database, then the real inventory
// sensor of an in-process agent sends this machine's packages; the applied
// snapshot wakes the evaluator and the API serves exactly the expected
// findings.
func TestVulnDBLocalAgent(t *testing.T) {
	dir := t.TempDir()
	_, _, tracker, single, zipped, want := machineFixtures(t, dir)
	s, admin := testServer(t)
	if out, err := runVigil(t, "vulndb", "import", "--data", s.cfg.Data, tracker, zipped, single); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	acfg, err := enrolLocalAgent(context.Background(), s, "https://"+s.Addr().String())
	must(t, err)
	acfg.Sensors.Process, acfg.Sensors.AuthLog, acfg.Sensors.FIM, acfg.Sensors.Network = false, false, false, false
	acfg.HealthEvery = time.Hour
	id, err := agent.LoadIdentity(acfg.DataDir)
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	agentDone := make(chan error, 1)
	go func() { agentDone <- agent.RunHost(ctx, acfg, s.cfg.Logger, agent.HostOptions{Shared: true}) }()
	defer func() { cancel(); <-agentDone }()

	var hf vuln.HostFindings
	for deadline := time.Now().Add(30 * time.Second); ; {
		if st := api(t, s, admin, "GET", "/api/v1/hosts/"+id.AgentID+"/vulnerabilities", nil, &hf); st != 200 {
			t.Fatalf("vulnerabilities: %d", st)
		}
		if hf.Evaluation.SnapshotID != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not evaluated within 30 s of the agent starting")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := findingLines(hf.Findings); !slices.Equal(got, want) {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var fleet vuln.Fleet
	if st := api(t, s, admin, "GET", "/api/v1/vulnerabilities", nil, &fleet); st != 200 || fleet.Total != len(want) ||
		len(fleet.Hosts) != 1 || fleet.Hosts[0].AgentID != id.AgentID || fleet.Hosts[0].Hostname == "" {
		t.Errorf("fleet %d %+v", st, fleet)
	}
}
