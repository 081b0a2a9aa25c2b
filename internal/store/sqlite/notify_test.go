package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/notify"
)

// A stored delivery whose message cannot be decoded is failed by the claim
// instead of making every later claim fail.
func TestClaimFailsUnreadableDelivery(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "n.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	now := time.Now()
	b := &notify.Batch{Deliveries: []notify.Delivery{
		{ChannelID: 1, Message: notify.Message{Event: notify.EventTest}, NextAt: now, CreatedAt: now},
		{ChannelID: 1, Message: notify.Message{Event: notify.EventTest}, NextAt: now, CreatedAt: now},
	}}
	if err := d.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := d.w.ExecContext(ctx, `UPDATE notify_outbox SET message = '{"event": 7' WHERE id = ?`, b.Deliveries[0].ID); err != nil {
		t.Fatal(err)
	}
	got, err := d.ClaimDeliveries(ctx, now, time.Minute, 10)
	if err != nil || len(got) != 1 || got[0].ID != b.Deliveries[1].ID {
		t.Fatalf("claim = %+v, %v; want only the readable delivery", got, err)
	}
	var state, lastErr string
	if err := d.r.QueryRowContext(ctx, `SELECT state, last_error FROM notify_outbox WHERE id = ?`, b.Deliveries[0].ID).Scan(&state, &lastErr); err != nil {
		t.Fatal(err)
	}
	if state != "failed" || lastErr == "" {
		t.Errorf("unreadable delivery: state %q, error %q", state, lastErr)
	}
}
