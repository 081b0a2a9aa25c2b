package atomics

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Reason says why a test did not run. The empty Reason means it may run.
type Reason string

// Reasons, in the order Plan checks them.
const (
	ReasonNone      Reason = ""
	ReasonPlatform  Reason = "wrong platform"
	ReasonExecutor  Reason = "unsupported executor"
	ReasonElevation Reason = "needs elevation"
	ReasonArgument  Reason = "input argument without a default"
	ReasonDenied    Reason = "harmful to the host"
	ReasonFile      Reason = "missing file from the atomics folder"
	ReasonTool      Reason = "needs a missing tool"
	ReasonPrereq    Reason = "prerequisite not met" // decided by the Runner
)

// Host describes where tests would run, for Plan.
type Host struct {
	OS         string // runtime.GOOS; Atomic Red Team calls it the platform
	Root       bool   // running as uid 0
	AtomicsDir string // replaces PathToAtomicsFolder
	// IsolatedNetwork: tests run in their own network namespace, so
	// changing firewall rules or routes cannot reach the host's network.
	IsolatedNetwork bool
	HasProgram      func(name string) bool // is it on PATH?
	FileExists      func(path string) bool
}

// Decision is Plan's verdict on one test.
type Decision struct {
	Reason Reason
	Detail string // the tools, file, denylist entry … behind Reason
}

// Run reports whether the test may run (prerequisites still to check).
func (d Decision) Run() bool { return d.Reason == ReasonNone }

// supportedExecutors are the executors Runner knows.
var supportedExecutors = set("sh", "bash")

// Plan decides whether t may run on h.
func Plan(t *Test, h Host) Decision {
	platform := h.OS
	if platform == "darwin" {
		platform = "macos"
	}
	if !t.SupportsPlatform(platform) {
		return Decision{ReasonPlatform, fmt.Sprintf("supports %s, not %s", strings.Join(t.Platforms, ", "), platform)}
	}
	ex := strings.ToLower(t.Executor.Name)
	if !supportedExecutors[ex] {
		return Decision{ReasonExecutor, fmt.Sprintf("executor %q (sh and bash are supported)", clip(t.Executor.Name))}
	}
	if len(t.Dependencies) > 0 && !supportedExecutors[strings.ToLower(t.dependencyExecutor())] {
		return Decision{ReasonExecutor, fmt.Sprintf("prerequisites use executor %q", clip(t.DependencyExecutor))}
	}
	if t.Executor.ElevationRequired && !h.Root {
		return Decision{ReasonElevation, "elevation_required: run as root"}
	}
	cmd, missing := t.Expand(t.Executor.Command, h.AtomicsDir)
	if strings.TrimSpace(t.Executor.Command) == "" {
		return Decision{ReasonExecutor, "no command"}
	}
	cleanup, m2 := t.Expand(t.Executor.CleanupCommand, h.AtomicsDir)
	missing = append(missing, m2...)
	var prereqs []string
	for _, d := range t.Dependencies {
		p, m3 := t.Expand(d.PrereqCommand, h.AtomicsDir)
		prereqs = append(prereqs, p)
		missing = append(missing, m3...)
	}
	if len(missing) > 0 {
		return Decision{ReasonArgument, strings.Join(uniq(missing), ", ")}
	}
	if e := Denied(cmd, cleanup, prereqs, t.Technique, h.IsolatedNetwork); e != nil {
		return Decision{ReasonDenied, e.Name + ": " + e.Why}
	}
	if h.FileExists != nil {
		c1, _ := t.Expand(t.Executor.Command, "")
		c2, _ := t.Expand(t.Executor.CleanupCommand, "")
		for _, f := range atomicsFiles([]string{c1, c2}, h.AtomicsDir) {
			if !h.FileExists(f) {
				return Decision{ReasonFile, f}
			}
		}
	}
	if h.HasProgram != nil {
		guards := Guarded(cmd)
		var need []string
		for _, p := range Programs(cmd) {
			if !guards[p] && !h.HasProgram(p) {
				need = append(need, p)
			}
		}
		if len(need) > 0 {
			return Decision{ReasonTool, strings.Join(need, ", ")}
		}
	}
	return Decision{}
}

func (t *Test) dependencyExecutor() string {
	if t.DependencyExecutor != "" {
		return t.DependencyExecutor
	}
	return t.Executor.Name
}

var argRE = regexp.MustCompile(`#\{([A-Za-z0-9_-]+)\}`)

// Expand substitutes input arguments (#{name}) with their defaults, and
// PathToAtomicsFolder (also written $PathToAtomicsFolder) with atomicsDir,
// as Atomic Red Team's own runner does. It returns the names of #{…}
// placeholders that have no default.
func (t *Test) Expand(s, atomicsDir string) (string, []string) {
	// Defaults may refer to other arguments; a few rounds settle that.
	for range 4 {
		next := argRE.ReplaceAllStringFunc(s, func(m string) string {
			if a, ok := t.Args[m[2:len(m)-1]]; ok {
				return a.Default
			}
			return m
		})
		if next == s {
			break
		}
		s = next
	}
	var missing []string
	for _, m := range argRE.FindAllStringSubmatch(s, -1) {
		if _, ok := t.Args[m[1]]; !ok {
			missing = append(missing, m[1])
		}
	}
	if atomicsDir != "" {
		s = strings.ReplaceAll(s, "${PathToAtomicsFolder}", atomicsDir)
		s = strings.ReplaceAll(s, "$PathToAtomicsFolder", atomicsDir)
		s = strings.ReplaceAll(s, "PathToAtomicsFolder", atomicsDir)
	}
	return s, missing
}

var atomicsPathRE = regexp.MustCompile(`\$?\{?PathToAtomicsFolder\}?((?:/[^\s"'<>|;&()$*?]+)+)`)

// atomicsFiles lists the files under the atomics folder the commands name
// (after argument substitution).
func atomicsFiles(cmds []string, dir string) []string {
	var out []string
	for _, c := range cmds {
		for _, m := range atomicsPathRE.FindAllStringSubmatch(c, -1) {
			out = append(out, filepath.Join(dir, filepath.FromSlash(m[1])))
		}
	}
	return uniq(out)
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	out := s[:0:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}
