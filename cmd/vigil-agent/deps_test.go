package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The agent binary must not link server-side packages (STYLE.md item 5).
func TestNoServerPackages(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	const mod = "github.com/vigil-edr/vigil/internal/"
	forbidden := []string{"ingest", "detect", "alert", "store", "web", "bus", "pipeline", "eventstore", "ruleset", "authz", "pki", "hunt/evtx", "hunt/winevent", "syslogd", "simagent", "sca", "inventory", "respond", "cases", "notify", "vuln/osv", "vuln/debian"}
	for _, dep := range strings.Fields(string(out)) {
		if !strings.HasPrefix(dep, mod) {
			continue
		}
		rest := strings.TrimPrefix(dep, mod)
		for _, f := range forbidden {
			if rest == f || strings.HasPrefix(rest, f+"/") {
				t.Errorf("vigil-agent links server package %s", dep)
			}
		}
		if rest == "vuln" {
			t.Errorf("vigil-agent links vulnerability matching (only vuln/version is allowed)")
		}
		if rest == "transport" {
			t.Errorf("vigil-agent links the server side of transport (only transport/client is allowed)")
		}
	}
	for _, banned := range []string{"github.com/nats-io/", "modernc.org/sqlite", "github.com/prometheus/"} {
		if strings.Contains(string(out), banned) {
			t.Errorf("vigil-agent links %s", banned)
		}
	}
}
