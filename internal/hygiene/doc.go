// Package hygiene turns what Vigil knows about a host into a hygiene score
// (0 to 100) that explains itself, keeps the scores' history for trends,
// and renders the self-contained HTML hygiene report.
//
// A score starts at 100 and loses points, in four capped categories, for
// failed configuration checks (package sca; a severity per check, declared
// or derived from its CIS Controls v8 mapping), vulnerability findings
// (package vuln; by level, a known fix weighs more), open alerts (package
// alert; by level) and the agent's health (silent agent, never assessed).
// Every lost point is in a Deduction with a sentence; docs/hygiene.md is
// the weighting, and Weights is the same table in code. The fleet's score
// is the mean of its monitored (not revoked) hosts' scores.
//
// Compute is a pure function of its Input (golden tests in testdata/).
// Service gathers the inputs through narrow interfaces (the stores'
// types satisfy them), ranks hosts worst first, records snapshots through
// Store (a host's or the fleet's score, when its deductions change, at
// most one point per hour: a change within the hour replaces that hour's
// point) and writes the report.
//
// Only cmd/vigil wires this package; web serves it. It imports the domain
// packages whose data it scores (alert, cases, sca, transport, vuln) for
// their types only, never a storage backend.
//
// # Concurrency
//
// Compute is safe for concurrent use. A Service is safe for concurrent use
// when its interfaces are; two concurrent Snapshot calls may both record
// the same point (the store keeps one row per host and time).
package hygiene
