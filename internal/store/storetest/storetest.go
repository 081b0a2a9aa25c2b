package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/cases"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/notify"
	"github.com/vigil-edr/vigil/internal/overview"
	"github.com/vigil-edr/vigil/internal/ruleset"
	"github.com/vigil-edr/vigil/internal/transport"
)

// Backend is everything a Vigil storage backend implements.
type Backend interface {
	transport.Store
	eventstore.Store
	alert.Store
	authz.Store
	ruleset.Store
	cases.Store
	notify.Store
	overview.Store

	// WaitIndexed waits until every event inserted before the call is
	// found by full-text and field searches (a backend that indexes them
	// in the inserting transaction returns nil at once).
	WaitIndexed(ctx context.Context) error
}

// Reopener is implemented by a Backend whose test harness can close it and
// open the same storage again, as after a crash. The crash-recovery tests are
// skipped for backends without it.
type Reopener interface {
	Reopen(t *testing.T) Backend
}

// Run runs the suite. open must return an empty backend and arrange (with
// t.Cleanup) for it to be closed.
func Run(t *testing.T, open func(t *testing.T) Backend) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"Events", eventTests},
		{"Transport", transportTests},
		{"Alerts", alertTests},
		{"Authz", authzTests},
		{"Ruleset", rulesetTests},
		{"Cases", caseTests},
		{"Notify", notifyTests},
		{"Overview", overviewTests},
	}
	if _, ok := open(t).(VulnBackend); ok {
		groups = append(groups, struct {
			name  string
			tests []test
		}{"Vuln", vulnTests})
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
			}
		})
	}
}

type test struct {
	name string
	fn   func(t *testing.T, b Backend)
}

// t0 is the suite's reference time: whole nanoseconds, UTC.
var t0 = time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.UTC)

func ctx(t *testing.T) context.Context { return t.Context() }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}
