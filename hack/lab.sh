#!/usr/bin/env bash
# The local lab: the project running on this machine, in the background, against a real control
# plane built from pinned upstream source. State, logs and PID files live in .lab/ (git-ignored).
# Usage: hack/lab.sh up|down|status
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

cmd=${1:-up}
lab_bin=.lab/bin
build_lab() {
  mkdir -p "$lab_bin"
  go build -o "$lab_bin/lab" ./test/lab
}
case "$cmd" in
  up)
    hack/install-deps.sh
    hack/build-upstream.sh etcd kube-apiserver kubectl >/dev/null
    hack/build.sh
    build_lab
    ln -sfn "$UPSTREAM_BIN_DIR/kubectl" "$lab_bin/kubectl"
    "$lab_bin/lab" up ;;
  down|status)
    [ -d .lab ] || { log "no lab here (.lab/ does not exist)"; exit 0; }
    build_lab
    "$lab_bin/lab" "$cmd" ;;
  *) die "usage: hack/lab.sh up|down|status" ;;
esac
