package respond_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/audit"
	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/respond"
)

// TestPlaybooks: a playbook is created only by a principal holding its
// action's permission; it acts with its creator's current role, so a
// creator who lost the permission gets the action refused and audited;
// dry runs only record; the hourly limit holds.
func TestPlaybooks(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	roles := map[string]authz.Role{"token:alice": authz.RoleAdmin, "token:ann": authz.RoleAnalyst}
	svc := e.withPlaybooks(t, func(_ context.Context, actor string) (authz.Role, error) {
		mu.Lock()
		defer mu.Unlock()
		r, ok := roles[actor]
		if !ok {
			return "", errors.New("no such token")
		}
		return r, nil
	})
	go svc.RunPlaybooks(ctx)

	// Creation: an analyst cannot make a playbook that isolates.
	if _, err := svc.CreatePlaybook(ctx, ann, respond.Playbook{Name: "isolate on ransomware", MinLevel: "critical", Action: "isolate"}); code(err) != "forbidden" {
		t.Fatalf("analyst isolate playbook: %v", err)
	}
	iso, err := svc.CreatePlaybook(ctx, alice, respond.Playbook{Name: "isolate on ransomware", MinLevel: "critical", Tags: []string{"attack.impact"}, Action: "isolate"})
	if err != nil {
		t.Fatal(err)
	}
	dry, err := svc.CreatePlaybook(ctx, ann, respond.Playbook{Name: "processes on high", MinLevel: "high", Action: "query",
		Args: map[string]string{"name": "processes"}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	lim, err := svc.CreatePlaybook(ctx, ann, respond.Playbook{Name: "users on medium", MinLevel: "medium", Tags: []string{"discovery"}, Action: "query",
		Args: map[string]string{"name": "users"}, MaxPerHour: 2})
	if err != nil {
		t.Fatal(err)
	}
	alertFor := func(level string, tags ...string) alert.Finding {
		return alert.Finding{RuleID: "r1", RuleTitle: "Rule", Level: level, Tags: tags, Host: "agent-a", AgentID: "agent-a", Time: time.Now()}
	}

	// The creator holds isolate: the action is queued, as the creator, via the playbook.
	svc.OnAlert(alertFor("critical", "attack.impact"))
	svc.OnAlert(alertFor("low", "attack.impact")) // below min_level: nothing
	as := waitActions(t, e, 1)
	if as[0].Type != "isolate" || as[0].RequestedBy != "token:alice" || !strings.Contains(as[0].Note, "isolate on ransomware") {
		t.Fatalf("playbook action %+v", as[0])
	}
	// Alice is downgraded: the same playbook is refused, and audited.
	mu.Lock()
	roles["token:alice"] = authz.RoleAnalyst
	mu.Unlock()
	svc.OnAlert(alertFor("critical", "attack.impact"))
	waitAudit(t, e, "action.denied", "via=playbook:"+iso.ID)
	// Alice's token is gone altogether.
	mu.Lock()
	delete(roles, "token:alice")
	mu.Unlock()
	svc.OnAlert(alertFor("critical", "attack.impact"))
	waitAudit(t, e, "action.denied", "creator cannot act")

	// Dry run: recorded, not queued.
	svc.OnAlert(alertFor("high"))
	waitAudit(t, e, "playbook.dry_run", "would run type=query")

	// Rate limit: 2 per hour, the third is dropped and audited once.
	for i := 0; i < 4; i++ {
		svc.OnAlert(alertFor("medium", "Discovery"))
	}
	waitAudit(t, e, "playbook.rate_limited", "max_per_hour=2")
	as = waitActions(t, e, 3)
	n := 0
	for _, a := range as {
		if a.Type == "query" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d queries queued by the limited playbook, want 2", n)
	}
	if err := svc.DeletePlaybook(ctx, ann, iso.ID); code(err) != "forbidden" {
		t.Errorf("analyst deleting the isolate playbook: %v", err)
	}
	for _, id := range []string{dry.ID, lim.ID} {
		if err := svc.DeletePlaybook(ctx, ann, id); err != nil {
			t.Error(err)
		}
	}
	if _, err := audit.Verify(ctx, e.db, nil); err != nil {
		t.Fatal(err)
	}
}

func (e *env) withPlaybooks(t *testing.T, roleOf respond.RoleOf) *respond.Service {
	t.Helper()
	files, _ := respond.OpenFileStore(t.TempDir())
	svc, err := respond.New(respond.Options{Store: e.db, Audit: audit.New(e.db, nil), Agents: e.db, Key: e.key, Files: files,
		Playbooks: e.db, RoleOf: roleOf})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func waitActions(t *testing.T, e *env, n int) []respond.Action {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		as, err := e.db.ListActions(context.Background(), respond.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(as) >= n {
			return as
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d actions, want %d", len(as), n)
		}
	}
}

func waitAudit(t *testing.T, e *env, verb, detail string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		es, _ := e.db.AuditEntries(context.Background(), 0, 10000)
		for _, x := range es {
			if x.Action == verb && strings.Contains(x.Detail, detail) {
				return
			}
		}
	}
	t.Fatalf("no %s audit entry with %q", verb, detail)
}
