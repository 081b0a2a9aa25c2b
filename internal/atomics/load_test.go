package atomics

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-edr/vigil/internal/testkit"
)

// Every corpus technique file loads, with its tests numbered as upstream.
func TestLoadCorpus(t *testing.T) {
	dir := testkit.Corpus(t, "atomics")
	techs, errs := LoadDir(dir)
	for _, err := range errs {
		t.Error(err)
	}
	tests := 0
	for _, tech := range techs {
		for i, tt := range tech.Tests {
			tests++
			if tt.Number != i+1 || tt.Technique != tech.ID || tt.GUID == "" {
				t.Errorf("%s: test %d numbered %q %d, guid %q", tech.Path, i, tt.Technique, tt.Number, tt.GUID)
			}
		}
	}
	if len(techs) != 61 || tests != 547 {
		t.Errorf("loaded %d techniques and %d tests, want 61 and 547", len(techs), tests)
	}
	// Spot checks against the YAML.
	cron := find(t, techs, "T1053.003", 2)
	if cron.Executor.Name != "bash" || !cron.Executor.ElevationRequired || cron.Args["cron_script_name"].Default != "persistevil" ||
		!strings.Contains(cron.Executor.CleanupCommand, "rm /etc/cron.daily/#{cron_script_name} -f") {
		t.Errorf("T1053.003 #2 loaded as %+v", cron)
	}
	cmd, missing := cron.Expand(cron.Executor.Command, "/a")
	if len(missing) > 0 || !strings.Contains(cmd, "> /etc/cron.daily/persistevil") {
		t.Errorf("expanded: %q, missing %v", cmd, missing)
	}
	// An integer default is kept as its text.
	for _, tech := range techs {
		for _, tt := range tech.Tests {
			for name, a := range tt.Args {
				if a.Type == "integer" && a.Default == "" {
					t.Errorf("%s: integer argument %s lost its default", tt.ID(), name)
				}
			}
		}
	}
}

func find(t *testing.T, techs []*Technique, id string, n int) *Test {
	t.Helper()
	for _, tech := range techs {
		if tech.ID == id && n <= len(tech.Tests) {
			return &tech.Tests[n-1]
		}
	}
	t.Fatalf("no %s #%d", id, n)
	return nil
}

// Each file under testdata/bad is rejected with the message in its first
// line ("# want: …").
func TestParseRejects(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.bad.yaml")
	if len(files) < 5 {
		t.Fatalf("only %d bad fixtures", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(data), "\n")
		want := strings.TrimSpace(strings.TrimPrefix(first, "# want:"))
		_, err = Parse(f, data)
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want ErrInvalid containing %q", f, err, want)
		}
	}
}

func TestParseLimits(t *testing.T) {
	deep := "attack_technique: T1000\natomic_tests:\n- name: x\n  executor:\n    name: sh\n    command: " +
		strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n"
	cases := map[string]struct {
		data []byte
		want string
	}{
		"deep":        {[]byte(deep), "nested deeper"},
		"big":         {[]byte("attack_technique: T1000\n#" + strings.Repeat("x", MaxFileBytes)), "more than"},
		"invalid utf": {[]byte("attack_technique: T1000\xff\n"), "UTF-8"},
		"empty":       {nil, "empty document"},
	}
	for name, c := range cases {
		if _, err := Parse(name, c.data); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	if dir, err := filepath.Glob("../../../shared/corpus/atomics/T10*/*.yaml"); err == nil {
		for _, p := range dir[:min(len(dir), 6)] {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("attack_technique: T1000\natomic_tests:\n- name: x\n  executor: {name: sh, command: id}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tech, err := Parse("fuzz", data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		for i := range tech.Tests {
			tt := &tech.Tests[i]
			Plan(tt, goldenHost("/atomics"))
			Programs(tt.Executor.Command)
		}
	})
}
