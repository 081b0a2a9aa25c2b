package simagent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/detect/sigma"
	"github.com/vigil-edr/vigil/internal/event"
)

// The suspicious events must actually make rules fire, and background noise
// should mostly not: otherwise benchmarks measure nothing.
func TestSuspiciousEventsMatchRules(t *testing.T) {
	paths := []string{"../../rules"}
	if c, err := filepath.Abs("../../../shared/corpus/sigma/rules/linux"); err == nil {
		if _, err := os.Stat(c); err == nil {
			paths = append(paths, c)
		} else {
			t.Log("CORPUS MISSING: testing against Vigil's own rules only")
		}
	}
	rules, errs := sigma.LoadPaths(paths...)
	eng, cerrs := sigma.NewEngine(rules, sigma.Options{})
	if len(errs)+len(cerrs) > 0 {
		t.Fatal(errs, cerrs)
	}
	m := eng.NewMatcher()
	g := New(1, 5)
	ev := &event.Event{}
	var sus, susHit, noise, noiseHit int
	for i := 0; i < 20000; i++ {
		_, s := g.Next(ev, time.Now())
		hit := false
		for _, x := range m.Match(ev) {
			hit = hit || x.Rule.Emit // rules that only feed correlations do not alert
		}
		if s {
			sus++
			if hit {
				susHit++
			}
		} else {
			noise++
			if hit {
				noiseHit++
			}
		}
	}
	t.Logf("suspicious %d (%d matched), noise %d (%d matched)", sus, susHit, noise, noiseHit)
	if sus == 0 || susHit*2 < sus {
		t.Errorf("only %d of %d suspicious events matched a rule", susHit, sus)
	}
	if noiseHit*100 > noise {
		t.Errorf("%d of %d noise events matched a rule", noiseHit, noise)
	}
}
