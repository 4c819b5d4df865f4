#!/usr/bin/env bash
# Shared helpers for the hack/ scripts. Source it; it defines paths and small functions only.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Upstream binaries are 120-170 MB each: they live outside git, keyed by the pinning module's hash.
CACHE_DIR=${BAREMETAL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cloud-provider-baremetal}
UPSTREAM_BIN_DIR="$CACHE_DIR/bin"

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# module_key prints a short hash of a tools module's go.mod and go.sum, so a pin change rebuilds.
module_key() {
  cat "$1/go.mod" "$1/go.sum" | sha256sum | cut -c1-12
}
