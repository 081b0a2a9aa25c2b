// Package transport connects agents to the server: enrolment with a token
// (the agent sends a CSR, the server returns a certificate signed by its CA),
// mutually authenticated TLS for everything after, certificate renewal, and
// revocation that takes effect within a minute. The agent's identity is the
// subject of its verified client certificate, never a value in a payload.
// The protocol is specified in docs/transport.md.
//
// This package is the server side, used by cmd/vigil and mounted by package
// web under /agent/ (Server.Handler serves the full paths). It declares the
// storage it needs (Store) and the stage it feeds (Ingester). The agent side
// is the subpackage transport/client, which imports only the standard
// library so that vigil-agent links no server package.
//
// # Concurrency
//
// A Server is safe for concurrent use. The revoked-agent set is shared by
// all requests and reloaded by the first request after RevocationRefresh
// has passed; requests arriving during that reload wait for it, so no
// request is checked against a set older than the interval while the store
// answers.
package transport
