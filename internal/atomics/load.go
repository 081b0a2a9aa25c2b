package atomics

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Limits on one technique file. The largest upstream file (T1685, about
// 94 KB) is far inside them; nesting in the format is at most five levels.
const (
	MaxFileBytes = 2 << 20
	MaxDepth     = 16
	MaxNodes     = 200_000
)

// ErrInvalid is wrapped by every error about a technique file's content.
var ErrInvalid = errors.New("invalid atomic technique file")

// Technique is one technique file: an ATT&CK technique and its tests.
type Technique struct {
	ID    string `yaml:"attack_technique"` // T1234 or T1234.001
	Name  string `yaml:"display_name"`
	Tests []Test `yaml:"atomic_tests"`
	Path  string `yaml:"-"` // where it was loaded from
}

// Test is one atomic test.
type Test struct {
	Name               string         `yaml:"name"`
	GUID               string         `yaml:"auto_generated_guid"`
	Description        string         `yaml:"description"`
	Platforms          []string       `yaml:"supported_platforms"`
	Args               map[string]Arg `yaml:"input_arguments"`
	DependencyExecutor string         `yaml:"dependency_executor_name"`
	Dependencies       []Dependency   `yaml:"dependencies"`
	Executor           Executor       `yaml:"executor"`

	// Set by Load: the technique and the test's 1-based position in its
	// file, the number Atomic Red Team's own tools use ("T1053.003 #2").
	Technique string `yaml:"-"`
	Number    int    `yaml:"-"`
}

// Arg is an input argument; only its default is used.
type Arg struct {
	Description string `yaml:"description"`
	Type        string `yaml:"type"`
	Default     string `yaml:"default"`
}

// Dependency is a prerequisite: PrereqCommand exits 0 when it is met.
// GetPrereqCommand (which downloads or installs) is never run.
type Dependency struct {
	Description      string `yaml:"description"`
	PrereqCommand    string `yaml:"prereq_command"`
	GetPrereqCommand string `yaml:"get_prereq_command"`
}

// Executor says how the test runs.
type Executor struct {
	Name              string `yaml:"name"` // sh, bash, powershell, command_prompt, manual
	Command           string `yaml:"command"`
	CleanupCommand    string `yaml:"cleanup_command"`
	ElevationRequired bool   `yaml:"elevation_required"`
	Steps             string `yaml:"steps"` // manual tests
}

// ID names a test as "T1053.003 #2".
func (t *Test) ID() string { return fmt.Sprintf("%s #%d", t.Technique, t.Number) }

// SupportsPlatform reports whether the test lists platform (e.g. "linux").
func (t *Test) SupportsPlatform(platform string) bool {
	for _, p := range t.Platforms {
		if strings.EqualFold(strings.TrimSpace(p), platform) {
			return true
		}
	}
	return false
}

var techniqueRE = regexp.MustCompile(`^T[0-9]{4}(\.[0-9]{3})?$`)

// Parse decodes one technique file. name is used in error messages.
func Parse(name string, data []byte) (*Technique, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: %w: %s", name, ErrInvalid, fmt.Sprintf(format, args...))
	}
	if len(data) > MaxFileBytes {
		return nil, bad("%d bytes, more than the %d allowed", len(data), MaxFileBytes)
	}
	if !utf8.Valid(data) {
		return nil, bad("not valid UTF-8")
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, bad("empty document")
		}
		return nil, bad("%v", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, bad("more than one YAML document")
	}
	nodes := 0
	if err := checkNode(&doc, 0, &nodes); err != nil {
		return nil, bad("%v", err)
	}
	tech := &Technique{Path: name}
	if err := doc.Decode(tech); err != nil {
		return nil, bad("%v", err)
	}
	if !techniqueRE.MatchString(tech.ID) {
		return nil, bad("attack_technique %q is not a technique id (T1234 or T1234.001)", clip(tech.ID))
	}
	if len(tech.Tests) == 0 {
		return nil, bad("no atomic_tests")
	}
	for i := range tech.Tests {
		t := &tech.Tests[i]
		t.Technique, t.Number = tech.ID, i+1
		if strings.TrimSpace(t.Name) == "" {
			return nil, bad("test %d has no name", i+1)
		}
		if strings.TrimSpace(t.Executor.Name) == "" {
			return nil, bad("test %d (%s) has no executor name", i+1, clip(t.Name))
		}
	}
	return tech, nil
}

// checkNode enforces depth and size limits and refuses aliases (the
// format has no use for them, and they are how a small file expands into
// a huge one).
func checkNode(n *yaml.Node, depth int, count *int) error {
	*count++
	switch {
	case depth > MaxDepth:
		return fmt.Errorf("nested deeper than %d levels", MaxDepth)
	case *count > MaxNodes:
		return fmt.Errorf("more than %d YAML nodes", MaxNodes)
	case n.Kind == yaml.AliasNode:
		return fmt.Errorf("line %d: YAML aliases are not allowed", n.Line)
	case n.Anchor != "":
		return fmt.Errorf("line %d: YAML anchors are not allowed", n.Line)
	}
	for _, c := range n.Content {
		if err := checkNode(c, depth+1, count); err != nil {
			return err
		}
	}
	return nil
}

// Load reads one technique file.
func Load(path string) (*Technique, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// LoadDir reads every technique file of an atomics folder: DIR/T*/T*.yaml
// (the upstream layout, with or without the atomics/ prefix) or T*.yaml
// directly in DIR. Techniques come back sorted by id. A file that fails to
// load is returned in errs and skipped; the others still load.
func LoadDir(dir string) (techs []*Technique, errs []error) {
	var paths []string
	for _, pat := range []string{"T*/T*.yaml", "T*.yaml", "atomics/T*/T*.yaml"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, []error{err}
		}
		paths = append(paths, m...)
	}
	seen := map[string]bool{}
	for _, p := range paths {
		if seen[p] {
			continue
		}
		seen[p] = true
		t, err := Load(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		techs = append(techs, t)
	}
	sort.Slice(techs, func(i, j int) bool { return techs[i].ID < techs[j].ID })
	return techs, errs
}

// clip shortens s for an error message.
func clip(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	for i := max; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "…"
		}
	}
	return ""
}
