// Package storetest is the conformance suite every storage backend must pass:
// Run exercises each method of transport.Store, eventstore.Store,
// alert.Store, authz.Store, ruleset.Store, cases.Store and notify.Store
// against its documented contract, including the edge cases callers rely
// on (duplicate events, crash recovery of unscanned events, compare-and-set
// conflicts, enrolment token limits, retention, hostile full-text queries,
// paging, case versions and content-addressed case files, the alert change
// feed, notification batches consumed once, delivery leases).
//
// Only backend tests import storetest (store/sqlite now, store/postgres
// later). It imports testing and must never be linked into a binary.
//
// # Concurrency
//
// Run calls open once per subtest, so every subtest has an empty store;
// subtests run sequentially, and a few of them use many goroutines against
// one backend to check atomicity.
package storetest
