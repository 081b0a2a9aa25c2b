#!/usr/bin/env bash
# Builds Vigil and runs it on this machine. Today that is an offline hunt with
# the rules Vigil ships (rules/) over this machine's logs (/var/log) and, when
# present, the sample data in ../shared/corpus; later versions start the
# server, console and local agent here (`vigil up`).
#
# Usage: scripts/run.sh [PATH...]   (hunt PATH instead of the defaults)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null; then
	echo "Installing Go from Debian's packages (Go 1.21 or newer fetches the toolchain go.mod asks for)"
	apt-get update -qq && apt-get install -y -qq golang-go
fi
mkdir -p bin
CGO_ENABLED=0 go build -trimpath -o bin/vigil ./cmd/vigil
echo "built bin/vigil ($(du -h bin/vigil | cut -f1))"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for p in /var/log ../shared/corpus/evtx ../shared/corpus/logs ../shared/corpus/auditd; do
		[ -e "$p" ] && targets+=("$p")
	done
fi
exec bin/vigil hunt --rules rules "${targets[@]}"
