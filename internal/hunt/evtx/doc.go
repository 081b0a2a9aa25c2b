// Package evtx reads Windows XML Event Log (EVTX) files without cgo or
// third-party code and turns every record into a canonical event.Event,
// normalised by package winevent so that SigmaHQ rules match it unmodified.
//
// It is used by the hunt command and anything else that reads EVTX files;
// it imports only the standard library, internal/event and
// internal/hunt/winevent. The agent may import it too (it has no server-side
// dependencies).
//
// # Format
//
// The reader follows the public format description (libyal's "Windows XML
// Event Log (EVTX) format" and [MS-EVEN6]); format.md next to this file
// summarises the parts it relies on. In short: a 4096-byte file header, then
// 64 KiB chunks, each with a 512-byte header (string and template offset
// tables, CRC32s of the header and of the record area) followed by records;
// each record is Binary XML, normally one template instance whose definition
// sits earlier in the same chunk, plus the substitution values of the
// record.
//
// # Robustness
//
// Files are untrusted input. A chunk whose magic or either CRC32 is wrong is
// skipped; a record with a bad magic, size or trailing size copy, or whose
// Binary XML does not parse, is skipped. Every skip is counted and described
// in Stats, and reading continues with the next record or chunk. Every
// length and offset is bounds-checked, nesting is limited, and the work and
// output per record are bounded, so a hostile file costs at most a bounded
// amount of memory and time per record.
//
// # Performance
//
// One chunk (64 KiB) is held in memory at a time. Template definitions are
// compiled once per chunk into a small instruction list and then executed per
// record with its substitution values; field names are interned; all values
// of a record share one string allocation.
//
// # Concurrency
//
// A Reader is not safe for concurrent use. Read different files from
// different goroutines with one Reader each. The underlying io.ReaderAt must
// allow ReadAt calls (it is only called from the Reader's goroutine).
package evtx
