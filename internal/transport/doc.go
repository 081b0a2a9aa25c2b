// Package transport connects agents to the server: enrolment with a token
// (the agent sends a CSR, the server returns a certificate signed by its CA),
// mutually authenticated TLS for everything after, certificate renewal, and
// revocation that takes effect within a minute. The agent's identity is the
// subject of its verified client certificate, never a value in a payload.
//
// The server side is used by cmd/vigil; the client side by vigil-agent.
package transport
