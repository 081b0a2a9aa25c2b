// Package ruleset owns the live set of detection rules on the server: it
// loads rule directories, applies the operator's enable/disable choices,
// reloads on change without dropping events, and reports per-rule health
// (matches, evaluation cost, last error).
//
// Server-side packages may import ruleset; agents must not.
package ruleset
