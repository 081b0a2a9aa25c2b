// Package ingest receives agents' event batches from transport, checks them
// and publishes each accepted batch to the bus as one message.
//
// For every batch, in order: a quick rate check (an agent with no tokens
// left is refused before its body is decoded), wire.Check with the
// configured limits (a zstd body is published as received, so ingest only
// checks it and the detection worker decodes it once; a body in another
// encoding is decoded with wire.Decode and re-encoded as zstd), the
// per-agent token bucket charged with the batch's
// event count, then one Publish whose message id is
// <agent>:<boot_epoch>:<first seq>:<last seq>:<hash> so that JetStream's
// duplicate window absorbs quick retries. The agent id is the caller's (the
// verified certificate's), never the body's. A 200 answer means the batch is
// stored on the bus; the durable dedupe by (agent, boot epoch, seq) is the
// event store's job, not this package's.
//
// Answers: 200 {"accepted":N,"max_seq":M}; otherwise {"code","message"} with
// the code's status from the wire code table, plus Retry-After (seconds) for
// 429 and 503.
//
// Server-side only; imports wire, never bus (it declares the Publisher it
// needs).
//
// # Concurrency
//
// An Ingester is safe for concurrent use by any number of request handlers.
// Batches of one agent sent concurrently are published in no particular
// order; consumers order by sequence number if they need to.
package ingest
