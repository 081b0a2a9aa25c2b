package agent

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestConfig(t *testing.T) {
	c, err := LoadConfig("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.SpoolMaxBytes != 512<<20 || c.Sensors.AuthLog || !c.Sensors.Process || len(c.Sensors.FIMPaths) != 2 || c.LogLevel != "info" {
		t.Errorf("config %+v", c)
	}
	want := map[string]string{
		"plain_http":   "want an https:// URL",
		"relative_dir": "want an absolute path",
		"tiny_spool":   "at least 16 MiB",
		"unknown_key":  "procss",
		"log_level":    "want debug, info, warn or error",
	}
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) != len(want) {
		t.Fatalf("%d bad fixtures, %d expectations", len(files), len(want))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".bad.yaml")
		_, err := LoadConfig(f)
		if err == nil || !strings.Contains(err.Error(), want[name]) || !strings.Contains(err.Error(), f) {
			t.Errorf("%s: error %v, want one naming the file and containing %q", f, err, want[name])
		}
	}
}
