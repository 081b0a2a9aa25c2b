package sqlite_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/inventory"
)

// chunkEvent is an inventory_snapshot event as the agent's sensor sends it.
func chunkEvent(t *testing.T, id string, at time.Time, index, count int, kind string, items ...any) *event.Event {
	t.Helper()
	b, err := json.Marshal(items)
	if err != nil {
		t.Fatal(err)
	}
	ev := &event.Event{Time: at, Product: "linux", Categories: []string{inventory.Category}}
	ev.Add("EventType", "inventory_snapshot")
	ev.Add("SnapshotId", id)
	ev.Add("ChunkIndex", strconv.Itoa(index))
	ev.Add("ChunkCount", strconv.Itoa(count))
	ev.Add("ItemKind", kind)
	ev.Add("ItemCount", strconv.Itoa(len(items)))
	ev.Add("Items", string(b))
	return ev
}

func chunk(t *testing.T, ev *event.Event) inventory.Chunk {
	t.Helper()
	c, ok, err := inventory.ChunkFromEvent(ev)
	if !ok || err != nil {
		t.Fatalf("chunk: ok %v err %v", ok, err)
	}
	return c
}

func TestInventorySnapshots(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "v.db"))
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	pkg := func(name, version string) map[string]any {
		return map[string]any{"name": name, "version": version, "arch": "amd64", "manager": "dpkg", "status": "installed", "unknown_field": 1}
	}
	snap1 := []inventory.Chunk{
		chunk(t, chunkEvent(t, "s1", t0, 0, 3, inventory.KindOS, map[string]any{"id": "debian", "version_id": "12", "kernel_release": "6.1.0"})),
		chunk(t, chunkEvent(t, "s1", t0, 1, 3, inventory.KindPackage, pkg("openssl", "3.0.11-1"), pkg("bash", "5.2-2"))),
		chunk(t, chunkEvent(t, "s1", t0, 2, 3, inventory.KindUser, map[string]any{"name": "root", "uid": 0, "gid": 0, "home": "/root", "shell": "/bin/bash"})),
	}
	// Out of order and with a duplicate: only the last missing chunk applies.
	for i, c := range []inventory.Chunk{snap1[2], snap1[0], snap1[2], snap1[1], snap1[1]} {
		applied, err := db.AddInventoryChunk(ctx, "a1", c, t0.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if applied != (i == 3) {
			t.Errorf("step %d (chunk %d): applied %v", i, c.Index, applied)
		}
	}
	h, err := db.HostInventory(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	if h.SnapshotID != "s1" || !h.Collected.Equal(t0) || h.OS == nil || h.OS.KernelRelease != "6.1.0" ||
		len(h.Packages) != 2 || h.Packages[0].Name != "bash" || len(h.Users) != 1 {
		t.Fatalf("inventory %+v", h)
	}

	// A newer snapshot with users only replaces the users and keeps the rest.
	t1 := t0.Add(12 * time.Hour)
	applied, err := db.AddInventoryChunk(ctx, "a1", chunk(t, chunkEvent(t, "s2", t1, 0, 1, inventory.KindUser,
		map[string]any{"name": "root", "uid": 0, "gid": 0, "home": "/root", "shell": "/bin/bash"},
		map[string]any{"name": "eve", "uid": 0, "gid": 0, "home": "/", "shell": "/bin/sh"})), t1)
	if err != nil || !applied {
		t.Fatalf("s2: applied %v err %v", applied, err)
	}
	// An older snapshot arriving late is ignored.
	applied, err = db.AddInventoryChunk(ctx, "a1", chunk(t, chunkEvent(t, "s0", t0.Add(-time.Hour), 0, 1, inventory.KindUser)), t1)
	if err != nil || applied {
		t.Fatalf("s0: applied %v err %v", applied, err)
	}
	h, _ = db.HostInventory(ctx, "a1")
	if h.SnapshotID != "s2" || len(h.Users) != 2 || h.Users[0].Name != "eve" || len(h.Packages) != 2 {
		t.Fatalf("after s2: %+v", h)
	}
	// Another host is unaffected; a host without inventory is empty.
	if h, err := db.HostInventory(ctx, "nobody"); err != nil || h.SnapshotID != "" || len(h.Packages) != 0 || h.AgentID != "nobody" {
		t.Fatalf("empty host %+v %v", h, err)
	}
}

// TestInventoryConcurrentChunks: chunks staged from several goroutines at
// once complete the snapshot exactly once.
func TestInventoryConcurrentChunks(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "v.db"))
	at := time.Now().UTC()
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied := 0
	for i := range n {
		for range 2 { // every chunk twice
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := chunk(t, chunkEvent(t, "sx", at, i, n, inventory.KindModule, map[string]any{"name": "m" + strconv.Itoa(i), "size": 1, "state": "Live"}))
				ok, err := db.AddInventoryChunk(ctx, "a1", c, at)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					applied++
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	h, _ := db.HostInventory(ctx, "a1")
	if applied != 1 || len(h.Modules) != n {
		t.Fatalf("applied %d times, %d modules", applied, len(h.Modules))
	}
}
