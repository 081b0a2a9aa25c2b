package web

import (
	"context"
	"net/http"

	"github.com/vigil-edr/vigil/internal/inventory"
)

// Inventory serves hosts' latest complete inventories; inventory.Store
// (store/sqlite's DB) satisfies it.
type Inventory interface {
	// HostInventory returns an empty inventory (no SnapshotID) for a host
	// that has not sent a complete snapshot yet.
	HostInventory(ctx context.Context, agentID string) (inventory.Host, error)
}

// getHostInventory answers GET /api/v1/hosts/{id}/inventory: 404 for an
// unknown host, an inventory with an empty snapshot_id and empty lists for
// a host that has not completed a snapshot yet.
func (s *Server) getHostInventory(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Inventory == nil {
		return notConfigured("inventories")
	}
	a, err := s.hostByPath(r)
	if err != nil {
		return err
	}
	h, err := s.opts.Inventory.HostInventory(r.Context(), a.ID)
	if err != nil {
		return err
	}
	h.AgentID = a.ID
	// Lists, never null, so clients need not tell "none" from "unknown".
	h.Packages, h.Users, h.Groups = orEmpty(h.Packages), orEmpty(h.Users), orEmpty(h.Groups)
	h.Ports, h.Services, h.Modules = orEmpty(h.Ports), orEmpty(h.Services), orEmpty(h.Modules)
	writeJSON(w, http.StatusOK, h)
	return nil
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
