package network

import (
	"testing"

	"github.com/vigil-edr/vigil/internal/testkit"
)

// TestDeps: the sensor is linked into the agent, which must not link
// server packages (STYLE.md item 5).
func TestDeps(t *testing.T) {
	for _, dep := range testkit.InternalDeps(t) {
		if !testkit.SensorMayImport(dep) {
			t.Errorf("imports internal/%s, not allowed in an agent sensor", dep)
		}
	}
}
