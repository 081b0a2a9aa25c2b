package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publish stores data as one message on the agent's subject and returns
// after JetStream acknowledged it (see Delivery in the package doc). msgID
// names the message for JetStream's duplicate window; hdr adds headers. The
// HeaderAgent header is always agentID, whatever hdr says. Publish returns
// ErrFull when the stream is full and ErrTooLarge for a message over the
// server's maximum payload.
func (b *Bus) Publish(ctx context.Context, agentID, msgID string, data []byte, hdr map[string]string) error {
	if b.nc.IsClosed() {
		return ErrClosed
	}
	if int64(len(data)) > b.nc.MaxPayload()-4096 {
		return fmt.Errorf("%w: %d bytes, the server allows %d", ErrTooLarge, len(data), b.nc.MaxPayload())
	}
	m := nats.NewMsg(subject(agentID))
	m.Data = data
	for k, v := range hdr {
		m.Header.Set(k, v)
	}
	m.Header.Set(HeaderAgent, agentID)
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	_, err := b.js.PublishMsg(ctx, m, opts...)
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == 10077 && strings.Contains(apiErr.Description, "maximum") {
			return fmt.Errorf("%w (%s)", ErrFull, apiErr.Description)
		}
		if errors.Is(err, nats.ErrMaxPayload) {
			return fmt.Errorf("%w: %v", ErrTooLarge, err)
		}
		return fmt.Errorf("bus: publish: %w", err)
	}
	return nil
}

// Msg is one batch handed to a Consume handler. Data and Headers belong to
// the handler until it returns; copy what you keep.
type Msg struct {
	Data    []byte
	Headers map[string]string // first value of each header
	AgentID string            // the HeaderAgent header
	// Seq is the message's stream sequence: unique and stable across
	// redeliveries, so a consumer can use it to recognise a duplicate.
	Seq uint64
	// Delivered counts deliveries of this message to the durable, from 1.
	Delivered uint64
}

// Consume runs a pull consumer on durable until ctx is done (it then returns
// nil) or the bus fails. It fetches up to batch messages at a time and calls
// handler with those it got, in stream order; nil from the handler acks them
// all, an error naks them all for redelivery after a second. The durable is
// created if it does not exist. Several Consume calls with the same durable,
// in one process or many, share its messages.
func (b *Bus) Consume(ctx context.Context, durable string, batch int, handler func(context.Context, []Msg) error) error {
	if !validToken(durable) {
		return fmt.Errorf("bus: durable name %q: use letters, digits, '-' and '_'", durable)
	}
	batch = max(1, min(batch, b.opts.MaxAckPending))
	cons, err := b.consumer(ctx, durable)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	msgs := make([]Msg, 0, batch)
	raw := make([]jetstream.Msg, 0, batch)
	for ctx.Err() == nil {
		if b.nc.IsClosed() {
			return ErrClosed
		}
		// Wait for the first batch, then take whatever else is already
		// there without waiting: a lone batch is handled at once (latency),
		// a backlog in groups of up to batch (throughput).
		msgs, raw = msgs[:0], raw[:0]
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		mb, err := cons.Fetch(1, jetstream.FetchContext(fctx))
		if err == nil {
			b.collect(mb, &msgs, &raw, durable)
			if len(msgs) > 0 && batch > 1 {
				if more, err := cons.FetchNoWait(batch - 1); err == nil {
					b.collect(more, &msgs, &raw, durable)
				}
			}
		}
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			b.log.Warn("bus: fetch failed", "durable", durable, "err", err)
			sleep(ctx, time.Second)
			continue
		}
		if len(msgs) == 0 {
			continue
		}
		if herr := handler(ctx, msgs); herr != nil {
			b.log.Warn("bus: handler failed, batches will be redelivered", "durable", durable, "messages", len(msgs), "err", herr)
			for _, m := range raw {
				_ = m.NakWithDelay(time.Second)
			}
			continue
		}
		for _, m := range raw {
			// A lost ack means a redelivery after AckWait: at-least-once.
			_ = m.Ack()
		}
	}
	return nil
}

// collect appends the messages of one fetch.
func (b *Bus) collect(mb jetstream.MessageBatch, msgs *[]Msg, raw *[]jetstream.Msg, durable string) {
	for m := range mb.Messages() {
		md, err := m.Metadata()
		if err != nil {
			continue // not a JetStream message; cannot happen on a pull consumer
		}
		h := make(map[string]string, len(m.Headers()))
		for k, v := range m.Headers() {
			if len(v) > 0 {
				h[k] = v[0]
			}
		}
		*msgs = append(*msgs, Msg{
			Data:      m.Data(),
			Headers:   h,
			AgentID:   h[HeaderAgent],
			Seq:       md.Sequence.Stream,
			Delivered: md.NumDelivered,
		})
		*raw = append(*raw, m)
	}
	if err := mb.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && !errors.Is(err, nats.ErrTimeout) {
		b.log.Warn("bus: fetch ended with an error", "durable", durable, "err", err)
	}
}

// Lag returns how many batches the stream holds: those not yet acknowledged
// by every durable. It is the backlog between ingest and its consumers.
func (b *Bus) Lag(ctx context.Context) (uint64, error) {
	s, err := b.js.Stream(ctx, StreamName)
	if err != nil {
		return 0, fmt.Errorf("bus: %w", err)
	}
	return s.CachedInfo().State.Msgs, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
