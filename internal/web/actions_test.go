package web

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/vigil-edr/vigil/internal/audit"
	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/respond"
)

// seedActions wires a real respond.Service over the harness's SQLite file
// (the cases store) and seeds the actions the route matrix needs.
func (h *harness) seedActions(t *testing.T, be backend) {
	ctx := context.Background()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	files, err := respond.OpenFileStore(t.TempDir())
	must(t, err)
	h.actions, err = respond.New(respond.Options{Store: h.casesDB, Audit: audit.New(h.casesDB, nil), Agents: be, Key: key,
		Files: files, Approval: []string{"isolate"}, Playbooks: h.casesDB})
	must(t, err)
	seed := respond.Principal{Actor: "token:seed", Role: authz.RoleAdmin}
	as, err := h.actions.Request(ctx, seed, respond.Request{Type: "collect", AgentID: h.agentID, Args: map[string]string{"path": "/etc/hostname"}})
	must(t, err)
	h.actionFileID = as[0].ID
	if ds, err := h.actions.Poll(ctx, h.agentID, 0); err != nil || len(ds) != 1 {
		t.Fatalf("poll: %v %v", ds, err)
	}
	if _, _, err := h.actions.StoreFile(ctx, h.agentID, h.actionFileID, strings.NewReader("host-1\n")); err != nil {
		t.Fatal(err)
	}
	as, err = h.actions.Request(ctx, seed, respond.Request{Type: "query", AgentID: h.agentID, Args: map[string]string{"name": "users"}})
	must(t, err)
	h.actionCancelID = as[0].ID
	as, err = h.actions.Request(ctx, seed, respond.Request{Type: "isolate", AgentID: h.agentID})
	must(t, err)
	h.approveID = as[0].ID
	pb, err := h.actions.CreatePlaybook(ctx, seed, respond.Playbook{Name: "victim", MinLevel: "critical", Action: "query",
		Args: map[string]string{"name": "users"}})
	must(t, err)
	h.playbookID = pb.ID
}
