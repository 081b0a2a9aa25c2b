// Package bus carries event batches between ingest and detection over NATS
// JetStream: an embedded server by default (file store, every acknowledged
// message synced to disk), or an external JetStream cluster by URL, through
// the same code path.
//
// Server-side packages may import bus; agents must not.
package bus
