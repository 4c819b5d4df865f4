#!/usr/bin/env bash
# Builds the project's binaries into bin/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

mkdir -p bin
for cmd in cmd/*/; do
  name=$(basename "$cmd")
  # Static binaries: they run in distroless images and on any Linux host.
  CGO_ENABLED=0 go build -trimpath -o "bin/$name" "./$cmd"
done
log "built $(ls bin | tr '\n' ' ')"
