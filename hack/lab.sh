#!/usr/bin/env bash
# The local lab (package test/lab): a real control plane built from pinned upstream source on this
# host, and a LAN of network namespaces with three nodes, a router and a client. It runs in the
# background; state, logs and PID files live in .lab/ (git-ignored). Needs root.
# Usage: hack/lab.sh up|down|status|vtysh|e2e
#   up      install missing Debian packages, build what is missing, bring the lab up or repair it
#   down    remove every process, namespace, link and file of the lab
#   status  show what runs (FRR in lab-router and its BGP sessions included)
#   vtysh   lab-router's FRR shell (its own sockets in .lab/frr; never the host's FRR); arguments
#           go to vtysh: hack/lab.sh vtysh -c 'show bgp summary' 
#   e2e     build everything, then run the lab e2e tests (go test ./test/e2e/); they bring up and
#           tear down their own lab, so a `make lab` must not be running
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

cmd=${1:-up}
lab_bin=.lab/bin
build_lab() {
  mkdir -p "$lab_bin"
  go build -o "$lab_bin/lab" ./test/lab/cmd/lab
}
need_root() {
  [ "$(id -u)" = 0 ] || die "the lab needs root (network namespaces, veth links, nftables): run make $1 as root"
}
build_all() {
  hack/install-deps.sh lab
  hack/build-upstream.sh etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl kwok >/dev/null
  hack/build.sh
}
case "$cmd" in
  up)
    need_root lab
    build_all
    build_lab
    ln -sfn "$UPSTREAM_BIN_DIR/kubectl" "$lab_bin/kubectl"
    "$lab_bin/lab" up ;;
  down|status)
    [ "$cmd" = status ] || need_root lab-down
    # Built outside .lab/, which down removes and status must not create; down runs even without
    # .lab/, since namespaces or links may outlive it.
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    go build -o "$tmp/lab" ./test/lab/cmd/lab
    "$tmp/lab" "$cmd" ;;
  vtysh)
    need_root lab
    [ -S .lab/frr/bgpd.vty ] || die "lab-router's FRR is not running (.lab/frr/bgpd.vty is missing): run make lab"
    shift
    exec ip netns exec lab-router vtysh --vty_socket "$REPO_ROOT/.lab/frr" "$@" ;;
  e2e)
    need_root lab-test
    build_all
    go test -count=1 -timeout=15m ./test/e2e/ ;;
  *) die "usage: hack/lab.sh up|down|status|vtysh|e2e" ;;
esac
