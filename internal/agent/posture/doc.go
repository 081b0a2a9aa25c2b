// Package posture is the agent's configuration assessment: it parses
// policies in the Wazuh SCA YAML format (policy, requirements, variables,
// checks with all/any/none conditions over file, directory, process,
// command and registry rules), evaluates them against the host, and runs
// them periodically as a sensor that sends one sca_result event per check
// and one sca_summary event per policy through the agent's spool.
//
// Every check ends passed, failed or not applicable, always with a reason:
// syntax this package does not support (a PCRE2 construct RE2 lacks, an
// unknown rule type, registry rules off Windows), a missing file whose
// content was to be checked, or a command that could not run are not
// applicable, never a crash and never a silent skip. docs/sca.md has the
// format support matrix, the Vigil extensions (mode:, owner:, group:) and
// the trust model for commands.
//
// The baseline policies for Debian 12 and Ubuntu 22.04/24.04 are embedded
// (Builtin).
//
// # Importers
//
// The agent (internal/agent) and cmd/vigil (`vigil sca run`) import this
// package. It imports the standard library, go.yaml.in/yaml/v3 and
// internal/event only, never a server package.
//
// # Concurrency
//
// An Evaluator is safe for concurrent use; each Evaluate call keeps its own
// state (commands and the process list are read once per call). A Sensor
// runs once at a time; its Status is safe to call from any goroutine.
package posture
