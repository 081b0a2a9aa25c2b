// Package respond is the server side of response actions: it authorises a
// request against the permission of its action type (the same check for
// the API and for playbooks, so no indirect path can do what its author
// could not), holds destructive types for a second approver when so
// configured, signs each command with the server's Ed25519 key (package
// command's format, docs/actions.md), queues it in the store, hands it to
// the target agent's long poll, and records the result. Every step is an
// audit log entry.
//
// cmd/vigil wires it: the web API calls Service's request methods, and
// package transport calls it as its Actions (the mTLS agent routes). It
// declares the Store it needs; store/sqlite implements it. Agents never
// import it.
//
// # Concurrency
//
// A Service is safe for concurrent use. State changes are compare-and-set
// in the store (UpdateAction with the expected state), so two servers, or
// an approval racing a cancel, never both win. A poll holds no lock while
// it waits; Wake (called after each new pending action in this process)
// and a one-second re-check serve waiting polls.
package respond
