// Package compare exists only for its benchmark: it measures Vigil's Sigma
// engine (package detect/sigma) against github.com/bradleyjkemp/sigma-go
// v0.6.6 on the shared test corpus (the Windows SigmaHQ rules and the EVTX
// samples), and checks that both engines find the same matches on the rules
// both can load.
//
// The package has no exported API and nothing may import it. sigma-go is
// imported only from compare_test.go, so it never links into a Vigil binary.
//
// # Running
//
//	go test ./internal/detect/sigma/compare -run '^$' -bench . -benchtime 1x
//	VIGIL_COMPARE=1 go test ./internal/detect/sigma/compare -run TestCompareRatio -v
//
// One sigma-go pass over the corpus takes about ten seconds, so CI should run
// the benchmarks with -benchtime 1x; TestCompareRatio is skipped unless the
// -compare flag or VIGIL_COMPARE=1 is given. Both skip with "CORPUS MISSING"
// when the corpus is not at <repository root>/../shared/corpus.
//
// # What is measured
//
// Events are decoded once into memory; the timed loops only match. Both
// engines evaluate a rule on an event only when the rule's log source fits the
// event's (the same product/service/category test for both; Vigil does it
// inside Engine.Match, the sigma-go side in the benchmark, cached per log
// source as Vigil caches it). sigma-go has no log source filter of its own
// without a backend config, and evaluating every rule on every event would
// charge it for work no deployment does. The sigma-go events are converted to
// map[string]interface{} before timing, which favours sigma-go slightly.
package compare
