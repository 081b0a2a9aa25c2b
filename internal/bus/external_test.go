package bus

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// --nats URL runs the same code against a separately running JetStream
// server: here a real nats-server listening on loopback, as an operator's
// would.
func TestExternalServer(t *testing.T) {
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		MaxPayload: MaxPayload,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Open(ctx, Options{URL: ns.ClientURL(), Replicas: 1, Durables: []string{"detect"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := 0; i < 5; i++ {
		if err := b.Publish(ctx, "agent-1", fmt.Sprint("m", i), []byte(fmt.Sprint("batch ", i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	var got atomic.Int64
	cctx, ccancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- b.Consume(cctx, "detect", 16, func(_ context.Context, ms []Msg) error {
			for _, m := range ms {
				if m.AgentID != "agent-1" {
					t.Errorf("agent header %q", m.AgentID)
				}
			}
			if got.Add(int64(len(ms))) >= 5 {
				ccancel()
			}
			return nil
		})
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got.Load() != 5 {
		t.Fatalf("consumed %d of 5 batches from the external server", got.Load())
	}
	checkFor(t, 10*time.Second, func() error {
		lag, err := b.Lag(ctx)
		if err == nil && lag != 0 {
			err = fmt.Errorf("lag %d after every batch was acknowledged", lag)
		}
		return err
	})
}
