package web

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/sca"
)

// scaFor returns the backend's SCA store when it has one (SQLite) and an
// empty one otherwise.
func scaFor(be backend) SCA {
	if s, ok := be.(SCA); ok {
		return s
	}
	return noSCA{}
}

type noSCA struct{}

func (noSCA) HostSCA(_ context.Context, id string, _ int) (sca.Host, error) {
	return sca.Host{AgentID: id}, nil
}
func (noSCA) FleetSCA(context.Context, int) (sca.Fleet, error) { return sca.Fleet{}, nil }

// TestSCA: results stored in the real store are served per host and for
// the fleet; unknown hosts are 404; bad query values are 400.
func TestSCA(t *testing.T) {
	h := newHarness(t, backends["sqlite"](t))
	store := h.be.(sca.Store)
	ctx := context.Background()
	var empty sca.Host
	h.get("/api/v1/hosts/"+h.agentID+"/sca", "viewer", &empty)
	if empty.AgentID != h.agentID || empty.Policies == nil || len(empty.Policies) != 0 {
		t.Fatalf("before any scan: %+v", empty)
	}
	at := h.now.Add(-time.Minute)
	must(t, store.AddSCAResults(ctx, h.agentID, []sca.Result{
		{PolicyID: "vigil_debian12", CheckID: 90001, ScanID: "s1", ScannedAt: at, Title: "SSH: root login is disabled", Status: "failed",
			Reason: "no line matches", Remediation: "Set PermitRootLogin no", Compliance: map[string][]string{"nis2": {"21(2)(i)"}}},
		{PolicyID: "vigil_debian12", CheckID: 90002, ScanID: "s1", ScannedAt: at, Title: "t2", Status: "passed", Reason: "ok"},
	}))
	must(t, store.AddSCASummary(ctx, h.agentID, sca.Summary{PolicyID: "vigil_debian12", PolicyName: "Vigil baseline", ScanID: "s1",
		ScannedAt: at, Passed: 1, Failed: 1, Total: 2, Score: 50, Applicable: true}))

	st, b, _ := h.do("GET", "/api/v1/hosts/"+h.agentID+"/sca?history=5", "viewer", nil)
	var got sca.Host
	if st != 200 || json.Unmarshal(b, &got) != nil {
		t.Fatalf("%d %s", st, b)
	}
	if len(got.Policies) != 1 || got.Policies[0].Score != 50 || len(got.Policies[0].Results) != 2 ||
		got.Policies[0].Results[0].Remediation != "Set PermitRootLogin no" || len(got.Policies[0].History) != 1 {
		t.Errorf("host sca %s", b)
	}
	var fleet sca.Fleet
	h.get("/api/v1/sca", "viewer", &fleet)
	if len(fleet.Hosts) != 1 || fleet.Hosts[0].AgentID != h.agentID || len(fleet.Checks) != 1 || fleet.Checks[0].CheckID != 90001 {
		t.Errorf("fleet %+v", fleet)
	}
	for path, want := range map[string]int{
		"/api/v1/hosts/nobody/sca":                         404,
		"/api/v1/hosts/" + h.agentID + "/sca?history=5000": 400,
		"/api/v1/hosts/" + h.agentID + "/sca?history=x":    400,
		"/api/v1/sca?limit=0":                              400,
		"/api/v1/sca?policy=x":                             400,
	} {
		if st, b, _ := h.do("GET", path, "viewer", nil); st != want {
			t.Errorf("%s: %d %s, want %d", path, st, b, want)
		}
	}
	if st, _, _ := h.do("GET", "/api/v1/sca", "", nil); st != 401 {
		t.Errorf("anonymous: %d", st)
	}
}
