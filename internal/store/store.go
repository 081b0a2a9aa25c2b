// Package store holds what every storage backend shares: the sentinel errors
// callers branch on. The interfaces themselves are declared by the stages
// that use them (transport.Store, alert.Store, eventstore.Store, authz.Store,
// …); store/sqlite and, later, store/postgres implement them.
//
// Any package may import store; it imports only the standard library.
package store

import "errors"

var (
	// ErrNotFound: the requested row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the change lost a race (compare-and-set failed) or breaks a
	// uniqueness rule.
	ErrConflict = errors.New("conflict")
)
