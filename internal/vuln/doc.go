// Package vuln matches hosts' installed packages against an offline
// vulnerability database and explains every finding.
//
// The database holds Advisory values imported from files (internal/vuln/osv
// reads OSV JSON, one record or a zip of them; internal/vuln/debian reads
// the Debian Security Tracker's JSON). Each advisory names affected
// packages per Ecosystem ("Debian:12", "Ubuntu:22.04", "AlmaLinux:9", …)
// with version ranges (introduced, fixed, last_affected) and explicit
// versions, compared with internal/vuln/version in the ecosystem's package
// manager order (dpkg or rpm).
//
// Match turns one host's inventory (internal/inventory) into Findings.
// Debian and Ubuntu advisories name source packages, so a dpkg package is
// matched by its source package and source version; an rpm package by its
// own name and by its source package. Every Finding carries the package,
// the installed version, the affected range, the fixed version (or none
// yet), the advisory with its aliases, a severity and a one-line Why such
// as "openssl 3.0.11-1~deb12u1 < fixed 3.0.13-1~deb12u1 (dpkg order) in
// Debian 12".
//
// Findings are kept per host in a Store (store/sqlite implements it),
// labelled with the inventory snapshot and database generation they were
// computed from. The Evaluator re-evaluates every host whose label is out
// of date: after a snapshot is applied and after an import. Scores and
// reports read findings through Store.HostFindings and Store.Fleet.
//
// Only cmd/vigil wires this package. It imports internal/inventory and
// internal/vuln/version, never a storage backend.
//
// # Concurrency
//
// Match and the parsers are pure. An Evaluator is safe for concurrent use
// when its stores are; two evaluations of one host at once both write a
// correct result, and the later write wins.
package vuln
