// Package sigma loads Sigma rules (specification v2: detection rules, filters
// and correlation rules) and compiles detection rules into matcher programs
// that an Engine runs against events.
//
// Any package may import sigma; it depends only on internal/event, the
// standard library and a YAML decoder.
//
// # Pipeline
//
//	YAML bytes ─Parse─▶ Rule (typed, validated, with file and line on every error)
//	Rule ─Compile─▶ program (tree of matchers, literal needles, log source)
//	programs ─NewEngine─▶ Engine (indexed by log source and by needle)
//	Engine.Match(event) ─▶ Match (rule, matched fields)
//
// Correlation rules are parsed here and evaluated by package detect/correlate
// over the stream of matches. Filters are folded into the rules they name at
// engine build time: a rule matches only when none of its filters does.
//
// # Matching semantics
//
// Strings compare case-insensitively unless the cased modifier is given;
// regular expressions are case-sensitive unless the i flag is given, as the
// specification says. Field names compare case-insensitively. A field that
// occurs several times in an event matches when any occurrence matches. Regular
// expressions use Go's RE2 (linear time); a rule that needs a construct RE2
// lacks (look-around, back-references, possessive quantifiers) is rejected
// with a reason naming the construct.
//
// # Concurrency
//
// Rules and compiled programs are immutable after Compile. An Engine is safe
// for concurrent use by many goroutines provided each uses its own Matcher
// (Engine.NewMatcher), which holds the per-goroutine scratch space.
package sigma
