package auditd

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-edr/vigil/internal/event"
)

// readYAMLTests reads the aucoalesce test files: a "tests:" map from test
// name to a literal block of raw records. Only that shape is understood.
func readYAMLTests(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]string{}
	var name string
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "#") || line == "---" || line == "tests:":
		case strings.HasPrefix(line, "    ") && name != "":
			tests[name] += trimmed + "\n"
		case strings.HasPrefix(line, "  ") && strings.HasSuffix(trimmed, ": |"):
			name = strings.TrimSuffix(trimmed, ": |")
		default:
			t.Fatalf("%s: unexpected line %q", path, line)
		}
	}
	return tests
}

type coalesceGolden struct {
	TestName string `json:"test_name"`
	Event    struct {
		Process struct {
			PID  string   `json:"pid"`
			PPID string   `json:"ppid"`
			Exe  string   `json:"exe"`
			CWD  string   `json:"cwd"`
			Args []string `json:"args"`
		} `json:"process"`
		User struct {
			IDs map[string]string `json:"ids"`
		} `json:"user"`
		Tags []string `json:"tags"`
	} `json:"event"`
}

// TestAucoalesceGolden feeds each aucoalesce test through a coalescing
// Reader. Every record must parse; exactly the tests that auparse tags
// "exec" must give one process_creation event, whose process fields must
// agree with the golden file (exe, args, cwd, pid, ppid, uid, auid).
func TestAucoalesceGolden(t *testing.T) {
	dir := corpusDir(t, "auditd/aucoalesce/testdata")
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no yaml files")
	}
	execs := 0
	for _, path := range files {
		tests := readYAMLTests(t, path)
		gb, err := os.ReadFile(strings.TrimSuffix(path, ".yaml") + ".json.golden")
		if err != nil {
			t.Fatal(err)
		}
		var golden []coalesceGolden
		if err := json.Unmarshal(gb, &golden); err != nil {
			t.Fatal(err)
		}
		for _, g := range golden {
			name := filepath.Base(path) + "/" + g.TestName
			in, ok := tests[g.TestName]
			if !ok {
				t.Errorf("%s: no raw records", name)
				continue
			}
			r := NewReader(strings.NewReader(in), Options{Coalesce: true})
			var ev event.Event
			var procs []*event.Event
			for {
				err := r.Next(&ev)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if ev.HasCategory("process_creation") {
					procs = append(procs, ev.Clone())
				} else if v, _ := ev.Get("key"); strings.Contains(v, "ARCH=") {
					t.Errorf("%s: enriched section not split from key: %q", name, v)
				}
			}
			if st := r.Stats(); st.Malformed != 0 || st.Truncated != 0 {
				t.Errorf("%s: stats %+v", name, st)
			}
			isExec := false
			for _, tag := range g.Event.Tags {
				isExec = isExec || tag == "exec"
			}
			if !isExec {
				if len(procs) != 0 {
					t.Errorf("%s: %d process events for a non-exec event", name, len(procs))
				}
				continue
			}
			execs++
			if len(procs) != 1 {
				t.Errorf("%s: %d process events, want 1", name, len(procs))
				continue
			}
			p, gp := procs[0], g.Event.Process
			auid := g.Event.User.IDs["auid"]
			if auid == "unset" {
				auid = "4294967295"
			}
			for _, c := range []struct{ field, want string }{
				{"Image", gp.Exe},
				{"CommandLine", strings.Join(gp.Args, " ")},
				{"CurrentDirectory", gp.CWD},
				{"ProcessId", gp.PID},
				{"ParentProcessId", gp.PPID},
				{"User", g.Event.User.IDs["uid"]},
				{"LogonId", auid},
			} {
				if got, _ := p.Get(c.field); got != c.want {
					t.Errorf("%s: %s = %q, want %q", name, c.field, got, c.want)
				}
			}
			t.Logf("%s: %v", name, p.Fields)
		}
	}
	if execs == 0 {
		t.Error("no exec test found in the golden files")
	}
}
