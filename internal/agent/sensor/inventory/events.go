package inventory

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
)

// Product is the Sigma product of every event the sensor sends.
const Product = "linux"

// Categories. A change event has its kind's category and "inventory_change";
// snapshot chunks have "inventory_snapshot".
const (
	CategorySnapshot = "inventory_snapshot"
	CategoryChange   = "inventory_change"
)

// Triggers, the values of the Trigger field of change events: what made the
// sensor compare.
const (
	TriggerStart  = "start"  // the first collection, against the state saved before a restart
	TriggerScan   = "scan"   // the periodic comparison (Options.DiffEvery)
	TriggerWatch  = "watch"  // a trigger file changed
	TriggerUevent = "uevent" // the kernel announced a module load or unload
)

// ChunkBytes bounds the JSON-escaped Items value of one snapshot chunk, so
// a chunk stays well below the wire's 256 KiB per event.
const ChunkBytes = 160 << 10

var changeCats = map[string][]string{}

func init() {
	for _, k := range Kinds {
		changeCats[k] = []string{k + "_change", CategoryChange}
	}
}

var snapshotCats = []string{CategorySnapshot}

// newEvent starts a change event of kind with its EventType.
func newEvent(kind, eventType, trigger string, at time.Time) *event.Event {
	ev := &event.Event{Time: at, Product: Product, Categories: changeCats[kind]}
	ev.Add("EventType", eventType)
	ev.Add("Trigger", trigger)
	return ev
}

func u32(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// packageKeys names each package by manager, name and architecture; when a
// manager holds several versions of one (rpm kernels), by version too.
func packageKeys(ps []Package) map[string]Package {
	n := make(map[string]int, len(ps))
	for _, p := range ps {
		n[p.Manager+"/"+p.Name+"/"+p.Arch]++
	}
	out := make(map[string]Package, len(ps))
	for _, p := range ps {
		k := p.Manager + "/" + p.Name + "/" + p.Arch
		if n[k] > 1 {
			k += "/" + p.Version
		}
		out[k] = p
	}
	return out
}

func byKey[T any](items []T, key func(T) string) map[string]T {
	out := make(map[string]T, len(items))
	for _, it := range items {
		out[key(it)] = it
	}
	return out
}

func portKey(p Port) string {
	return p.Protocol + "/" + p.LocalIP + "/" + strconv.Itoa(int(p.LocalPort))
}

// sortedKeys returns m's keys in order, so events come out deterministic.
func sortedKeys[T any](m map[string]T) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Diff compares two collections and calls emit with one event per change,
// kind by kind in the order of Kinds, items in key order. Kinds that either
// collection lacks (a collection that failed) are not compared. It returns
// the number of events.
func Diff(prev, cur *Snapshot, trigger string, emit func(*event.Event)) int {
	n := 0
	out := func(ev *event.Event) { n++; emit(ev) }
	at := cur.Time
	both := func(k string) bool { return prev.Have[k] && cur.Have[k] }
	if both(KindOS) {
		diffOS(prev.OS, cur.OS, trigger, at, out)
	}
	if both(KindPackage) {
		diffMaps(packageKeys(prev.Packages), packageKeys(cur.Packages), func(old, now *Package) {
			var ev *event.Event
			p := now
			switch {
			case old == nil:
				ev = newEvent(KindPackage, "package_installed", trigger, at)
				ev.Add("Action", "installed")
			case now == nil:
				p = old
				ev = newEvent(KindPackage, "package_removed", trigger, at)
				ev.Add("Action", "removed")
			case old.Version == now.Version:
				return
			default:
				action := "upgraded"
				if compareVersions(now.Manager, now.Version, old.Version) < 0 {
					action = "downgraded"
				}
				ev = newEvent(KindPackage, "package_"+action, trigger, at)
				ev.Add("Action", action)
			}
			addPackage(ev, p)
			if old != nil && now != nil {
				ev.Add("PackagePreviousVersion", old.Version)
			}
			out(ev)
		})
	}
	if both(KindUser) {
		key := func(u User) string { return u.Name }
		diffMaps(byKey(prev.Users, key), byKey(cur.Users, key), func(old, now *User) { diffUser(old, now, trigger, at, out) })
	}
	if both(KindGroup) {
		key := func(g Group) string { return g.Name }
		diffMaps(byKey(prev.Groups, key), byKey(cur.Groups, key), func(old, now *Group) { diffGroup(old, now, trigger, at, out) })
	}
	if both(KindPort) {
		diffMaps(byKey(prev.Ports, portKey), byKey(cur.Ports, portKey), func(old, now *Port) {
			p, et := now, "listening_port_opened"
			switch {
			case old != nil && now != nil:
				return
			case now == nil:
				p, et = old, "listening_port_closed"
			}
			ev := newEvent(KindPort, et, trigger, at)
			ev.Add("Action", strings.TrimPrefix(et, "listening_port_"))
			addPort(ev, p)
			out(ev)
		})
	}
	if both(KindService) {
		key := func(s Service) string { return s.Name }
		diffMaps(byKey(prev.Services, key), byKey(cur.Services, key), func(old, now *Service) {
			s, action := now, ""
			switch {
			case old == nil:
				action = "added"
			case now == nil:
				s, action = old, "removed"
			case old.State != now.State:
				action = now.State // enabled, disabled, masked
			default:
				return
			}
			ev := newEvent(KindService, "service_"+action, trigger, at)
			ev.Add("Action", action)
			addService(ev, s)
			if old != nil && now != nil {
				ev.Add("PreviousServiceState", old.State)
			}
			out(ev)
		})
	}
	if both(KindModule) {
		key := func(m Module) string { return m.Name }
		diffMaps(byKey(prev.Modules, key), byKey(cur.Modules, key), func(old, now *Module) {
			m, et := now, "kernel_module_loaded"
			switch {
			case old != nil && now != nil:
				return
			case now == nil:
				m, et = old, "kernel_module_unloaded"
			}
			ev := newEvent(KindModule, et, trigger, at)
			ev.Add("Action", strings.TrimPrefix(et, "kernel_module_"))
			addModule(ev, m)
			out(ev)
		})
	}
	return n
}

// diffMaps calls f(old, new) for every key of either map, in key order;
// one side is nil for an added or removed item.
func diffMaps[T any](prev, cur map[string]T, f func(old, now *T)) {
	keys := sortedKeys(prev)
	for k := range cur {
		if _, ok := prev[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		var po, pn *T
		if v, ok := prev[k]; ok {
			po = &v
		}
		if v, ok := cur[k]; ok {
			pn = &v
		}
		f(po, pn)
	}
}

func diffOS(old, now OS, trigger string, at time.Time, out func(*event.Event)) {
	if old.KernelRelease == now.KernelRelease && old.KernelVersion == now.KernelVersion &&
		old.ID == now.ID && old.VersionID == now.VersionID && old.PrettyName == now.PrettyName {
		return
	}
	ev := newEvent(KindOS, "os_changed", trigger, at)
	ev.Add("Action", "changed")
	addOS(ev, &now)
	ev.Add("PreviousOsVersionId", old.VersionID)
	ev.Add("PreviousOsPrettyName", old.PrettyName)
	ev.Add("PreviousKernelRelease", old.KernelRelease)
	ev.Add("PreviousKernelVersion", old.KernelVersion)
	out(ev)
}

func diffUser(old, now *User, trigger string, at time.Time, out func(*event.Event)) {
	var ev *event.Event
	switch {
	case old == nil:
		ev = newEvent(KindUser, "user_added", trigger, at)
		ev.Add("Action", "added")
		addUser(ev, now)
	case now == nil:
		ev = newEvent(KindUser, "user_deleted", trigger, at)
		ev.Add("Action", "deleted")
		addUser(ev, old)
	default:
		var changed []string
		prevs := [][2]string{}
		cmp := func(name, a, b string) {
			if a != b {
				changed = append(changed, name)
				prevs = append(prevs, [2]string{"Previous" + name, a})
			}
		}
		cmp("Uid", u32(old.UID), u32(now.UID))
		cmp("Gid", u32(old.GID), u32(now.GID))
		cmp("Gecos", old.Gecos, now.Gecos)
		cmp("Home", old.Home, now.Home)
		cmp("Shell", old.Shell, now.Shell)
		if len(changed) == 0 {
			return
		}
		ev = newEvent(KindUser, "user_modified", trigger, at)
		ev.Add("Action", "modified")
		addUser(ev, now)
		ev.Add("ChangedFields", strings.Join(changed, ","))
		for _, p := range prevs {
			ev.Add(p[0], p[1])
		}
	}
	out(ev)
}

func diffGroup(old, now *Group, trigger string, at time.Time, out func(*event.Event)) {
	var ev *event.Event
	switch {
	case old == nil:
		ev = newEvent(KindGroup, "group_added", trigger, at)
		ev.Add("Action", "added")
		addGroup(ev, now)
	case now == nil:
		ev = newEvent(KindGroup, "group_deleted", trigger, at)
		ev.Add("Action", "deleted")
		addGroup(ev, old)
	default:
		added, removed := setDiff(old.Members, now.Members)
		if old.GID == now.GID && len(added) == 0 && len(removed) == 0 {
			return
		}
		ev = newEvent(KindGroup, "group_modified", trigger, at)
		ev.Add("Action", "modified")
		addGroup(ev, now)
		if old.GID != now.GID {
			ev.Add("PreviousGid", u32(old.GID))
		}
		ev.Add("PreviousMembers", strings.Join(old.Members, ","))
		if len(added) > 0 {
			ev.Add("AddedMembers", strings.Join(added, ","))
		}
		if len(removed) > 0 {
			ev.Add("RemovedMembers", strings.Join(removed, ","))
		}
	}
	out(ev)
}

// setDiff returns what b has that a lacks, and what a has that b lacks.
func setDiff(a, b []string) (added, removed []string) {
	for _, x := range b {
		if !slices.Contains(a, x) {
			added = append(added, x)
		}
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			removed = append(removed, x)
		}
	}
	return added, removed
}

func addOS(ev *event.Event, o *OS) {
	ev.Add("OsName", o.Name)
	ev.Add("OsId", o.ID)
	ev.Add("OsVersionId", o.VersionID)
	ev.Add("OsPrettyName", o.PrettyName)
	ev.Add("KernelRelease", o.KernelRelease)
	ev.Add("KernelVersion", o.KernelVersion)
	ev.Add("Machine", o.Machine)
}

func addPackage(ev *event.Event, p *Package) {
	ev.Add("PackageName", p.Name)
	ev.Add("PackageVersion", p.Version)
	ev.Add("PackageArch", p.Arch)
	ev.Add("PackageManager", p.Manager)
	ev.Add("PackageSource", p.Source)
	if p.SourceVersion != "" {
		ev.Add("PackageSourceVersion", p.SourceVersion)
	}
	ev.Add("PackageStatus", p.Status)
}

// addUser uses the field names of the authentication sensor's user events
// (internal/hunt/syslog): TargetUser, Uid, Gid, Home, Shell.
func addUser(ev *event.Event, u *User) {
	ev.Add("TargetUser", u.Name)
	ev.Add("Uid", u32(u.UID))
	ev.Add("Gid", u32(u.GID))
	ev.Add("Gecos", u.Gecos)
	ev.Add("Home", u.Home)
	ev.Add("Shell", u.Shell)
}

func addGroup(ev *event.Event, g *Group) {
	ev.Add("Group", g.Name)
	ev.Add("Gid", u32(g.GID))
	ev.Add("Members", strings.Join(g.Members, ","))
}

func addPort(ev *event.Event, p *Port) {
	ev.Add("Protocol", p.Protocol)
	ev.Add("SourceIp", p.LocalIP)
	ev.Add("SourcePort", strconv.Itoa(int(p.LocalPort)))
	ev.Add("UserId", u32(p.UID))
	if p.User != "" {
		ev.Add("User", p.User)
	}
	if p.PID != 0 {
		ev.Add("ProcessId", strconv.Itoa(p.PID))
		ev.Add("Image", p.Image)
		ev.Add("CommandLine", p.CommandLine)
	}
}

func addService(ev *event.Event, s *Service) {
	ev.Add("ServiceName", s.Name)
	ev.Add("ServiceState", s.State)
	ev.Add("ServiceRunning", strconv.FormatBool(s.Running))
	if s.Path != "" {
		ev.Add("UnitPath", s.Path)
	}
	if s.ExecStart != "" {
		ev.Add("ImagePath", s.ExecStart)
	}
}

func addModule(ev *event.Event, m *Module) {
	ev.Add("ModuleName", m.Name)
	ev.Add("ModuleSize", strconv.FormatUint(m.Size, 10))
	ev.Add("ModuleState", m.State)
	if m.Taint != "" {
		ev.Add("ModuleTaint", m.Taint)
	}
	if len(m.Deps) > 0 {
		ev.Add("ModuleUsedBy", strings.Join(m.Deps, ","))
	}
}

// NewSnapshotID returns a fresh snapshot id: the time in hex and 8 random
// bytes.
func NewSnapshotID(at time.Time) string {
	var b [8]byte
	rand.Read(b[:])
	return fmt.Sprintf("%x-%s", at.UnixNano(), hex.EncodeToString(b[:]))
}

// SnapshotEvents renders snap as chunk events (category
// inventory_snapshot), calling emit for each. Every chunk carries the
// snapshot id, its index, the total number of chunks, its item kind and its
// items as a JSON array; every collected kind has at least one chunk, so an
// empty kind is told apart from one that could not be collected. An item
// that alone exceeds ChunkBytes is left out and counted in the result.
func SnapshotEvents(snap *Snapshot, id string, emit func(*event.Event)) (chunks, dropped int, err error) {
	type chunk struct {
		kind  string
		items []json.RawMessage
	}
	var all []chunk
	for _, kind := range Kinds {
		if !snap.Have[kind] {
			continue
		}
		items, err := snap.items(kind)
		if err != nil {
			return 0, 0, err
		}
		cur := chunk{kind: kind, items: []json.RawMessage{}}
		size := 0
		for _, raw := range items {
			esc, _ := json.Marshal(string(raw))
			n := len(esc) - 2 + 1 // without the quotes, plus a comma
			if n > ChunkBytes {
				dropped++
				continue
			}
			if size+n > ChunkBytes && len(cur.items) > 0 {
				all = append(all, cur)
				cur, size = chunk{kind: kind, items: []json.RawMessage{}}, 0
			}
			cur.items = append(cur.items, raw)
			size += n
		}
		all = append(all, cur)
	}
	for i, c := range all {
		b, err := json.Marshal(c.items)
		if err != nil {
			return i, dropped, err
		}
		ev := &event.Event{Time: snap.Time, Product: Product, Categories: snapshotCats}
		ev.Add("EventType", "inventory_snapshot")
		ev.Add("SnapshotId", id)
		ev.Add("ChunkIndex", strconv.Itoa(i))
		ev.Add("ChunkCount", strconv.Itoa(len(all)))
		ev.Add("ItemKind", c.kind)
		ev.Add("ItemCount", strconv.Itoa(len(c.items)))
		ev.Add("Items", string(b))
		emit(ev)
	}
	return len(all), dropped, nil
}

// items returns kind's items as JSON objects.
func (s *Snapshot) items(kind string) ([][]byte, error) {
	var out [][]byte
	add := func(v any) error {
		b, err := json.Marshal(v)
		out = append(out, b)
		return err
	}
	var err error
	switch kind {
	case KindOS:
		err = add(s.OS)
	case KindPackage:
		for i := range s.Packages {
			err = add(&s.Packages[i])
		}
	case KindUser:
		for i := range s.Users {
			err = add(&s.Users[i])
		}
	case KindGroup:
		for i := range s.Groups {
			err = add(&s.Groups[i])
		}
	case KindPort:
		for i := range s.Ports {
			err = add(&s.Ports[i])
		}
	case KindService:
		for i := range s.Services {
			err = add(&s.Services[i])
		}
	case KindModule:
		for i := range s.Modules {
			err = add(&s.Modules[i])
		}
	}
	return out, err
}
