// Package atomics runs Atomic Red Team tests against the local host and
// measures which of them Vigil detects: `vigil validate atomics`.
//
// # What it does
//
//   - Load reads technique files in the Atomic Red Team YAML format
//     (redcanaryco/atomic-red-team: attack_technique, atomic_tests with
//     supported_platforms, input_arguments, dependencies, executor). The
//     files are untrusted input: size, node count and nesting depth are
//     bounded, YAML aliases are refused, text must be valid UTF-8.
//   - Plan decides, for every test, whether it may run on this host or why
//     not (Reason): wrong platform, unsupported executor, elevation needed,
//     an input argument without a default, a file from the atomics folder
//     that is missing, a tool the test needs that is not installed, or a
//     match in the denylist of harmful behaviour (Denylist: reboot and
//     shutdown, disk and filesystem wiping, kernel module loading, deleting
//     user accounts, wiping history or logs, blinding Vigil's own sensor,
//     interactive editors, system files changed without a cleanup …).
//     Prerequisites (dependencies' prereq_command) are checked when the
//     test is about to run; get_prereq_command is never run, because it
//     downloads and installs things.
//   - Runner (Linux) runs a test's command with its executor (sh or bash),
//     input arguments substituted with their defaults, in a scratch working
//     directory, in its own process group, with a timeout, and always runs
//     the cleanup command afterwards. By default each test runs in a fresh
//     network namespace that has only a loopback interface, so tests that
//     reach the Internet or change the network (firewall flushes, routes)
//     cannot touch the host's real network. Each test's shell also gets a
//     fresh kernel audit session (its loginuid is written again, which
//     makes the kernel hand out a new session id), inherited by every
//     descendant, forked or daemonised.
//   - Attribute decides which alerts a test caused: an alert counts when
//     one of its triggering events lies within the test's time window and
//     its process descends from the test's shell. Descent is established
//     from the events the server stored: the event's audit session is the
//     test's, or walking ParentProcessId through stored process_creation
//     events reaches the shell's pid.
//   - Client reads alerts, events and metrics through Vigil's REST API.
//
// # Importers
//
// cmd/vigil imports this package. It imports the standard library,
// go.yaml.in/yaml/v3 and golang.org/x/sys/unix, and no other Vigil package:
// it only talks to the server over HTTP.
//
// # Concurrency
//
// Load, Plan and Attribute are pure functions, safe for concurrent use.
// A Runner runs one test at a time (its methods must not be called
// concurrently); it starts every test process from one dedicated, locked OS
// thread so namespace and session changes never reach other goroutines.
// Client is safe for concurrent use.
package atomics
