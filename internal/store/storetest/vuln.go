package storetest

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/inventory"
	"github.com/vigil-edr/vigil/internal/vuln"
)

// VulnBackend is a backend that also keeps inventories and the
// vulnerability database; the Vuln tests run only on those.
type VulnBackend interface {
	Backend
	inventory.Store
	vuln.Store
}

func osvAdv(id, pkg, fixed string, aliases ...string) vuln.Advisory {
	return vuln.Advisory{Source: vuln.SourceOSV, ID: id, Aliases: aliases, Summary: id + " summary", Modified: t0,
		Severity: vuln.Severity{Level: vuln.High, Score: 7.5, Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", Source: "CVSS_V3"},
		Affected: []vuln.Affected{{Ecosystem: "Debian:12", Package: pkg, Ranges: []vuln.Range{{Fixed: fixed}}, Versions: []string{"0.9-1"}}}}
}

// stageHost applies a one-chunk package snapshot (plus the OS) for agent.
func stageHost(t *testing.T, b VulnBackend, agent, snap string, at time.Time, pkgs string) {
	t.Helper()
	for i, k := range []string{inventory.KindOS, inventory.KindPackage} {
		items := `[{"id":"debian","version_id":"12"}]`
		if k == inventory.KindPackage {
			items = pkgs
		}
		ev := &event.Event{Time: at, Product: "linux", Categories: []string{inventory.Category}}
		ev.Add("SnapshotId", snap)
		ev.Add("ChunkIndex", strconv.Itoa(i))
		ev.Add("ChunkCount", "2")
		ev.Add("ItemKind", k)
		ev.Add("Items", items)
		c, _, err := inventory.ChunkFromEvent(ev)
		must(t, err)
		_, err = b.AddInventoryChunk(ctx(t), agent, c, at)
		must(t, err)
	}
}

var vulnTests = []test{
	{"ImportAndCandidates", func(t *testing.T, b Backend) {
		vb := b.(VulnBackend)
		gen, err := vb.Generation(ctx(t))
		if err != nil || gen != 0 {
			t.Fatalf("empty generation %d %v", gen, err)
		}
		r, err := vb.ImportAdvisories(ctx(t), vuln.Import{Source: vuln.SourceOSV, File: "a.zip", SHA256: "aa", Skipped: map[string]int{"withdrawn": 2}},
			[]vuln.Advisory{osvAdv("DSA-1-1", "openssl", "3.0.13-1", "CVE-1"), osvAdv("DSA-2-1", "zlib", "1.3-1")}, t0)
		must(t, err)
		if r.Advisories != 2 || r.Affected != 2 || r.Generation != 1 {
			t.Fatalf("import %+v", r)
		}
		cs, gen, err := vb.Candidates(ctx(t), "Debian:12", []string{"openssl", "absent"})
		must(t, err)
		if gen != 1 || len(cs) != 1 {
			t.Fatalf("candidates %d %+v", gen, cs)
		}
		a, af := cs[0].Advisory, cs[0].Affected
		if a.ID != "DSA-1-1" || a.Source != vuln.SourceOSV || !slices.Equal(a.Aliases, []string{"CVE-1"}) || a.Summary != "DSA-1-1 summary" ||
			!a.Modified.Equal(t0) || a.Severity.Score != 7.5 || a.Severity.Level != vuln.High ||
			af.Ecosystem != "Debian:12" || af.Package != "openssl" || len(af.Ranges) != 1 || af.Ranges[0].Fixed != "3.0.13-1" || !slices.Equal(af.Versions, []string{"0.9-1"}) {
			t.Errorf("candidate %+v %+v", a, af)
		}
		if cs, _, _ := vb.Candidates(ctx(t), "Debian:11", []string{"openssl"}); len(cs) != 0 {
			t.Errorf("other ecosystem: %+v", cs)
		}
		// Upsert: the same id replaces its affected entries; others stay.
		up := osvAdv("DSA-1-1", "openssl", "3.0.14-1")
		up.Affected = append(up.Affected, vuln.Affected{Ecosystem: "Debian:12", Package: "libssl-extra", Ranges: []vuln.Range{{}}})
		_, err = vb.ImportAdvisories(ctx(t), vuln.Import{Source: vuln.SourceOSV, File: "DSA-1-1.json"}, []vuln.Advisory{up}, t0.Add(time.Hour))
		must(t, err)
		cs, gen, _ = vb.Candidates(ctx(t), "Debian:12", []string{"openssl", "zlib", "libssl-extra"})
		if gen != 2 || len(cs) != 3 {
			t.Fatalf("after upsert %d: %+v", gen, cs)
		}
		for _, c := range cs {
			if c.Affected.Package == "openssl" && c.Affected.Ranges[0].Fixed != "3.0.14-1" || c.Advisory.ID == "DSA-1-1" && len(c.Advisory.Aliases) != 0 {
				t.Errorf("not replaced: %+v %+v", c.Advisory, c.Affected)
			}
		}
		// A replacing source drops its own earlier advisories only.
		deb := func(id string) vuln.Advisory {
			return vuln.Advisory{Source: vuln.SourceDebian, ID: id, Severity: vuln.Severity{Level: vuln.Unknown},
				Affected: []vuln.Affected{{Ecosystem: "Debian:12", Package: "openssl", Status: "open", Ranges: []vuln.Range{{}},
					Severity: &vuln.Severity{Level: vuln.Negligible, Source: "debian urgency"}}}}
		}
		for _, id := range []string{"CVE-A", "CVE-B"} {
			_, err = vb.ImportAdvisories(ctx(t), vuln.Import{Source: vuln.SourceDebian, File: "tracker.json", Replace: true}, []vuln.Advisory{deb(id)}, t0)
			must(t, err)
		}
		cs, _, _ = vb.Candidates(ctx(t), "Debian:12", []string{"openssl"})
		var got []string
		for _, c := range cs {
			got = append(got, c.Advisory.Source+"/"+c.Advisory.ID)
			if c.Advisory.Source == vuln.SourceDebian && (c.Affected.Status != "open" || c.Affected.Severity == nil || c.Affected.Severity.Level != vuln.Negligible) {
				t.Errorf("debian entry %+v", c.Affected)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, []string{"debian/CVE-B", "osv/DSA-1-1"}) {
			t.Errorf("after replacing the tracker: %v", got)
		}
		st, err := vb.VulnStatus(ctx(t))
		must(t, err)
		if st.Generation != 4 || len(st.Sources) != 2 || st.Sources[0].Source != "debian" || st.Sources[0].Advisories != 1 ||
			st.Sources[1].Advisories != 2 || st.Sources[1].Affected != 3 || st.Sources[1].Ecosystems["Debian:12"] != 3 ||
			st.Sources[1].LastImport == nil || st.Sources[1].LastImport.File != "DSA-1-1.json" || !st.Sources[1].LastImport.At.Equal(t0.Add(time.Hour)) {
			t.Errorf("status %+v", st)
		}
	}},
	{"FindingsAndStaleness", func(t *testing.T, b Backend) {
		vb := b.(VulnBackend)
		stageHost(t, vb, "a1", "s1", t0, `[{"name":"libssl3","version":"3.0.11-1","arch":"amd64","manager":"dpkg","source":"openssl","status":"installed"}]`)
		stageHost(t, vb, "a2", "s1", t0, `[]`)
		stale, err := vb.StaleHosts(ctx(t))
		must(t, err)
		if !slices.Equal(stale, []string{"a1", "a2"}) {
			t.Fatalf("never evaluated: %v", stale)
		}
		ev := &vuln.Evaluator{Store: vb, Inventories: vb, Now: func() time.Time { return t0 }}
		if n, err := ev.EvaluateStale(ctx(t)); n != 2 || err != nil {
			t.Fatalf("evaluate: %d %v", n, err)
		}
		if stale, _ := vb.StaleHosts(ctx(t)); len(stale) != 0 {
			t.Errorf("stale after evaluating: %v", stale)
		}
		_, err = vb.ImportAdvisories(ctx(t), vuln.Import{Source: vuln.SourceOSV, File: "x"}, []vuln.Advisory{osvAdv("DSA-1-1", "openssl", "3.0.13-1")}, t0)
		must(t, err)
		if stale, _ := vb.StaleHosts(ctx(t)); !slices.Equal(stale, []string{"a1", "a2"}) {
			t.Errorf("an import makes every host stale: %v", stale)
		}
		ev.EvaluateStale(ctx(t))
		hf, err := vb.HostFindings(ctx(t), "a1")
		must(t, err)
		if len(hf.Findings) != 1 || hf.Findings[0].Fixed != "3.0.13-1" || !slices.Equal(hf.Findings[0].Binaries, []string{"libssl3"}) ||
			hf.Evaluation.SnapshotID != "s1" || hf.Evaluation.Generation != 1 || hf.Evaluation.Ecosystem != "Debian:12" || !hf.Evaluation.EvaluatedAt.Equal(t0) {
			t.Errorf("a1 %+v", hf)
		}
		stageHost(t, vb, "a1", "s2", t0.Add(time.Minute), `[{"name":"libssl3","version":"3.0.13-1","arch":"amd64","manager":"dpkg","source":"openssl","status":"installed"}]`)
		if stale, _ := vb.StaleHosts(ctx(t)); !slices.Equal(stale, []string{"a1"}) {
			t.Errorf("a new snapshot makes its host stale: %v", stale)
		}
		must(t, vb.ReplaceFindings(ctx(t), "a2", vuln.Evaluation{SnapshotID: "s1", Generation: 1, EvaluatedAt: t0, Ecosystem: "Debian:12"}, []vuln.Finding{
			{Source: "osv", AdvisoryID: "X-1", Package: "p", Installed: "1", Severity: vuln.Severity{Level: vuln.Critical}, Fixed: "2"},
			{Source: "osv", AdvisoryID: "DSA-1-1", Package: "openssl", Installed: "1", Severity: vuln.Severity{Level: vuln.High}},
		}))
		hf, _ = vb.HostFindings(ctx(t), "a2")
		if len(hf.Findings) != 2 || hf.Findings[0].AdvisoryID != "X-1" {
			t.Errorf("a2 keeps the given order: %+v", hf.Findings)
		}
		f, err := vb.Fleet(ctx(t), 1)
		must(t, err)
		if f.Total != 3 || f.Fixable != 2 || f.ByLevel[vuln.Critical] != 1 || f.ByLevel[vuln.High] != 2 || len(f.Hosts) != 2 ||
			f.Hosts[0].AgentID != "a2" || f.Hosts[0].Total != 2 || f.Hosts[1].Total != 1 ||
			len(f.Advisories) != 1 || f.Advisories[0].AdvisoryID != "DSA-1-1" || f.Advisories[0].Hosts != 2 {
			t.Errorf("fleet %+v", f)
		}
		if hf, err := vb.HostFindings(ctx(t), "nobody"); err != nil || len(hf.Findings) != 0 || !hf.Evaluation.EvaluatedAt.IsZero() {
			t.Errorf("unknown host: %+v %v", hf, err)
		}
	}},
}
