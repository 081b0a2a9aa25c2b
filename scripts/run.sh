#!/usr/bin/env bash
# Builds Vigil and runs it on this machine: the server with its embedded
# defaults (NATS JetStream and SQLite under the data directory) and an
# in-process agent watching this host, detecting with Vigil's own rule pack.
# Run it as root so the agent can use the kernel audit subsystem and
# fanotify. Stop with Ctrl-C.
#
# Usage: scripts/run.sh [vigil up flags]   e.g. --listen 0.0.0.0:8443 --data /srv/vigil
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null; then
	echo "Installing Go from Debian's packages (Go 1.21 or newer fetches the toolchain go.mod asks for)"
	apt-get update -qq && apt-get install -y -qq golang-go
fi
mkdir -p bin
CGO_ENABLED=0 go build -trimpath -o bin/vigil ./cmd/vigil
CGO_ENABLED=0 go build -trimpath -o bin/vigil-agent ./cmd/vigil-agent
echo "built bin/vigil ($(du -h bin/vigil | cut -f1)) and bin/vigil-agent ($(du -h bin/vigil-agent | cut -f1))"
exec bin/vigil up --rules rules "$@"
