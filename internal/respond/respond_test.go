package respond_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/audit"
	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/command"
	"github.com/vigil-edr/vigil/internal/respond"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
	"github.com/vigil-edr/vigil/internal/transport"
)

type env struct {
	key   ed25519.PrivateKey
	db    *sqlite.DB
	svc   *respond.Service
	clock time.Time
}

func newEnv(t *testing.T, approval ...string) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "v.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{db: db, clock: time.Now().UTC()}
	for _, id := range []string{"agent-a", "agent-b"} {
		if err := db.PutAgent(ctx, transport.Agent{ID: id, Hostname: id, EnrolledAt: e.clock, LastSeen: e.clock, CertNotAfter: e.clock.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	e.key = key
	files, _ := respond.OpenFileStore(filepath.Join(t.TempDir(), "files"))
	e.svc, err = respond.New(respond.Options{Store: db, Audit: audit.New(db, nil), Agents: db, Key: key, Files: files,
		Approval: approval, Now: func() time.Time { return e.clock }})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var (
	alice = respond.Principal{Actor: "token:alice", Role: authz.RoleAdmin}
	bob   = respond.Principal{Actor: "token:bob", Role: authz.RoleAdmin}
	ann   = respond.Principal{Actor: "token:ann", Role: authz.RoleAnalyst}
	vic   = respond.Principal{Actor: "token:vic", Role: authz.RoleViewer}
)

func (e *env) verbs(t *testing.T) []string {
	es, err := e.db.AuditEntries(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range es {
		out = append(out, x.Action+" "+x.Actor)
	}
	return out
}

func code(err error) string {
	var re *respond.Error
	if errors.As(err, &re) {
		return re.Code
	}
	return ""
}

func TestPermissionsPerType(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, c := range []struct {
		who  respond.Principal
		typ  string
		args map[string]string
		want string
	}{
		{ann, "kill", map[string]string{"pid": "42", "start_time": "7"}, ""},
		{ann, "isolate", nil, "forbidden"},
		{ann, "block", map[string]string{"cidr": "192.0.2.0/24", "duration": "1h"}, "forbidden"},
		{vic, "query", map[string]string{"name": "users"}, "forbidden"},
		{alice, "isolate", nil, ""},
		{alice, "kill", map[string]string{"pid": "1", "start_time": "7"}, "bad_request"},
		{alice, "query", map[string]string{"name": "shell"}, "bad_request"},
		{alice, "collect", map[string]string{"path": "../etc/shadow"}, "bad_request"},
		{alice, "quarantine", map[string]string{"path": "/tmp/x", "extra": "1"}, "bad_request"},
		{alice, "format_disk", nil, "bad_request"},
	} {
		_, err := e.svc.Request(ctx, c.who, respond.Request{Type: c.typ, AgentID: "agent-a", Args: c.args})
		if code(err) != c.want || (c.want == "" && err != nil) {
			t.Errorf("%s %s: %v, want %q", c.who.Actor, c.typ, err, c.want)
		}
	}
	// Via a playbook-like indirect path: the same check, the path named.
	if _, err := e.svc.Request(ctx, ann, respond.Request{Type: "isolate", AgentID: "agent-a", Via: "playbook:9"}); code(err) != "forbidden" {
		t.Errorf("indirect isolate: %v", err)
	}
	got := strings.Join(e.verbs(t), "\n")
	if strings.Count(got, "action.denied") != 4 || !strings.Contains(got, "action.denied token:vic") {
		t.Errorf("audit:\n%s", got)
	}
	es, _ := e.db.AuditEntries(ctx, 0, 1000)
	if !strings.Contains(es[len(es)-1].Detail, "via=playbook:9") {
		t.Errorf("indirect path not named: %+v", es[len(es)-1])
	}
	// Fleet-wide: queries only, one action per agent under one group.
	as, err := e.svc.Request(ctx, ann, respond.Request{Type: "query", AllHosts: true, Args: map[string]string{"name": "processes"}})
	if err != nil || len(as) != 2 || as[0].Group != as[1].Group || as[0].AgentID == as[1].AgentID {
		t.Fatalf("fleet query: %v %+v", err, as)
	}
	if _, err := e.svc.Request(ctx, alice, respond.Request{Type: "isolate", AllHosts: true}); code(err) != "bad_request" {
		t.Errorf("fleet isolate: %v", err)
	}
	if _, err := e.svc.Request(ctx, alice, respond.Request{Type: "release", AgentID: "nobody"}); code(err) != "not_found" {
		t.Errorf("unknown agent: %v", err)
	}
}

func TestApprovalFlow(t *testing.T) {
	e := newEnv(t, "isolate")
	ctx := context.Background()
	as, err := e.svc.Request(ctx, alice, respond.Request{Type: "isolate", AgentID: "agent-a"})
	if err != nil || as[0].State != respond.AwaitingApproval || as[0].Signed != nil {
		t.Fatalf("%v %+v", err, as)
	}
	id := as[0].ID
	if ds, _ := e.svc.Poll(ctx, "agent-a", 0); len(ds) != 0 {
		t.Fatal("an unapproved action was delivered")
	}
	if _, err := e.svc.Approve(ctx, alice, id); code(err) != "forbidden" {
		t.Errorf("self-approval: %v", err)
	}
	if _, err := e.svc.Approve(ctx, ann, id); code(err) != "forbidden" {
		t.Errorf("analyst approval: %v", err)
	}
	a, err := e.svc.Approve(ctx, bob, id)
	if err != nil || a.State != respond.Pending || a.ApprovedBy != "token:bob" {
		t.Fatalf("approve: %v %+v", err, a)
	}
	if _, err := e.svc.Approve(ctx, bob, id); code(err) != "conflict" {
		t.Errorf("second approval: %v", err)
	}
	ds, err := e.svc.Poll(ctx, "agent-a", 0)
	if err != nil || len(ds) != 1 {
		t.Fatalf("poll: %v %v", ds, err)
	}
	s, err := command.Decode(ds[0].Signed)
	if err != nil || command.Verify(e.svc.PublicKey(), s) != nil || s.Command.ApprovedBy != "token:bob" || s.Command.RequestedBy != "token:alice" {
		t.Fatalf("signed command: %v %+v", err, s)
	}
	if _, err := e.svc.Cancel(ctx, alice, id); code(err) != "conflict" {
		t.Errorf("cancel after delivery: %v", err)
	}
	// Another agent cannot answer for it; this one can, once.
	res, _ := json.Marshal(command.Result{ID: id, Status: command.Succeeded, Output: json.RawMessage(`{"isolated":true}`)})
	if err := e.svc.Report(ctx, "agent-b", res); !errors.Is(err, transport.ErrUnknownAction) {
		t.Errorf("report by another agent: %v", err)
	}
	if err := e.svc.Report(ctx, "agent-a", res); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Report(ctx, "agent-a", res); !errors.Is(err, transport.ErrUnknownAction) {
		t.Errorf("second report: %v", err)
	}
	got, _ := e.svc.Get(ctx, id)
	if got.State != respond.Succeeded || string(got.Output) != `{"isolated":true}` {
		t.Errorf("after result: %+v", got)
	}
	want := []string{"action.request token:alice", "action.denied token:alice", "action.denied token:ann", "action.approve token:bob",
		"action.sign token:bob", "action.deliver agent:agent-a", "action.result_refused agent:agent-b", "action.result agent:agent-a",
		"action.result_refused agent:agent-a"}
	if g := strings.Join(e.verbs(t), "\n"); g != strings.Join(want, "\n") {
		t.Errorf("audit trail:\n%s\nwant\n%s", g, strings.Join(want, "\n"))
	}
}

func TestCancelAndExpiry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a1, _ := e.svc.Request(ctx, ann, respond.Request{Type: "query", AgentID: "agent-a", Args: map[string]string{"name": "users"}})
	if _, err := e.svc.Cancel(ctx, vic, a1[0].ID); code(err) != "forbidden" {
		t.Errorf("viewer cancel: %v", err)
	}
	if c, err := e.svc.Cancel(ctx, ann, a1[0].ID); err != nil || c.State != respond.Cancelled {
		t.Fatalf("cancel: %v", err)
	}
	a2, _ := e.svc.Request(ctx, ann, respond.Request{Type: "query", AgentID: "agent-a", Args: map[string]string{"name": "users"}})
	a3, _ := e.svc.Request(ctx, ann, respond.Request{Type: "query", AgentID: "agent-b", Args: map[string]string{"name": "users"}})
	if ds, _ := e.svc.Poll(ctx, "agent-b", 0); len(ds) != 1 {
		t.Fatal("agent-b got no command")
	}
	e.clock = e.clock.Add(6 * time.Minute) // past the 5 min lifetime
	if ds, _ := e.svc.Poll(ctx, "agent-a", 0); len(ds) != 0 {
		t.Fatal("an expired command was delivered")
	}
	if a, _ := e.svc.Get(ctx, a2[0].ID); a.State != respond.Expired {
		t.Errorf("pending past expiry: %s", a.State)
	}
	if a, _ := e.svc.Get(ctx, a3[0].ID); a.State != respond.Delivered {
		t.Errorf("delivered within grace: %s", a.State)
	}
	e.clock = e.clock.Add(respond.ResultGrace)
	e.svc.List(ctx, respond.Filter{})
	if a, _ := e.svc.Get(ctx, a3[0].ID); a.State != respond.Expired {
		t.Errorf("delivered past grace: %s", a.State)
	}
}

// TestPollWakes: a waiting poll returns as soon as a command is queued.
func TestPollWakes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	got := make(chan int, 1)
	go func() {
		ds, _ := e.svc.Poll(ctx, "agent-a", 20*time.Second)
		got <- len(ds)
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	e.svc.Request(ctx, ann, respond.Request{Type: "query", AgentID: "agent-a", Args: map[string]string{"name": "users"}})
	select {
	case n := <-got:
		if n != 1 || time.Since(start) > 2*time.Second {
			t.Errorf("poll returned %d after %v", n, time.Since(start))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("poll not woken")
	}
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pki", "actions.key")
	k1, err := respond.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", fi.Mode())
	}
	k2, err := respond.LoadOrCreateKey(path)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("reload: %v", err)
	}
	os.Chmod(path, 0o644)
	if _, err := respond.LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key: %v", err)
	}
}
