package ruleset_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/ruleset"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
)

const ruleA = `title: A
id: rule-a
logsource: {product: linux}
detection:
  sel: {Image|endswith: /nc}
  condition: sel
level: high
`

const ruleB = `title: B
id: rule-b
logsource: {product: linux}
detection:
  sel: {Image|endswith: /socat}
  condition: sel
level: medium
`

func match(s *ruleset.Set, image string) []string {
	ev := &event.Event{Product: "linux"}
	ev.Add("Image", image)
	var ids []string
	for _, m := range s.Engine.NewMatcher().Match(ev) {
		ids = append(ids, m.Rule.Rule.ID)
	}
	return ids
}

func TestReloadEnableDisableHealth(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.yml"), []byte(ruleA), 0o644)
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "r.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := ruleset.New(ruleset.Options{Paths: []string{dir}, Store: db})
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if got := match(m.Current(), "/usr/bin/nc"); len(got) != 1 {
		t.Fatalf("matches %v", got)
	}
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		m.Watch(ctx, 20*time.Millisecond, func(err error) { t.Error(err) })
	}()
	// Stop the watcher before the database closes (defers run last-first).
	defer func() { cancel(); <-watching }()

	// A new file is picked up without a restart.
	os.WriteFile(filepath.Join(dir, "b.yml"), []byte(ruleB), 0o644)
	waitFor(t, func() bool { return len(match(m.Current(), "/usr/bin/socat")) == 1 })

	// A broken file is reported, the rest keeps working.
	os.WriteFile(filepath.Join(dir, "c.yml"), []byte("title: [broken\n"), 0o644)
	waitFor(t, func() bool { return len(m.Current().Rejected) == 1 })
	if len(match(m.Current(), "/usr/bin/nc")) != 1 {
		t.Fatal("a broken file disabled the other rules")
	}

	// Disabling through the store (as the CLI does) reloads too.
	if err := db.SetRuleEnabled(ctx, "rule-a", false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(match(m.Current(), "/usr/bin/nc")) == 0 })
	if err := m.SetEnabled(ctx, "rule-a", true); err != nil {
		t.Fatal(err)
	}
	if len(match(m.Current(), "/usr/bin/nc")) != 1 {
		t.Fatal("re-enabled rule does not match")
	}
	if err := m.SetEnabled(ctx, "no-such-rule", false); err == nil {
		t.Fatal("disabling an unknown rule succeeded")
	}

	// Health: matches and evaluations are counted per rule.
	var found bool
	for _, in := range m.List() {
		if in.ID == "rule-a" {
			found = true
			if in.Matches != 1 || in.Evaluations != 1 || !in.Enabled {
				t.Errorf("health of rule-a: %+v", in)
			}
		}
		if in.Kind == "rejected" && in.LastError == "" {
			t.Errorf("rejected rule without its error: %+v", in)
		}
	}
	if !found {
		t.Error("rule-a missing from List")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
