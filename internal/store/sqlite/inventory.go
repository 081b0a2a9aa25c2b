package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-edr/vigil/internal/inventory"
)

var _ inventory.Store = (*DB)(nil)

// stagedItem is one item inside inventory_chunks.items (a JSON array).
type stagedItem struct {
	Name string          `json:"n"`
	Data json.RawMessage `json:"d"`
}

// AddInventoryChunk stages one snapshot chunk and applies the snapshot when
// it is complete, all in one durable transaction (see inventory.Store).
func (d *DB) AddInventoryChunk(ctx context.Context, agentID string, c inventory.Chunk, now time.Time) (bool, error) {
	staged := make([]stagedItem, len(c.Items))
	for i, it := range c.Items {
		staged[i] = stagedItem{Name: it.Name, Data: it.Data}
	}
	items, err := json.Marshal(staged)
	if err != nil {
		return false, err
	}
	applied := false
	err = d.writeTx(ctx, true, func(tx *sql.Tx) error {
		var curID string
		var curCollected int64
		err := tx.QueryRowContext(ctx, `SELECT snapshot_id, collected FROM inventory_hosts WHERE agent_id = ?`, agentID).Scan(&curID, &curCollected)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case curID == c.SnapshotID || curCollected > ts(c.Collected):
			return nil // applied already, or older than what the host has
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM inventory_chunks WHERE agent_id = ? AND received_at < ?`,
			agentID, ts(now.Add(-inventory.StagingTTL))); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO inventory_chunks(agent_id, snapshot_id, chunk_index, chunk_count, kind, collected, items, received_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, agentID, c.SnapshotID, c.Index, c.Count, c.Kind, ts(c.Collected), string(items), ts(now)); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM inventory_chunks WHERE agent_id = ? AND snapshot_id = ? AND chunk_count = ?`,
			agentID, c.SnapshotID, c.Count).Scan(&n); err != nil {
			return err
		}
		if n < c.Count {
			return nil
		}
		if err := applySnapshot(ctx, tx, agentID, c, now); err != nil {
			return err
		}
		applied = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: inventory chunk %s/%d of agent %s: %w", c.SnapshotID, c.Index, agentID, err)
	}
	return applied, nil
}

// applySnapshot replaces the host's items of every kind the complete
// snapshot holds, records it as current and drops its staged chunks along
// with any older ones.
func applySnapshot(ctx context.Context, tx *sql.Tx, agentID string, c inventory.Chunk, now time.Time) error {
	rows, err := tx.QueryContext(ctx, `SELECT kind, items FROM inventory_chunks WHERE agent_id = ? AND snapshot_id = ? ORDER BY chunk_index`,
		agentID, c.SnapshotID)
	if err != nil {
		return err
	}
	type chunk struct {
		kind  string
		items []stagedItem
	}
	var chunks []chunk
	for rows.Next() {
		var ch chunk
		var items string
		if err := rows.Scan(&ch.kind, &items); err != nil {
			rows.Close()
			return err
		}
		if err := json.Unmarshal([]byte(items), &ch.items); err != nil {
			rows.Close()
			return fmt.Errorf("staged items: %w", err)
		}
		chunks = append(chunks, ch)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	cleared := map[string]bool{}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO inventory_items(agent_id, kind, name, data) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	for _, ch := range chunks {
		if !cleared[ch.kind] {
			cleared[ch.kind] = true
			if _, err := tx.ExecContext(ctx, `DELETE FROM inventory_items WHERE agent_id = ? AND kind = ?`, agentID, ch.kind); err != nil {
				return err
			}
		}
		for _, it := range ch.items {
			if _, err := ins.ExecContext(ctx, agentID, ch.kind, it.Name, string(it.Data)); err != nil {
				return err
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO inventory_hosts(agent_id, snapshot_id, collected, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT(agent_id) DO UPDATE SET snapshot_id = excluded.snapshot_id, collected = excluded.collected, updated_at = excluded.updated_at`,
		agentID, c.SnapshotID, ts(c.Collected), ts(now)); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM inventory_chunks WHERE agent_id = ? AND (snapshot_id = ? OR collected <= ?)`,
		agentID, c.SnapshotID, ts(c.Collected))
	return err
}

// HostInventory returns the host's latest complete inventory.
func (d *DB) HostInventory(ctx context.Context, agentID string) (inventory.Host, error) {
	h := inventory.Host{AgentID: agentID}
	var collected, updated int64
	err := d.r.QueryRowContext(ctx, `SELECT snapshot_id, collected, updated_at FROM inventory_hosts WHERE agent_id = ?`, agentID).
		Scan(&h.SnapshotID, &collected, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return h, nil
	}
	if err != nil {
		return h, fmt.Errorf("sqlite: inventory of %s: %w", agentID, err)
	}
	h.Collected, h.Updated = fromTS(collected), fromTS(updated)
	rows, err := d.r.QueryContext(ctx, `SELECT kind, name, data FROM inventory_items WHERE agent_id = ? ORDER BY kind, name`, agentID)
	if err != nil {
		return h, fmt.Errorf("sqlite: inventory of %s: %w", agentID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var it inventory.Item
		var data string
		if err := rows.Scan(&it.Kind, &it.Name, &data); err != nil {
			return h, err
		}
		it.Data = []byte(data)
		if err := h.Add(it); err != nil {
			return h, fmt.Errorf("sqlite: inventory of %s: %s %s: %w", agentID, it.Kind, it.Name, err)
		}
	}
	return h, rows.Err()
}
