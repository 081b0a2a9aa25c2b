package hunt

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vigil-edr/vigil/internal/detect/sigma"
)

// Case is one SigmaHQ regression case: a rule and a log file that must make
// it fire, match_count times when the case says so.
type Case struct {
	Info      string // the info.yml
	RuleID    string
	RuleTitle string
	Name      string
	Path      string // the log file
	Want      int    // expected matches; -1 means "at least one"
}

// CaseResult is the outcome of one case on one rendering of its data.
type CaseResult struct {
	Case
	File string // the file actually hunted (the .evtx or its .json rendering)
	Got  int
	Pass bool
	Err  error
}

type infoFile struct {
	RuleMetadata []struct {
		ID    string `yaml:"id"`
		Title string `yaml:"title"`
	} `yaml:"rule_metadata"`
	Tests []struct {
		Name       string `yaml:"name"`
		Type       string `yaml:"type"`
		MatchCount *int   `yaml:"match_count"`
		Path       string `yaml:"path"`
	} `yaml:"regression_tests_info"`
}

// FindCases reads every regression_data/**/info.yml below root. Paths in an
// info.yml are relative to the SigmaHQ checkout, which is root or one of its
// parents.
func FindCases(root string) ([]Case, error) {
	var infos []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == "info.yml" && strings.Contains(filepath.ToSlash(p), "regression_data/") {
			infos = append(infos, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(infos)
	var cases []Case
	for _, info := range infos {
		data, err := os.ReadFile(info)
		if err != nil {
			return nil, err
		}
		var f infoFile
		if err := yaml.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("%s: %w", info, err)
		}
		if len(f.RuleMetadata) == 0 {
			return nil, fmt.Errorf("%s: no rule_metadata", info)
		}
		for _, t := range f.Tests {
			c := Case{Info: info, RuleID: f.RuleMetadata[0].ID, RuleTitle: f.RuleMetadata[0].Title, Name: t.Name, Want: -1}
			if t.MatchCount != nil {
				c.Want = *t.MatchCount
			}
			c.Path = resolveCasePath(info, t.Path)
			cases = append(cases, c)
		}
	}
	return cases, nil
}

// resolveCasePath finds the data file: the path is relative to the SigmaHQ
// checkout, i.e. to the directory above regression_data.
func resolveCasePath(info, rel string) string {
	slashed := filepath.ToSlash(info)
	if i := strings.Index(slashed, "regression_data/"); i >= 0 {
		p := filepath.Join(filepath.FromSlash(slashed[:i]), filepath.FromSlash(rel))
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	// Fall back to the file of the same name beside info.yml.
	return filepath.Join(filepath.Dir(info), filepath.Base(rel))
}

// RunCases runs each case's rule over its data file and, where one exists
// beside it, over the .json rendering of the same events.
func RunCases(ctx context.Context, cases []Case, rules []*sigma.Rule) []CaseResult {
	byID := map[string]*sigma.Rule{}
	for _, r := range rules {
		if r.ID != "" {
			byID[r.ID] = r
		}
	}
	var out []CaseResult
	for _, c := range cases {
		files := []string{c.Path}
		if j := strings.TrimSuffix(c.Path, filepath.Ext(c.Path)) + ".json"; j != c.Path {
			if _, err := os.Stat(j); err == nil {
				files = append(files, j)
			}
		}
		for _, f := range files {
			res := CaseResult{Case: c, File: f}
			rule, ok := byID[c.RuleID]
			if !ok {
				res.Err = fmt.Errorf("rule %s is not among the loaded rules", c.RuleID)
				out = append(out, res)
				continue
			}
			res.Got, res.Err = countMatches(ctx, rule, f)
			res.Pass = res.Err == nil && (c.Want < 0 && res.Got > 0 || c.Want >= 0 && res.Got == c.Want)
			out = append(out, res)
		}
	}
	return out
}

func countMatches(ctx context.Context, rule *sigma.Rule, path string) (int, error) {
	eng, errs := sigma.NewEngine([]*sigma.Rule{rule}, sigma.Options{})
	if len(errs) > 0 {
		return 0, errs[0]
	}
	info, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	n := 0
	sum, err := Run(ctx, eng, nil, []File{{Path: path, Size: info.Size()}}, Options{Workers: 1}, func(d Detection) error {
		if d.RuleID == rule.ID {
			n++
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	if len(sum.Errors) > 0 {
		return n, sum.Errors[0]
	}
	return n, nil
}
