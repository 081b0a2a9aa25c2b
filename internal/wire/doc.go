// Package wire defines the body an agent sends the server: a versioned JSON
// batch of events, optionally compressed with zstd or gzip, and the one table
// of error codes the batch endpoint answers with. The format is specified in
// prose in docs/wire.md; this package is its reference implementation.
//
// wire does no I/O. It imports only the standard library, internal/event and
// github.com/klauspost/compress, so both the agent and the server may import
// it.
//
// # Untrusted input
//
// Decode is written for bytes from the network. It never allocates more than
// the decompressed size limit for the body (a zip bomb is refused once the
// limit is reached, not after inflating it), checks nesting depth, UTF-8 and
// escapes with a cheap byte scan before any JSON decoding, and rejects rather
// than repairs: invalid UTF-8, a lone UTF-16 surrogate escape, null values,
// and fields that are not name/value string pairs are errors. Every error it
// returns is a *Error whose Code comes from the table in errors.go. Check
// accepts and refuses exactly what Decode does, with the same errors, without
// building the batch (FuzzDecode holds the two to that).
//
// # Concurrency
//
// Encode, Decode and Check are safe for concurrent use; they share compressors and
// buffer pools internally. A Batch is plain data and not safe for concurrent
// modification.
package wire
