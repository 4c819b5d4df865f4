#!/usr/bin/env bash
# Builds the pinned upstream binaries (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kube-proxy, kubectl, kwok) from source through the Go module proxy into a cache directory, and reuses
# them when the pins have not changed. Prints the directory holding the binaries.
#
# Usage: hack/build-upstream.sh [etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kube-proxy|kubectl|kwok ...]
# With no argument it builds etcd and kube-apiserver (what the integration tests need).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(etcd kube-apiserver)

build() {
  local name=$1 module pkg
  case "$name" in
    etcd) module=etcd pkg=go.etcd.io/etcd/server/v3 ;;
    kube-apiserver|kube-controller-manager|kube-scheduler|kube-proxy|kubectl) module=k8s pkg=k8s.io/kubernetes/cmd/$name ;;
    kwok) module=kwok pkg=sigs.k8s.io/kwok/cmd/kwok ;;
    *) die "unknown upstream tool $name" ;;
  esac
  local dir="$REPO_ROOT/hack/tools/$module"
  local key; key=$(module_key "$dir")
  local out="$UPSTREAM_BIN_DIR/$module-$key"
  mkdir -p "$out"
  if [ -x "$out/$name" ]; then
    ln -sfn "$out/$name" "$UPSTREAM_BIN_DIR/$name"
    return
  fi
  log "building $name from $pkg (pinned in hack/tools/$module/go.mod); the first build takes minutes"
  local start=$SECONDS
  (cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out/$name.tmp" "$pkg")
  mv "$out/$name.tmp" "$out/$name"
  ln -sfn "$out/$name" "$UPSTREAM_BIN_DIR/$name"
  log "built $name in $((SECONDS - start))s"
}

for t in "${tools[@]}"; do build "$t"; done
echo "$UPSTREAM_BIN_DIR"
