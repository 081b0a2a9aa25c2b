package vuln

import (
	"fmt"
	"testing"

	"github.com/vigil-edr/vigil/internal/inventory"
	"github.com/vigil-edr/vigil/internal/vuln/version"
)

// BenchmarkMatch: one host of 2,000 dpkg packages (1,000 source packages)
// against 10,000 candidate entries, a tenth of them affecting it.
func BenchmarkMatch(b *testing.B) {
	var pkgs []inventory.Package
	for i := range 2000 {
		src := fmt.Sprintf("src%d", i/2)
		pkgs = append(pkgs, inventory.Package{Name: fmt.Sprintf("bin%d", i), Version: fmt.Sprintf("1.%d-1+deb12u1", i%7), Manager: "dpkg", Source: src, SourceVersion: fmt.Sprintf("1.%d-1+deb12u1", (i/2)%7)})
	}
	eco := Ecosystem{Name: "Debian:12", Scheme: version.Dpkg}
	var cands []Candidate
	for i := range 10000 {
		adv := &Advisory{Source: SourceOSV, ID: fmt.Sprintf("DSA-%d-1", i), Severity: Severity{Level: High}}
		fixed := "1.0-1"
		if i%10 == 0 {
			fixed = "9.0-1"
		}
		cands = append(cands, Candidate{Advisory: adv, Affected: Affected{Ecosystem: eco.Name, Package: fmt.Sprintf("src%d", i%1000),
			Ranges: []Range{{Introduced: "0.9", Fixed: fixed}}}})
	}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n = len(Match(pkgs, eco, cands))
	}
	b.ReportMetric(float64(n), "findings")
}
