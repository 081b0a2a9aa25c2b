// Package bus carries event batches between ingest and detection over NATS
// JetStream: an embedded server by default (file store, every acknowledged
// message synced to disk), or an external JetStream cluster by URL, through
// the same code path.
//
// Server-side packages may import bus; agents must not.
//
// # Stream
//
// One stream, VIGIL_EVENTS, holds subjects vigil.events.<agent>, one message
// per batch (never one per event: a synced publish costs a disk write). It is
// file-backed with interest retention: a message stays until every durable
// consumer has acknowledged it, and is removed then. The durables that must
// see every batch are named in Options.Durables and created by Open, before
// anything is published, because JetStream drops a message of an interest
// stream that no consumer is interested in. The stream refuses new messages
// when it holds StreamMaxBytes (discard new): a full stream is backpressure
// that reaches the agents as 503 and never silently drops a batch that was
// already acknowledged to an agent. A durable nobody consumes therefore
// eventually stops ingestion; delete durables that are retired.
//
// # Delivery
//
// Publish returns only after JetStream acknowledged the message, which with
// the embedded server means it was fsynced (sync_interval: always); with an
// external cluster, that a quorum of replicas stored it. Message ids make a
// publish retried within JetStream's duplicate window (two minutes) a no-op.
//
// Consume is at-least-once: a batch whose handler failed, whose ack was lost,
// or that was in flight when a process stopped is delivered again, possibly
// to another consumer of the same durable. Consumers must tolerate
// duplicates (the event store drops them by agent, boot epoch and sequence).
//
// # Concurrency
//
// A Bus is safe for concurrent use. Any number of goroutines may Publish;
// any number of Consume calls, in this process or others, may share one
// durable and split its messages between them. Messages handed to one
// handler call are in stream order; across handler calls and consumers there
// is no ordering.
package bus
