package inventory

import "github.com/vigil-edr/vigil/internal/vuln/version"

// compareVersions orders two versions of one package by its manager's
// rules (internal/vuln/version, the order vulnerability matching uses):
// negative when a is older than b, zero when equal, positive when newer.
// It decides whether a version change is an upgrade or a downgrade.
func compareVersions(manager, a, b string) int {
	if manager == "rpm" {
		return version.CompareRPM(a, b)
	}
	return version.CompareDpkg(a, b)
}
