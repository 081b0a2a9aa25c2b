package inventory

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
)

func chunkEvent(id string, at time.Time, index, count, kind, items string) *event.Event {
	ev := &event.Event{Time: at, Product: "linux", Categories: []string{Category}}
	ev.Add("SnapshotId", id)
	ev.Add("ChunkIndex", index)
	ev.Add("ChunkCount", count)
	ev.Add("ItemKind", kind)
	ev.Add("Items", items)
	return ev
}

func TestChunkFromEvent(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	c, ok, err := ChunkFromEvent(chunkEvent("18ed-ab", at, "1", "2", KindPort,
		`[{"protocol":"tcp","local_ip":"0.0.0.0","local_port":22,"uid":0,"pid":1,"image":"/usr/sbin/sshd","extra":true}]`))
	if !ok || err != nil || c.Index != 1 || c.Count != 2 || len(c.Items) != 1 || c.Items[0].Name != "tcp/0.0.0.0/22" ||
		string(c.Items[0].Data) != `{"protocol":"tcp","local_ip":"0.0.0.0","local_port":22,"uid":0,"pid":1,"image":"/usr/sbin/sshd"}` {
		t.Fatalf("chunk %+v ok %v err %v", c, ok, err)
	}
	if _, ok, _ := ChunkFromEvent(&event.Event{Categories: []string{"process_creation"}}); ok {
		t.Error("a process event is a chunk")
	}
	for name, ev := range map[string]*event.Event{
		"index beyond count": chunkEvent("s", at, "3", "3", KindUser, `[]`),
		"negative index":     chunkEvent("s", at, "-1", "3", KindUser, `[]`),
		"too many chunks":    chunkEvent("s", at, "0", "10001", KindUser, `[]`),
		"bad id":             chunkEvent("s/../x", at, "0", "1", KindUser, `[]`),
		"no id":              chunkEvent("", at, "0", "1", KindUser, `[]`),
		"unknown kind":       chunkEvent("s", at, "0", "1", "secrets", `[{"name":"x"}]`),
		"item without name":  chunkEvent("s", at, "0", "1", KindPackage, `[{"version":"1"}]`),
		"item not an object": chunkEvent("s", at, "0", "1", KindPackage, `["openssl"]`),
		"items not an array": chunkEvent("s", at, "0", "1", KindPackage, `{"name":"x"}`),
		"two os items":       chunkEvent("s", at, "0", "1", KindOS, `[{},{}]`),
		"wrong type":         chunkEvent("s", at, "0", "1", KindUser, `[{"name":"x","uid":-1}]`),
		"no time":            chunkEvent("s", time.Time{}, "0", "1", KindUser, `[]`),
	} {
		if _, ok, err := ChunkFromEvent(ev); !ok || err == nil {
			t.Errorf("%s: ok %v err %v", name, ok, err)
		}
	}
}

// FuzzChunkFromEvent: the Items of a chunk come from an agent. Whatever
// they hold, a chunk that is accepted has canonical items that decode back
// into a Host.
func FuzzChunkFromEvent(f *testing.F) {
	f.Add("0", "1", KindPackage, `[{"name":"bash","version":"5.2-2","arch":"amd64","manager":"dpkg","status":"installed"}]`)
	f.Add("0", "2", KindGroup, `[{"name":"sudo","gid":27,"members":["bob"]}]`)
	f.Add("0", "1", KindOS, `[{"id":"debian"}]`)
	f.Fuzz(func(t *testing.T, index, count, kind, items string) {
		c, ok, err := ChunkFromEvent(chunkEvent("s1", time.Unix(1, 0), index, count, kind, items))
		if !ok || err != nil {
			return
		}
		var h Host
		for _, it := range c.Items {
			if !json.Valid(it.Data) || it.Name == "" {
				t.Fatalf("item %+v", it)
			}
			if err := h.Add(it); err != nil {
				t.Fatalf("canonical item does not decode: %v", err)
			}
		}
	})
}
