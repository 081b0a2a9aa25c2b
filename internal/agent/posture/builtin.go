package posture

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed policies/*.yml
var builtinFS embed.FS

// BuiltinPrefix names embedded policies in Source and on the command line
// ("builtin:vigil_debian12").
const BuiltinPrefix = "builtin:"

// BuiltinNames lists the embedded baseline policies by name (file name
// without .yml), sorted.
func BuiltinNames() []string {
	ents, _ := fs.ReadDir(builtinFS, "policies")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".yml"))
	}
	sort.Strings(out)
	return out
}

// Builtin parses one embedded policy by name.
func Builtin(name string) (*Policy, error) {
	data, err := builtinFS.ReadFile(path.Join("policies", name+".yml"))
	if err != nil {
		return nil, fmt.Errorf("no built-in policy %q (have %s)", name, strings.Join(BuiltinNames(), ", "))
	}
	return Parse(BuiltinPrefix+name, data)
}

// Builtins parses every embedded policy. Each one's requirements pick the
// hosts it applies to; on others its checks are not applicable.
func Builtins() ([]*Policy, error) {
	var out []*Policy
	for _, n := range BuiltinNames() {
		p, err := Builtin(n)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Load reads a policy from a file, or an embedded one named builtin:NAME.
func Load(src string, readFile func(string) ([]byte, error)) (*Policy, error) {
	if name, ok := strings.CutPrefix(src, BuiltinPrefix); ok {
		return Builtin(name)
	}
	data, err := readFile(src)
	if err != nil {
		return nil, err
	}
	return Parse(src, data)
}
