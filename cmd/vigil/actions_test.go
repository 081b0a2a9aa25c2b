package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/agent"
	"github.com/vigil-edr/vigil/internal/agent/procfs"
	"github.com/vigil-edr/vigil/internal/audit"
	"github.com/vigil-edr/vigil/internal/command"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/respond"
	"github.com/vigil-edr/vigil/internal/transport/client"
	"github.com/vigil-edr/vigil/internal/wire"
)

type actionResp struct {
	ID         string            `json:"id"`
	AgentID    string            `json:"agent_id"`
	Type       string            `json:"type"`
	Args       map[string]string `json:"args"`
	State      string            `json:"state"`
	Reason     string            `json:"reason"`
	Error      string            `json:"error"`
	Output     json.RawMessage   `json:"output"`
	FileSHA256 string            `json:"file_sha256"`
}

// actions is the harness of the end-to-end action tests: a real server, the
// local agent enrolled through `vigil up`'s path and running with its
// action loop, and tokens per role.
type actions struct {
	t       *testing.T
	s       *Server
	agentID string
	tokens  map[string]string // admin, analyst, viewer
}

func startActions(t *testing.T, configure ...func(*agent.Config)) *actions {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the agent kills, quarantines and restores with owners")
	}
	s, admin := testServer(t)
	url := "https://" + s.Addr().String()
	acfg, err := enrolLocalAgent(context.Background(), s, url)
	if err != nil {
		t.Fatal(err)
	}
	acfg.Sensors.Process, acfg.Sensors.AuthLog, acfg.Sensors.FIM, acfg.Sensors.Network, acfg.Sensors.Inventory = false, false, false, false, false
	acfg.HealthEvery = time.Hour
	for _, f := range configure {
		f(&acfg)
	}
	id, err := agent.LoadIdentity(acfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(id.ActionKey) != ed25519.PublicKeySize {
		t.Fatalf("enrolment saved no action key")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- agent.RunHost(ctx, acfg, s.cfg.Logger, agent.HostOptions{Shared: true}) }()
	t.Cleanup(func() { cancel(); <-done })
	a := &actions{t: t, s: s, agentID: id.AgentID, tokens: map[string]string{"admin": admin}}
	for _, role := range []string{"analyst", "viewer"} {
		var tok struct {
			Secret string `json:"secret"`
		}
		if code := api(t, s, admin, "POST", "/api/v1/tokens", map[string]any{"name": role + "-1", "role": role}, &tok); code != 201 {
			t.Fatalf("create %s token: %d", role, code)
		}
		a.tokens[role] = tok.Secret
	}
	return a
}

// request creates an action as who and returns it, or the status.
func (a *actions) request(who, typ string, args map[string]string) (actionResp, int) {
	var out struct {
		Items []actionResp `json:"items"`
	}
	code := api(a.t, a.s, a.tokens[who], "POST", "/api/v1/actions", map[string]any{"type": typ, "agent_id": a.agentID, "args": args}, &out)
	if code != 201 {
		return actionResp{}, code
	}
	return out.Items[0], code
}

// wait polls the action until it reaches a final state.
func (a *actions) wait(id string) actionResp {
	a.t.Helper()
	var r actionResp
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if code := api(a.t, a.s, a.tokens["admin"], "GET", "/api/v1/actions/"+id, nil, &r); code != 200 {
			a.t.Fatalf("get action: %d", code)
		}
		switch r.State {
		case "succeeded", "failed", "refused", "expired", "cancelled":
			return r
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("action %s still %s", id, r.State)
		}
	}
}

func (a *actions) run(who, typ string, args map[string]string) actionResp {
	a.t.Helper()
	r, code := a.request(who, typ, args)
	if code != 201 {
		a.t.Fatalf("%s %s as %s: %d", typ, args, who, code)
	}
	return a.wait(r.ID)
}

// audited waits (an audit entry follows the state change it records) for
// an entry with verb that match accepts.
func (a *actions) audited(verb string, match func(audit.Entry) bool) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, e := range a.auditEntries(verb) {
			if match == nil || match(e) {
				return true
			}
		}
	}
	return false
}

// auditEntries lists the audit entries with verb.
func (a *actions) auditEntries(verb string) []audit.Entry {
	es, err := a.s.db.AuditEntries(context.Background(), 0, 100000)
	if err != nil {
		a.t.Fatal(err)
	}
	var out []audit.Entry
	for _, e := range es {
		if e.Action == verb {
			out = append(out, e)
		}
	}
	return out
}

// TestActionsEndToEnd: against a real server and the enrolled local agent,
// a live query finds a running process and a kill by its pid and start time
// ends it; a file is quarantined and restored byte for byte; a file is
// collected and downloaded. Every step is in the audit log, whose chain
// verifies.
func TestActionsEndToEnd(t *testing.T) {
	a := startActions(t)
	sleeper := exec.Command("sleep", "300")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleeper.Process.Kill()
	exited := make(chan error, 1)
	go func() { exited <- sleeper.Wait() }()

	// processes query → start time of the sleep.
	q := a.run("analyst", "query", map[string]string{"name": "processes"})
	if q.State != "succeeded" {
		t.Fatalf("query: %+v", q)
	}
	var qr struct {
		Rows []struct {
			PID   int    `json:"pid"`
			Start uint64 `json:"start_time"`
		} `json:"rows"`
	}
	json.Unmarshal(q.Output, &qr)
	var start uint64
	for _, p := range qr.Rows {
		if p.PID == sleeper.Process.Pid {
			start = p.Start
		}
	}
	if start == 0 {
		t.Fatalf("the sleep (pid %d) is not in the processes query", sleeper.Process.Pid)
	}
	pid := strconv.Itoa(sleeper.Process.Pid)
	// A wrong start time (a reused pid) fails and the process lives on.
	if r := a.run("analyst", "kill", map[string]string{"pid": pid, "start_time": strconv.FormatUint(start+1, 10)}); r.State != "failed" {
		t.Errorf("kill with the wrong start time: %+v", r)
	}
	select {
	case err := <-exited:
		t.Fatalf("sleep ended after a refused kill: %v", err)
	default:
	}
	if r := a.run("analyst", "kill", map[string]string{"pid": pid, "start_time": strconv.FormatUint(start, 10)}); r.State != "succeeded" {
		t.Fatalf("kill: %+v", r)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("sleep ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("sleep still running after the kill")
	}

	// Quarantine and restore.
	path := filepath.Join(t.TempDir(), "dropper.bin")
	data := make([]byte, 70_000)
	rand.Read(data)
	os.WriteFile(path, data, 0o640)
	os.Chown(path, 4321, 4321)
	qa := a.run("analyst", "quarantine", map[string]string{"path": path})
	if qa.State != "succeeded" {
		t.Fatalf("quarantine: %+v", qa)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file still there after quarantine: %v", err)
	}
	var qo struct {
		ID string `json:"quarantine_id"`
	}
	json.Unmarshal(qa.Output, &qo)
	if r := a.run("analyst", "restore", map[string]string{"quarantine_id": qo.ID}); r.State != "succeeded" {
		t.Fatalf("restore: %+v", r)
	}
	got, err := os.ReadFile(path)
	fi, _ := os.Stat(path)
	if err != nil || !bytes.Equal(got, data) || fi.Mode().Perm() != 0o640 || fi.Sys().(*syscall.Stat_t).Uid != 4321 {
		t.Fatalf("restored file differs: %v %v", err, fi)
	}

	// Collect and download.
	c := a.run("analyst", "collect", map[string]string{"path": path})
	if c.State != "succeeded" || c.FileSHA256 == "" {
		t.Fatalf("collect: %+v", c)
	}
	body := a.download(c.ID, "analyst")
	if !bytes.Equal(body, data) {
		t.Fatal("downloaded file differs")
	}
	if _, err := os.Stat(filepath.Join(a.s.cfg.Data, "collected", c.FileSHA256[:2], c.FileSHA256)); err != nil {
		t.Errorf("collected file not stored by hash: %v", err)
	}

	for _, verb := range []string{"action.request", "action.sign", "action.deliver", "action.result", "action.file", "action.file_read"} {
		if !a.audited(verb, nil) {
			t.Errorf("no %s audit entry", verb)
		}
	}
	if _, err := audit.Verify(context.Background(), a.s.db, nil); err != nil {
		t.Fatal(err)
	}
}

// TestKillFromProcessEvent: the process sensor's exec event of a running
// sleep reaches the server's store with ProcessId and ProcessStartTime (what
// the alert page's Kill button posts), and a kill with those two values
// kills the sleep.
func TestKillFromProcessEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("kernel audit and a real server; runs in the integration step")
	}
	a := startActions(t, func(c *agent.Config) { c.Sensors.Process = true })
	get := func(r eventstore.Record, name string) string {
		for _, f := range r.Fields {
			if f.Name == name {
				return f.Value
			}
		}
		return ""
	}
	var sleeper *exec.Cmd
	var exited chan error
	var ev eventstore.Record
	// The sensor starts with the agent: exec sleeps until one is reported.
	for attempt := 0; ev.ID == 0; attempt++ {
		if attempt == 15 {
			t.Fatal("no exec event of the sleep in the store after 15 tries")
		}
		marker := fmt.Sprintf("vigil-e2e-kill-%d-%d", os.Getpid(), attempt)
		sleeper = exec.Command("/bin/sleep", "300")
		sleeper.Args[0] = marker
		if err := sleeper.Start(); err != nil {
			t.Fatal(err)
		}
		exited = make(chan error, 1)
		go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(sleeper, exited)
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline) && ev.ID == 0; time.Sleep(50 * time.Millisecond) {
			rs, err := a.s.db.Search(context.Background(), eventstore.Query{AgentID: a.agentID, Category: "process_creation",
				Fields: []eventstore.FieldFilter{{Name: "ProcessId", Value: strconv.Itoa(sleeper.Process.Pid)}}})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				if strings.HasPrefix(get(r, "CommandLine"), marker) {
					ev = r
				}
			}
		}
		if ev.ID == 0 {
			sleeper.Process.Kill()
			<-exited
		}
	}
	defer sleeper.Process.Kill()
	start := get(ev, "ProcessStartTime")
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", sleeper.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := procfs.ParseStat(b); err != nil || start != strconv.FormatUint(st.Start, 10) {
		t.Fatalf("stored ProcessStartTime %q, /proc/PID/stat %q (%v)", start, b, err)
	}
	t.Logf("event %d: ProcessId %s ProcessStartTime %s", ev.ID, get(ev, "ProcessId"), start)
	if r := a.run("analyst", "kill", map[string]string{"pid": get(ev, "ProcessId"), "start_time": start}); r.State != "succeeded" {
		t.Fatalf("kill: %+v", r)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("sleep ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("sleep still running after the kill")
	}
}

func (a *actions) download(id, who string) []byte {
	req, _ := http.NewRequest("GET", "https://"+a.s.Addr().String()+"/api/v1/actions/"+id+"/file", nil)
	req.Header.Set("Authorization", "Bearer "+a.tokens[who])
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: a.s.auth.CAPool(), ServerName: "127.0.0.1"}}}
	resp, err := hc.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		a.t.Fatalf("download: %d %s", resp.StatusCode, b)
	}
	return b
}

// TestActionsRefused: a principal without the type's permission is refused
// by the API; the agent refuses a forged signature, a command for another
// agent, an expired command, a replayed nonce and an action its local
// policy does not allow. Each refusal is in the audit log and nothing ran.
func TestActionsRefused(t *testing.T) {
	a := startActions(t)
	ctx := context.Background()

	// The API: analysts may not isolate, viewers may not request at all.
	if _, code := a.request("analyst", "isolate", nil); code != 403 {
		t.Errorf("analyst isolate: %d", code)
	}
	if _, code := a.request("viewer", "query", map[string]string{"name": "users"}); code != 403 {
		t.Errorf("viewer query: %d", code)
	}
	denied := a.auditEntries("action.denied")
	if len(denied) != 1 || denied[0].Actor != "token:analyst-1" || !strings.Contains(denied[0].Detail, "type=isolate") {
		t.Errorf("denied entries %+v", denied)
	}

	// Local policy: isolation is not allowed on this host by default.
	if r := a.run("admin", "isolate", nil); r.State != "refused" || r.Reason != command.ReasonPolicy {
		t.Errorf("isolate on a host without it in its policy: %+v", r)
	}

	// Commands that did not come from the server's signing path, put
	// straight into the queue (a compromised database or queue).
	key, err := respond.LoadOrCreateKey(filepath.Join(a.s.cfg.Data, "pki", "actions.key"))
	if err != nil {
		t.Fatal(err)
	}
	_, forged, _ := ed25519.GenerateKey(rand.Reader)
	first := a.run("admin", "query", map[string]string{"name": "users"})
	var firstSigned command.Signed
	row, _ := a.s.db.GetAction(ctx, first.ID)
	json.Unmarshal(row.Signed, &firstSigned)

	now := time.Now().UTC()
	mk := func(mut func(c *command.Command), signer ed25519.PrivateKey) string {
		id := fmt.Sprintf("inj-%d", time.Now().UnixNano())
		var n [16]byte
		rand.Read(n[:])
		c := command.Command{Version: 1, ID: id, Nonce: hex.EncodeToString(n[:]), Target: a.agentID, Action: command.Query,
			Args: map[string]string{"name": "users"}, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute), RequestedBy: "token:mallory"}
		mut(&c)
		signed, err := command.Sign(signer, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.s.db.CreateActions(ctx, []respond.Action{{ID: id, Group: id, AgentID: a.agentID, Type: c.Action, Args: c.Args,
			State: respond.Pending, RequestedBy: "token:mallory", RequestedAt: now, Signed: signed, ExpiresAt: now.Add(5 * time.Minute)}}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	cases := []struct {
		name, reason string
		id           string
	}{
		{"forged signature", command.ReasonSignature, mk(func(*command.Command) {}, forged)},
		{"wrong target", command.ReasonTarget, mk(func(c *command.Command) { c.Target = "another-agent" }, key)},
		{"expired", command.ReasonExpired, mk(func(c *command.Command) {
			c.IssuedAt, c.ExpiresAt = now.Add(-20*time.Minute), now.Add(-15*time.Minute)
		}, key)},
		{"replayed nonce", command.ReasonReplay, mk(func(c *command.Command) { c.Nonce = firstSigned.Command.Nonce }, key)},
		{"policy (block)", command.ReasonPolicy, mk(func(c *command.Command) {
			c.Action, c.Args = command.Block, map[string]string{"cidr": "192.0.2.1", "duration": "1h"}
		}, key)},
	}
	// The replay of the very bytes of an executed command, under a new row.
	replayID := "inj-replay"
	if err := a.s.db.CreateActions(ctx, []respond.Action{{ID: replayID, Group: replayID, AgentID: a.agentID, Type: "query",
		Args: map[string]string{"name": "users"}, State: respond.Pending, RequestedBy: "token:mallory", RequestedAt: now,
		Signed: row.Signed, ExpiresAt: now.Add(5 * time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	cases = append(cases, struct{ name, reason, id string }{"replayed bytes", command.ReasonMalformed, replayID})
	for _, c := range cases {
		r := a.wait(c.id)
		if r.State != "refused" || r.Reason != c.reason {
			t.Errorf("%s: %+v, want refused (%s)", c.name, r, c.reason)
		}
		if !a.audited("action.refused", func(e audit.Entry) bool {
			return e.Target == "action:"+c.id && strings.Contains(e.Detail, "reason="+c.reason)
		}) {
			t.Errorf("%s: no action.refused audit entry", c.name)
		}
	}
	if _, err := audit.Verify(ctx, a.s.db, nil); err != nil {
		t.Fatal(err)
	}
}

// TestPlaybookEndToEnd: an analyst cannot create a playbook that isolates
// (403, audited); the analyst's query playbook runs on the agent of a real
// alert (an event the agent's identity sends, matched by the starter pack)
// and the agent answers it.
func TestPlaybookEndToEnd(t *testing.T) {
	a := startActions(t)
	if code := api(t, a.s, a.tokens["analyst"], "POST", "/api/v1/playbooks", map[string]any{"name": "isolate on credential access",
		"min_level": "high", "type": "isolate"}, nil); code != 403 {
		t.Fatalf("analyst isolate playbook: %d", code)
	}
	if !a.audited("action.denied", func(e audit.Entry) bool { return strings.Contains(e.Detail, "create playbook type=isolate") }) {
		t.Error("refused playbook creation not audited")
	}
	var pb struct {
		ID string `json:"id"`
	}
	if code := api(t, a.s, a.tokens["analyst"], "POST", "/api/v1/playbooks", map[string]any{"name": "users on credential access",
		"min_level": "high", "tags": []string{"attack.credential-access"}, "type": "query", "args": map[string]string{"name": "users"}}, &pb); code != 201 {
		t.Fatalf("create playbook: %d", code)
	}
	// The alert: the agent's own identity reports a shadow read.
	id, err := agent.LoadIdentity(filepath.Join(a.s.cfg.Data, "agent"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New("https://"+a.s.Addr().String(), id)
	if err != nil {
		t.Fatal(err)
	}
	ev := &event.Event{Product: "linux", Categories: []string{"process_creation"}, Time: time.Now().UTC()}
	ev.Add("Image", "/usr/bin/cat")
	ev.Add("CommandLine", "cat /etc/shadow")
	send(t, c, &wire.Batch{Version: wire.Version, BootEpoch: 7, Events: []wire.Event{wire.FromEvent(1, ev)}})

	var list struct {
		Items []actionResp `json:"items"`
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		api(t, a.s, a.tokens["admin"], "GET", "/api/v1/actions?agent_id="+a.agentID, nil, &list)
		if len(list.Items) > 0 && list.Items[0].State == "succeeded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no playbook action answered: %+v", list.Items)
		}
	}
	if got := list.Items[0]; got.Type != "query" || !strings.Contains(string(got.Output), `"root"`) {
		t.Errorf("playbook action %+v", got)
	}
	if !a.audited("action.request", func(e audit.Entry) bool {
		return e.Actor == "token:analyst-1" && strings.Contains(e.Detail, "via=playbook:"+pb.ID)
	}) {
		t.Error("the playbook's request is not audited as its creator via the playbook")
	}
}
