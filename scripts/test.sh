#!/usr/bin/env bash
# Runs Vigil's whole test suite on a fresh Debian machine: installs what the
# tests need, then formatting, vet, staticcheck, the race-enabled tests, a
# short run of every fuzz target and one iteration of every benchmark.
#
# Usage: scripts/test.sh            (everything)
#        FUZZTIME=30s scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-10s}
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
if ! command -v go >/dev/null; then
	echo "Go is not installed: install Go 1.26 (https://go.dev/dl) and run again" >&2
	exit 1
fi
go version
if [ ! -d ../shared/corpus ]; then
	echo "WARNING: ../shared/corpus is missing: corpus-based tests will be SKIPPED" >&2
fi

step "install test dependencies (Debian packages, only when missing)"
# command:package pairs. chromium drives the console's browser tests
# (chromedp); nft and ip build the response actions' isolation and block
# tests in network namespaces; rpm cross-checks the rpm version order.
# Installed non-interactively in one apt-get run, with sudo when not root.
missing=()
for pair in chromium:chromium nft:nftables ip:iproute2 rpm:rpm; do
	command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""
	if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then sudo="sudo"; fi
	echo "installing: ${missing[*]}"
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v chromium || echo "WARNING: Chromium is missing: browser tests will SKIP (FAIL under CI=true)" >&2

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "staticcheck"
go run "$STATICCHECK" ./...

step "build (static, CGO_ENABLED=0)"
CGO_ENABLED=0 go build -o /dev/null ./cmd/...

step "go test -race (heavy integration tests are skipped here with -short)"
go test -race -short -count=1 ./...

step "integration (as root): replay 100k events three times, SIGKILL the server ten times and the agent fifty, 1M events through an outage, validate atomics, the console in Chromium, isolation in network namespaces"
go test -count=1 -timeout 20m -run 'TestReplayStoresExactlyOnce|TestKillNineKeepsAcknowledged|TestAgentOutageDeliversEverything|TestValidateAtomicsEndToEnd|TestAgentKillNineKeepsDurable|TestConsoleBrowser|TestConsoleXSS|TestCaseBrowser|TestHygieneReportBrowser|TestReportCLI|TestActionsBrowser|TestIsolateEndToEnd|TestKillFromProcessEvent' -v ./cmd/vigil
# Agent-side crash and network-namespace tests (root).
go test -count=1 -timeout 10m -run 'TestCrash$|TestIsolateInNetns|TestBlockExpiresInNetns|TestExecBurstCPU' -v ./internal/agent/spool ./internal/agent/action ./internal/agent/sensor/process

step "fuzz ($FUZZTIME per target)"
# Every Fuzz* function in the module, found from the source.
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
	pkg=./$(dirname "${f#./}")
	for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
		echo "-- $pkg $fn"
		if ! out=$(go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1); then
			echo "$out"
			# Go's fuzzing engine sometimes fails a run with "context deadline
			# exceeded" when -fuzztime ends while a worker is busy (seen on
			# FuzzAccounts, 2026-12-02). That is the engine, not a finding: a
			# finding names its failing input. Such a run is tried once more.
			if grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input' <<<"$out"; then
				echo "-- $pkg $fn: the fuzzing engine timed out its own worker; once more"
				go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$FUZZTIME" "$pkg"
			else
				exit 1
			fi
		else
			echo "$out"
		fi
	done
done

step "benchmarks (one iteration each, so they never rot)"
go test -run '^$' -bench . -benchtime 1x ./...

step "bench ingest smoke run (3 s, 4 agents, Vigil's own rules)"
go run ./cmd/vigil bench ingest --agents 4 --duration 3s --rules rules

step "done"
