package winevent_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vigil-edr/vigil/internal/hunt/winevent"
)

// TestRuleServicesKnown checks that every service named in the logsource of
// a SigmaHQ Windows rule has at least one channel in our table.
func TestRuleServicesKnown(t *testing.T) {
	known := winevent.KnownServices()
	serviceLine := regexp.MustCompile(`^\s+service:\s*([\w-]+)`)
	seen := map[string]int{}
	for _, dir := range []string{"rules", "rules-threat-hunting"} {
		root := filepath.Join(corpusDir(t), "sigma", dir, "windows")
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yml") {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			inLogsource := false
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				line := sc.Text()
				if !strings.HasPrefix(line, " ") && line != "" {
					inLogsource = strings.HasPrefix(line, "logsource:")
				}
				if m := serviceLine.FindStringSubmatch(line); inLogsource && m != nil {
					seen[m[1]]++
				}
			}
			return sc.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) == 0 {
		t.Fatal("no rule services found")
	}
	for s, n := range seen {
		if !known[s] {
			t.Errorf("service %q (%d rules) has no channel", s, n)
		}
	}
	t.Logf("%d services used by Windows rules, all mapped", len(seen))
}
