// Package testkit holds helpers shared by Vigil's tests. Only _test.go files
// may import it.
package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Corpus returns <repo root>/../shared/corpus joined with rel (the shared,
// read-only, externally written test data), or skips the test with a loud
// message when it is absent. The repo root is the nearest directory above
// the working directory that holds go.mod.
func Corpus(tb testing.TB, rel ...string) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
	p := filepath.Join(append([]string{dir, "..", "shared", "corpus"}, rel...)...)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("CORPUS MISSING: %s not found (%v); this test's ground-truth checks did NOT run", p, err)
	}
	return p
}

// InternalDeps lists the module's internal packages that the package in the
// working directory links (directly or not), relative to internal/, e.g.
// "hunt/syslog". It skips the test when the go tool is not available.
func InternalDeps(tb testing.TB) []string {
	tb.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		tb.Skip("go tool not found: dependencies not checked")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		tb.Fatalf("go list: %v", err)
	}
	var deps []string
	for _, dep := range strings.Fields(string(out)) {
		if rest, ok := strings.CutPrefix(dep, "github.com/vigil-edr/vigil/internal/"); ok {
			deps = append(deps, rest)
		}
	}
	return deps
}

// SensorMayImport is the import rule for agent sensors (STYLE.md item 5):
// the event model, other agent packages, the syslog and audit parsers and
// the line reader under them, the package version order (stdlib only),
// nothing from the server.
func SensorMayImport(rel string) bool {
	top, _, _ := strings.Cut(rel, "/")
	return top == "event" || top == "agent" || rel == "hunt/syslog" || rel == "hunt/auditd" || rel == "hunt/lines" ||
		rel == "vuln/version"
}
