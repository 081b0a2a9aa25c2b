package inventory

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
)

func all() map[string]bool {
	m := map[string]bool{}
	for _, k := range Kinds {
		m[k] = true
	}
	return m
}

func TestDiff(t *testing.T) {
	base := Snapshot{Have: all(),
		OS:       OS{ID: "debian", VersionID: "12", KernelRelease: "6.1.0-1"},
		Packages: []Package{{Name: "a", Version: "1.0-1", Arch: "amd64", Manager: "dpkg"}, {Name: "b", Version: "2.0", Arch: "all", Manager: "dpkg"}},
		Users:    []User{{Name: "bob", UID: 1000, GID: 1000, Home: "/home/bob", Shell: "/bin/bash"}},
		Groups:   []Group{{Name: "sudo", GID: 27, Members: []string{"alice"}}},
		Ports:    []Port{{Protocol: "tcp", LocalIP: "0.0.0.0", LocalPort: 22, PID: 1, Image: "/usr/sbin/sshd"}},
		Services: []Service{{Name: "ssh.service", State: "enabled"}},
		Modules:  []Module{{Name: "ext4", Size: 1, State: "Live"}},
	}
	cases := []struct {
		name   string
		change func(s *Snapshot)
		want   []string // EventType plus key fields, in order
	}{
		{"nothing", func(s *Snapshot) {}, nil},
		{"package upgraded, downgraded, removed, installed", func(s *Snapshot) {
			s.Packages = []Package{{Name: "a", Version: "1.0-2", Arch: "amd64", Manager: "dpkg"}, {Name: "c", Version: "1", Arch: "amd64", Manager: "dpkg"}}
		}, []string{"package_upgraded a 1.0-2", "package_removed b 2.0", "package_installed c 1"}},
		{"package downgraded", func(s *Snapshot) {
			s.Packages = []Package{{Name: "a", Version: "1.0~rc1-1", Arch: "amd64", Manager: "dpkg"}, base.Packages[1]}
		}, []string{"package_downgraded a 1.0~rc1-1"}},
		{"user shell changed, user added", func(s *Snapshot) {
			s.Users = []User{{Name: "bob", UID: 1000, GID: 1000, Home: "/home/bob", Shell: "/bin/sh"}, {Name: "eve", UID: 0, GID: 0, Home: "/", Shell: "/bin/sh"}}
		}, []string{"user_modified bob Shell 1000", "user_added eve 0"}},
		{"group member added", func(s *Snapshot) { s.Groups = []Group{{Name: "sudo", GID: 27, Members: []string{"alice", "eve"}}} },
			[]string{"group_modified sudo eve"}},
		{"group deleted", func(s *Snapshot) { s.Groups = []Group{} }, []string{"group_deleted sudo"}},
		{"port opened and closed", func(s *Snapshot) {
			s.Ports = []Port{{Protocol: "tcp", LocalIP: "0.0.0.0", LocalPort: 4444, PID: 9, Image: "/tmp/nc"}}
		},
			[]string{"listening_port_closed 22", "listening_port_opened 4444"}},
		{"service disabled and added", func(s *Snapshot) {
			s.Services = []Service{{Name: "evil.service", State: "enabled", ExecStart: "/tmp/x"}, {Name: "ssh.service", State: "disabled"}}
		}, []string{"service_added evil.service", "service_disabled ssh.service"}},
		{"module loaded", func(s *Snapshot) { s.Modules = append(s.Modules, Module{Name: "rootkit", Taint: "OE"}) }, []string{"kernel_module_loaded rootkit"}},
		{"kernel upgraded", func(s *Snapshot) { s.OS.KernelRelease = "6.1.0-2" }, []string{"os_changed 6.1.0-2"}},
		{"a kind not collected is not compared", func(s *Snapshot) { s.Users = nil; delete(s.Have, KindUser) }, nil},
	}
	keyFields := map[string][]string{"package": {"PackageName", "PackageVersion"}, "user": {"TargetUser", "ChangedFields", "Uid"},
		"group": {"Group", "AddedMembers"}, "listening": {"SourcePort"}, "service": {"ServiceName"}, "kernel": {"ModuleName"}, "os": {"KernelRelease"}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cur := base
			cur.Have = all()
			c.change(&cur)
			var got []string
			Diff(&base, &cur, TriggerScan, func(ev *event.Event) {
				et, _ := ev.Get("EventType")
				s := et
				prefix, _, _ := strings.Cut(et, "_")
				for _, f := range keyFields[prefix] {
					if v, ok := ev.Get(f); ok {
						s += " " + v
					}
				}
				if ev.Product != "linux" || !ev.HasCategory(CategoryChange) {
					t.Errorf("%s: product %q categories %v", et, ev.Product, ev.Categories)
				}
				got = append(got, s)
			})
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("got %q\nwant %q", got, c.want)
			}
		})
	}
}

// TestSnapshotChunks: a large inventory is split into chunks below the
// wire's per-event limit, every kind has a chunk, and the items survive.
func TestSnapshotChunks(t *testing.T) {
	snap := &Snapshot{Time: time.Now(), Have: all()}
	for i := range 5000 {
		snap.Packages = append(snap.Packages, Package{Name: "pkg" + strconv.Itoa(i), Version: strings.Repeat("<\"", 20), Arch: "amd64", Manager: "dpkg", Status: "installed"})
	}
	snap.Users = []User{{Name: "big", Gecos: strings.Repeat("<", MaxValue), Home: strings.Repeat("<", MaxValue), Shell: strings.Repeat("<", MaxValue)}}
	snap.Groups = []Group{{Name: "huge", Members: strings.Split(strings.Repeat("<<<<<<<,", 8000), ",")}}
	var evs []*event.Event
	n, dropped, err := SnapshotEvents(snap, "sid", func(ev *event.Event) { evs = append(evs, ev) })
	if err != nil || n != len(evs) || dropped != 1 {
		t.Fatalf("chunks %d events %d dropped %d err %v", n, len(evs), dropped, err)
	}
	kinds, packages := map[string]int{}, 0
	for i, ev := range evs {
		b, _ := json.Marshal(ev.Fields)
		if len(b) > 200<<10 {
			t.Errorf("chunk %d is %d bytes", i, len(b))
		}
		if v, _ := ev.Get("ChunkIndex"); v != strconv.Itoa(i) {
			t.Errorf("chunk %d has index %s", i, v)
		}
		if v, _ := ev.Get("ChunkCount"); v != strconv.Itoa(n) {
			t.Errorf("chunk %d has count %s", i, v)
		}
		kind, _ := ev.Get("ItemKind")
		kinds[kind]++
		items, _ := ev.Get("Items")
		var list []json.RawMessage
		if err := json.Unmarshal([]byte(items), &list); err != nil {
			t.Fatal(err)
		}
		if c, _ := ev.Get("ItemCount"); c != strconv.Itoa(len(list)) {
			t.Errorf("chunk %d: ItemCount %s, %d items", i, c, len(list))
		}
		if kind == KindPackage {
			packages += len(list)
		}
	}
	if packages != 5000 || kinds[KindPackage] < 2 || len(kinds) != len(Kinds) || kinds[KindGroup] != 1 {
		t.Errorf("packages %d, chunks by kind %v", packages, kinds)
	}
}
