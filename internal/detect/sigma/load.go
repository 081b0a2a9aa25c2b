package sigma

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// LoadPaths reads every .yml and .yaml file under the given files and
// directories (recursively, in lexical order) and parses the rules in them.
// It returns the rules that parsed and one error per file or document that
// did not; a missing path is an error too.
func LoadPaths(paths ...string) ([]*Rule, []error) {
	var rules []*Rule
	var errs []error
	for _, root := range paths {
		var files []string
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			if d.Type().IsRegular() && isRuleFile(p) {
				files = append(files, p)
			} else if p == root {
				files = append(files, p) // a file named on the command line is read whatever its name
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("reading rules: %w", err))
			continue
		}
		sort.Strings(files)
		for _, f := range files {
			data, err := readLimited(f, MaxFileSize)
			if err != nil {
				errs = append(errs, &Error{Path: f, Reason: err.Error()})
				continue
			}
			rs, es := ParseFile(f, data)
			rules = append(rules, rs...)
			errs = append(errs, es...)
		}
	}
	return rules, errs
}

func isRuleFile(p string) bool {
	ext := strings.ToLower(filepath.Ext(p))
	return ext == ".yml" || ext == ".yaml"
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("file is larger than the %d bytes allowed", limit)
	}
	return data, nil
}
