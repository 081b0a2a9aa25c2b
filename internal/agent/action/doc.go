// Package action carries out signed response actions on the endpoint:
// kill a process (by pid and start time) or its tree, quarantine and
// restore a file, block an address or network, isolate the host with
// nftables, collect a file, and run live queries from a fixed catalogue.
//
// Before anything runs, Verifier checks a command (package command's
// format, docs/actions.md): the server's Ed25519 signature, that the target
// is this agent's certificate identity, the expiry with a bounded clock
// skew, that its nonce was never used (a persisted nonce store, pruned
// after expiry), and the host's local policy. A command failing any check
// is refused and never executed; the refusal is reported like a result.
//
// Only the agent (package agent) imports action. It imports no server
// package: the command format comes from package command, which imports
// only the standard library.
//
// # Concurrency
//
// A Verifier and an Executor are safe for concurrent use. The nonce store
// records a nonce (fsynced) before the command is handed to the executor,
// so a crash mid-action can never make a command runnable twice. The
// network state (isolation, blocks) is changed under one lock, and each
// change replaces the whole nft table "inet vigil" in one atomic nft
// transaction.
package action
