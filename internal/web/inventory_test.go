package web

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/inventory"
	"github.com/vigil-edr/vigil/internal/vuln"
)

// inventoryFor returns the backend's inventory store when it has one (the
// SQLite backend) and an empty one otherwise: the in-memory test backend
// keeps no inventories.
func inventoryFor(be backend) Inventory {
	if inv, ok := be.(Inventory); ok {
		return inv
	}
	return noInventories{}
}

// vulnsFor likewise returns the backend's vulnerability store, or one
// without findings.
func vulnsFor(be backend) Vulns {
	if v, ok := be.(Vulns); ok {
		return v
	}
	return noVulns{}
}

type noVulns struct{}

func (noVulns) HostFindings(_ context.Context, id string) (vuln.HostFindings, error) {
	return vuln.HostFindings{AgentID: id}, nil
}
func (noVulns) Fleet(context.Context, int) (vuln.Fleet, error) { return vuln.Fleet{}, nil }

type noInventories struct{}

func (noInventories) HostInventory(_ context.Context, id string) (inventory.Host, error) {
	return inventory.Host{AgentID: id}, nil
}

// TestHostInventory: a snapshot staged in the real store is served for its
// host; an unknown host is 404; a host without a snapshot has empty lists.
func TestHostInventory(t *testing.T) {
	h := newHarness(t, backends["sqlite"](t))
	store := h.be.(inventory.Store)
	var empty inventory.Host
	h.get("/api/v1/hosts/"+h.agentID+"/inventory", "viewer", &empty)
	if empty.AgentID != h.agentID || empty.SnapshotID != "" || empty.Packages == nil || len(empty.Packages) != 0 {
		t.Fatalf("before any snapshot: %+v", empty)
	}

	at := h.now.Add(-time.Minute)
	items := map[string]string{
		inventory.KindOS:      `[{"id":"debian","version_id":"12","kernel_release":"6.1.0-28-amd64"}]`,
		inventory.KindPackage: `[{"name":"openssl","version":"3.0.15-1~deb12u1","arch":"amd64","manager":"dpkg","source":"openssl","status":"installed"}]`,
		inventory.KindPort:    `[{"protocol":"tcp","local_ip":"0.0.0.0","local_port":22,"uid":0,"pid":612,"image":"/usr/sbin/sshd"}]`,
	}
	kinds := []string{inventory.KindOS, inventory.KindPackage, inventory.KindPort}
	for i, k := range kinds {
		ev := &event.Event{Time: at, Product: "linux", Categories: []string{inventory.Category}}
		ev.Add("SnapshotId", "snap-1")
		ev.Add("ChunkIndex", strconv.Itoa(i))
		ev.Add("ChunkCount", strconv.Itoa(len(kinds)))
		ev.Add("ItemKind", k)
		ev.Add("Items", items[k])
		c, ok, err := inventory.ChunkFromEvent(ev)
		if !ok || err != nil {
			t.Fatal(err)
		}
		if _, err := store.AddInventoryChunk(context.Background(), h.agentID, c, h.now); err != nil {
			t.Fatal(err)
		}
	}
	st, b, _ := h.do("GET", "/api/v1/hosts/"+h.agentID+"/inventory", "viewer", nil)
	var got map[string]any
	if st != 200 || json.Unmarshal(b, &got) != nil {
		t.Fatalf("%d %s", st, b)
	}
	var inv inventory.Host
	must(t, json.Unmarshal(b, &inv))
	if inv.SnapshotID != "snap-1" || !inv.Collected.Equal(at) || inv.OS == nil || inv.OS.KernelRelease != "6.1.0-28-amd64" ||
		len(inv.Packages) != 1 || inv.Packages[0].Version != "3.0.15-1~deb12u1" || len(inv.Ports) != 1 || inv.Ports[0].Image != "/usr/sbin/sshd" ||
		len(inv.Users) != 0 || got["users"] == nil {
		t.Errorf("inventory %s", b)
	}
	if st, _, _ := h.do("GET", "/api/v1/hosts/nobody/inventory", "viewer", nil); st != 404 {
		t.Errorf("unknown host: %d", st)
	}
	if st, _, _ := h.do("GET", "/api/v1/hosts/"+h.agentID+"/inventory?kind=package", "viewer", nil); st != 400 {
		t.Errorf("undeclared query parameter: %d", st)
	}
}
