// Package spool is the agent's on-disk write-ahead buffer: sensors append
// events to it, a background group commit makes them durable, and the sender
// reads durable records, delivers them and acknowledges them, after which the
// spool deletes them. Its contract is "acknowledged means durable": a record
// is only ever handed to the sender after it has been fsynced, and an Ack is
// fsynced before Ack returns.
//
// Agent-side; standard library only. Server packages never import spool and
// spool imports nothing from Vigil. The byte format is specified in
// format.md in this directory.
//
// # Numbering
//
// Every record gets a sequence number within the spool's boot epoch
// (BootEpoch, chosen when the directory is created and persisted; a wiped
// spool gets a new one). Numbers start at 1, increase by one per Append and
// never repeat within an epoch, across restarts and crashes included: after
// a crash numbering continues after the last record found on disk or the last
// acknowledged or dropped number, whichever is higher. A number can only be
// reused if its record was never reported durable (a torn tail), so it was
// never handed to the sender. The last number is 2^64−2; after it Append
// returns ErrExhausted. The server dedupes by (agent, boot epoch,
// sequence); delivery is at least once.
//
// # Durability
//
// Append copies the payload into an in-memory buffer and returns at once.
// A group commit (one write and one fsync for everything appended since the
// last one) runs every Options.SyncEvery, as soon as Options.SyncEvents
// records are waiting, or when Sync is called. Durable reports the highest
// sequence number covered by a completed fsync, and Read returns only records
// at or below it. If an fsync or write fails, the spool stops accepting
// records (every later call returns the error): after a failed fsync the
// kernel may have dropped the data, so the only safe recovery is to Close and
// Open again, which rescans the files.
//
// # Bound
//
// The spool holds at most Options.MaxBytes of segment files. When an Append
// would exceed it, the oldest whole segments are deleted, acknowledged or
// not, and the unacknowledged records they held are added to
// Stats().Dropped, an exact count persisted with the acknowledgement state so
// the agent can report a gap. New records are never refused for lack of
// space. Records lost to disk corruption found on recovery are not counted in
// Dropped; Read simply skips their numbers.
//
// # Ordering and goroutine safety
//
// A Spool is safe for concurrent use. Append may be called from any number
// of goroutines; the order of sequence numbers is the order in which Appends
// took the spool's lock, and Read returns records in sequence order. Read and
// Ack are meant for one sender goroutine: they may run concurrently with
// Appends and with each other, but concurrent Reads are serialised. Read
// returns fresh payload slices the caller owns; Append does not keep the
// caller's slice. The background committer is stopped by Close, which makes a
// final group commit; every method returns ErrClosed afterwards.
//
// Only one process may open a directory at a time (an advisory lock on
// Unix); a second Open fails with ErrLocked.
package spool
