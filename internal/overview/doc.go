// Package overview computes the figures of the console's overview page:
// alerts by level over time, the rules and hosts raising the most alerts, an
// ATT&CK tactic × technique matrix built from the alerts' rule tags, and the
// health of the agent fleet (online or offline by last contact, online
// agents whose last heartbeat health reports trouble, events the agents'
// spools dropped).
//
// It declares the Store it needs (one aggregate query over the alerts);
// store/sqlite implements it. Fleet health is computed here from
// transport's agent list (last contact and the health stored with the last
// heartbeat) and the spool_gap agent_health events in the event store, so
// it needs no storage of its own.
//
// Server-side packages (web, cmd/vigil) import overview; agents must not.
//
// # Untrusted input
//
// Rule tags come from rule files anyone with rule-upload rights wrote, and
// agent_health events from agents, which may be compromised. Tags are
// parsed strictly (unknown forms are ignored, never guessed at), numbers in
// health events must be plain decimal, stored heartbeat health is checked
// again by wire.DecodeHealth, and every string is returned as
// data for the caller to render as text.
//
// # Concurrency
//
// Everything here is a pure function of its arguments, safe for concurrent
// use.
package overview
