package inventory

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/agent/throttle"
	"github.com/vigil-edr/vigil/internal/event"
)

// fakeRoot builds a throwaway root with passwd, group, os-release, a dpkg
// status file and systemd unit directories, so account and package changes
// can be made without touching the host.
func fakeRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n")
	write("etc/group", "root:x:0:\nsudo:x:27:\n")
	write("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n")
	write("var/lib/dpkg/status", "Package: tool\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n\n")
	write("usr/lib/systemd/system/demo.service", "[Service]\nExecStart=/usr/bin/demo --serve\n")
	write("etc/systemd/system/multi-user.target.wants/.keep", "")
	write("proc/modules", "nf_tables 331776 0 - Live 0x0000000000000000\n")
	return root
}

// recorder collects a sensor's events and matches them declaratively.
type recorder struct {
	mu  sync.Mutex
	evs []*event.Event
}

func (r *recorder) out(ev *event.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func matches(ev *event.Event, want map[string]string) bool {
	for k, v := range want {
		if k == "category" {
			if !ev.HasCategory(v) {
				return false
			}
			continue
		}
		if got, ok := ev.Get(k); !ok || got != v {
			return false
		}
	}
	return true
}

// waitFor returns the first event matching every field of want (and
// "category"), failing the test if none arrives within d.
func (r *recorder) waitFor(t *testing.T, d time.Duration, want map[string]string) *event.Event {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		r.mu.Lock()
		for _, ev := range r.evs {
			if matches(ev, want) {
				r.mu.Unlock()
				return ev
			}
		}
		if time.Now().After(deadline) {
			for _, ev := range r.evs {
				if !ev.HasCategory(CategorySnapshot) {
					t.Logf("seen: %v %v", ev.Categories, ev.Fields)
				}
			}
			r.mu.Unlock()
			t.Fatalf("no event matching %v within %s", want, d)
		}
		r.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *recorder) count(want map[string]string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.evs {
		if matches(ev, want) {
			n++
		}
	}
	return n
}

func start(t *testing.T, opts Options) (*Sensor, *recorder, func()) {
	t.Helper()
	s := New(opts)
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, rec.out) }()
	return s, rec, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func appendTo(t *testing.T, path, line string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		t.Fatal(err)
	}
}

// TestWatchTriggers: with the periodic comparison out of the way (one
// hour), changes to the trigger files are reported within seconds, and
// changes made while the sensor was stopped are reported at its next start.
func TestWatchTriggers(t *testing.T) {
	root := fakeRoot(t)
	state := filepath.Join(t.TempDir(), "state")
	opts := Options{Root: root, ProcModules: filepath.Join(root, "proc/modules"), StateDir: state,
		DiffEvery: time.Hour, WatchEvery: 50 * time.Millisecond, NoUevent: true}
	s, rec, stop := start(t, opts)

	// The start snapshot: one chunk per kind, all with the same id.
	first := rec.waitFor(t, 5*time.Second, map[string]string{"category": CategorySnapshot, "ItemKind": KindModule})
	id, _ := first.Get("SnapshotId")
	count, _ := first.Get("ChunkCount")
	if n := rec.count(map[string]string{"SnapshotId": id}); strconv.Itoa(n) != count || n != len(Kinds) {
		t.Errorf("snapshot %s: %d chunks, ChunkCount %s", id, n, count)
	}
	pkgs := rec.waitFor(t, time.Second, map[string]string{"SnapshotId": id, "ItemKind": KindPackage})
	if items, _ := pkgs.Get("Items"); !strings.Contains(items, `"name":"tool","version":"1.0-1"`) {
		t.Errorf("package chunk items %s", items)
	}

	appendTo(t, filepath.Join(root, "etc/passwd"), "vigiltest:x:1234:1234:Vigil test:/home/vigiltest:/bin/sh\n")
	ev := rec.waitFor(t, 3*time.Second, map[string]string{"category": "user_change", "EventType": "user_added", "TargetUser": "vigiltest"})
	if !matches(ev, map[string]string{"Uid": "1234", "Shell": "/bin/sh", "Home": "/home/vigiltest", "Trigger": TriggerWatch, "category": CategoryChange}) || ev.Product != "linux" {
		t.Errorf("user_added %+v", ev.Fields)
	}

	if err := os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nsudo:x:27:vigiltest\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, 3*time.Second, map[string]string{"EventType": "group_modified", "Group": "sudo", "AddedMembers": "vigiltest", "Trigger": TriggerWatch})

	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), []byte("Package: tool\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-2\n\nPackage: nmap\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.93+dfsg1-1\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, 3*time.Second, map[string]string{"category": "package_change", "EventType": "package_upgraded", "PackageName": "tool", "PackageVersion": "1.0-2", "PackagePreviousVersion": "1.0-1", "PackageManager": "dpkg"})
	rec.waitFor(t, 3*time.Second, map[string]string{"EventType": "package_installed", "PackageName": "nmap", "PackageArch": "amd64", "PackageVersion": "7.93+dfsg1-1"})

	if err := os.Symlink("/usr/lib/systemd/system/demo.service", filepath.Join(root, "etc/systemd/system/multi-user.target.wants/demo.service")); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, 3*time.Second, map[string]string{"category": "service_change", "EventType": "service_enabled", "ServiceName": "demo.service",
		"PreviousServiceState": "disabled", "ImagePath": "/usr/bin/demo --serve"})
	if st := s.Status(); st.Changes < 5 || st.Items[KindUser] != 2 || st.Packages != "dpkg" {
		t.Errorf("status %v", st)
	}
	stop()

	// While stopped: the user goes away. The next start reports it.
	if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/bash\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, rec2, stop2 := start(t, opts)
	defer stop2()
	rec2.waitFor(t, 5*time.Second, map[string]string{"EventType": "user_deleted", "TargetUser": "vigiltest", "Trigger": TriggerStart})
	if n := rec2.count(map[string]string{"category": "package_change"}); n != 0 {
		t.Errorf("%d package changes after a restart without package changes", n)
	}
}

// TestPortsAndModules: a listener started by the test is reported with its
// process by the periodic comparison, and so is a module appearing in the
// module list (simulated: this machine's kernel may have no modules).
func TestPortsAndModules(t *testing.T) {
	root := fakeRoot(t)
	mods := filepath.Join(root, "proc/modules")
	_, rec, stop := start(t, Options{Root: root, ProcModules: mods, DiffEvery: 200 * time.Millisecond, NoUevent: true})
	defer stop()
	rec.waitFor(t, 5*time.Second, map[string]string{"category": CategorySnapshot, "ItemKind": KindPort})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	self, _ := os.Executable()
	opened := rec.waitFor(t, 3*time.Second, map[string]string{"category": "listening_port_change", "EventType": "listening_port_opened", "SourcePort": port})
	if !matches(opened, map[string]string{"Protocol": "tcp", "SourceIp": "127.0.0.1", "ProcessId": strconv.Itoa(os.Getpid()), "Image": self, "Trigger": TriggerScan}) {
		t.Errorf("listening_port_opened %+v", opened.Fields)
	}
	ln.Close()
	rec.waitFor(t, 3*time.Second, map[string]string{"EventType": "listening_port_closed", "SourcePort": port})

	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	uport := strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port)
	rec.waitFor(t, 3*time.Second, map[string]string{"EventType": "listening_port_opened", "Protocol": "udp", "SourcePort": uport, "ProcessId": strconv.Itoa(os.Getpid())})

	appendTo(t, mods, "vigil_test_mod 16384 0 - Live 0x0000000000000000 (OE)\n")
	rec.waitFor(t, 3*time.Second, map[string]string{"category": "kernel_module_change", "EventType": "kernel_module_loaded", "ModuleName": "vigil_test_mod", "ModuleTaint": "OE"})
	if err := os.WriteFile(mods, []byte("nf_tables 331776 0 - Live 0x0000000000000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, 3*time.Second, map[string]string{"EventType": "kernel_module_unloaded", "ModuleName": "vigil_test_mod"})
}

// TestThrottlePostpones: while the agent backs off, a trigger-file change
// and the periodic comparisons wait (counted in Status.Postponed); once
// the throttle is off the change is reported.
func TestThrottlePostpones(t *testing.T) {
	root := fakeRoot(t)
	th := new(throttle.Signal)
	th.Set(true)
	s, rec, stop := start(t, Options{Root: root, ProcModules: filepath.Join(root, "proc/modules"),
		DiffEvery: 100 * time.Millisecond, WatchEvery: 50 * time.Millisecond, NoUevent: true, Throttle: th})
	defer stop()
	rec.waitFor(t, 5*time.Second, map[string]string{"category": CategorySnapshot, "ItemKind": KindModule})
	appendTo(t, filepath.Join(root, "etc/passwd"), "vigiltest:x:1234:1234:Vigil test:/home/vigiltest:/bin/sh\n")
	added := map[string]string{"EventType": "user_added", "TargetUser": "vigiltest"}
	time.Sleep(500 * time.Millisecond)
	if n := rec.count(added); n != 0 || s.Status().Postponed == 0 {
		t.Fatalf("throttled: %d user_added events, %d postponed; want none and some", n, s.Status().Postponed)
	}
	th.Set(false)
	rec.waitFor(t, 3*time.Second, added)
}
