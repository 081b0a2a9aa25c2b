package fim

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps: the sensor is linked into the agent, which must not link
// server packages (STYLE.md item 5).
func TestDeps(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found: dependencies not checked")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		rest, ok := strings.CutPrefix(dep, "github.com/vigil-edr/vigil/internal/")
		if !ok {
			continue
		}
		top, _, _ := strings.Cut(rest, "/")
		switch top {
		case "event", "agent":
		case "hunt":
			if rest != "hunt/syslog" {
				t.Errorf("imports %s", dep)
			}
		default:
			t.Errorf("imports %s, not allowed in an agent sensor", dep)
		}
	}
}
