package client

import (
	"go/build"
	"strings"
	"testing"
)

// The agent links this package: it must import the standard library only,
// so no server package (transport, pki, store, …) reaches vigil-agent.
func TestStandardLibraryOnly(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
			t.Errorf("client imports %s; only the standard library is allowed", imp)
		}
	}
}
