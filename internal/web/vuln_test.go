package web

import (
	"context"
	"strconv"
	"testing"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/inventory"
	"github.com/vigil-edr/vigil/internal/vuln"
)

// TestVulnerabilities: a host's inventory in the real store, an imported
// advisory and an evaluation give the host's finding and the fleet
// summary; an unknown host is 404, a host without findings an empty list.
func TestVulnerabilities(t *testing.T) {
	h := newHarness(t, backends["sqlite"](t))
	ctx := context.Background()
	db := h.be.(interface {
		inventory.Store
		vuln.Store
	})
	var empty vuln.HostFindings
	h.get("/api/v1/hosts/"+h.agentID+"/vulnerabilities", "viewer", &empty)
	if empty.AgentID != h.agentID || empty.Findings == nil || len(empty.Findings) != 0 || empty.Evaluation.Generation != 0 {
		t.Fatalf("before any evaluation: %+v", empty)
	}

	items := map[string]string{
		inventory.KindOS:      `[{"id":"debian","version_id":"12"}]`,
		inventory.KindPackage: `[{"name":"libssl3","version":"3.0.11-1~deb12u2","arch":"amd64","manager":"dpkg","source":"openssl","status":"installed"}]`,
	}
	for i, k := range []string{inventory.KindOS, inventory.KindPackage} {
		ev := &event.Event{Time: h.now, Product: "linux", Categories: []string{inventory.Category}}
		ev.Add("SnapshotId", "snap-1")
		ev.Add("ChunkIndex", strconv.Itoa(i))
		ev.Add("ChunkCount", "2")
		ev.Add("ItemKind", k)
		ev.Add("Items", items[k])
		c, _, err := inventory.ChunkFromEvent(ev)
		must(t, err)
		_, err = db.AddInventoryChunk(ctx, h.agentID, c, h.now)
		must(t, err)
	}
	_, err := db.ImportAdvisories(ctx, vuln.Import{Source: vuln.SourceDebian, File: "t.json", Replace: true}, []vuln.Advisory{{
		Source: vuln.SourceDebian, ID: "CVE-2024-0727", Summary: "PKCS12 crash", Severity: vuln.Severity{Level: vuln.Unknown},
		Affected: []vuln.Affected{{Ecosystem: "Debian:12", Package: "openssl", Status: "resolved", Ranges: []vuln.Range{{Fixed: "3.0.13-1~deb12u1"}},
			Severity: &vuln.Severity{Level: vuln.Low, Source: "debian urgency"}}},
	}}, h.now)
	must(t, err)
	ev := &vuln.Evaluator{Store: db, Inventories: db}
	if n, err := ev.EvaluateStale(ctx); n != 1 || err != nil {
		t.Fatalf("evaluate: %d %v", n, err)
	}

	var hf vuln.HostFindings
	h.get("/api/v1/hosts/"+h.agentID+"/vulnerabilities", "viewer", &hf)
	if len(hf.Findings) != 1 || hf.Evaluation.SnapshotID != "snap-1" || hf.Evaluation.Generation != 1 {
		t.Fatalf("findings %+v", hf)
	}
	f := hf.Findings[0]
	if f.Package != "openssl" || f.Binaries[0] != "libssl3" || f.Fixed != "3.0.13-1~deb12u1" || f.Severity.Level != vuln.Low ||
		f.Why != "openssl 3.0.11-1~deb12u2 < fixed 3.0.13-1~deb12u1 (dpkg order) in Debian 12; Debian tracker: resolved" {
		t.Errorf("finding %+v", f)
	}
	var fleet vuln.Fleet
	h.get("/api/v1/vulnerabilities?top=5", "viewer", &fleet)
	if fleet.Total != 1 || fleet.Fixable != 1 || fleet.ByLevel[vuln.Low] != 1 || len(fleet.Hosts) != 1 || fleet.Hosts[0].Hostname != "h1" ||
		len(fleet.Advisories) != 1 || fleet.Advisories[0].AdvisoryID != "CVE-2024-0727" || fleet.Advisories[0].Hosts != 1 {
		t.Errorf("fleet %+v", fleet)
	}
	if st, _, _ := h.do("GET", "/api/v1/hosts/nobody/vulnerabilities", "viewer", nil); st != 404 {
		t.Errorf("unknown host: %d", st)
	}
	if st, _, _ := h.do("GET", "/api/v1/vulnerabilities?top=-1", "viewer", nil); st != 400 {
		t.Errorf("bad top: %d", st)
	}
}
