#!/usr/bin/env bash
# Builds a Go tool pinned in hack/tools/<module>/go.mod into the cache (once per pin) and runs it.
# Usage: hack/go-tool.sh <module> <package> [args...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

module=$1 pkg=$2
shift 2
dir="$REPO_ROOT/hack/tools/$module"
bin="$UPSTREAM_BIN_DIR/$module-$(module_key "$dir")/$(basename "$pkg")"
if [ ! -x "$bin" ]; then
  log "building $pkg (pinned in hack/tools/$module/go.mod)"
  mkdir -p "$(dirname "$bin")"
  (cd "$dir" && go build -trimpath -o "$bin.tmp" "$pkg")
  mv "$bin.tmp" "$bin"
fi
exec "$bin" "$@"
