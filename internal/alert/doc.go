// Package alert turns rule matches into alerts that analysts triage: it
// groups repeats of a rule on a host into one alert with a count, applies
// suppressions, and moves alerts through their states (new → acknowledged →
// resolved / false positive) recording who and when.
//
// Server-side packages may import alert; agents must not.
package alert
