package posture

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// FuzzParse: any bytes either fail to parse with ErrPolicy or give a
// policy whose every check evaluates (commands off, against an empty root)
// to a status with a valid UTF-8 reason.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/policies/*.yml", "testdata/bad/*.yaml", "policies/*.yml"} {
		files, _ := filepath.Glob(dir)
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	root := f.TempDir()
	ev := NewEvaluator(Options{Root: root})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse("fuzz", b)
		if err != nil {
			return
		}
		r := ev.Evaluate(context.Background(), p)
		if len(r.Results) != len(p.Checks) {
			t.Fatalf("%d results for %d checks", len(r.Results), len(p.Checks))
		}
		for _, res := range r.Results {
			switch res.Status {
			case Passed, Failed, NotApplicable:
			default:
				t.Fatalf("check %d: status %q", res.CheckID, res.Status)
			}
			if res.Reason == "" || !utf8.ValidString(res.Reason) || len(res.Reason) > MaxReasonBytes+3 {
				t.Fatalf("check %d: reason %q", res.CheckID, res.Reason)
			}
		}
	})
}
