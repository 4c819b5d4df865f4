#!/usr/bin/env bash
# Runs benchmarks and prints their numbers. Benchmarks never pass or fail on a number.
# Usage: hack/bench.sh [ipam|time-to-ip|failover|bgp]...   (default: ipam and time-to-ip; failover
# and bgp need root and bring up their own lab)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

what=("$@")
[ ${#what[@]} -gt 0 ] || what=(ipam time-to-ip)
for w in "${what[@]}"; do
  case "$w" in
    ipam)
      go test -run '^$' -bench . -benchmem ./provider/ipam/ ;;
    time-to-ip)
      hack/build-upstream.sh etcd kube-apiserver >/dev/null
      hack/build.sh
      go test -run '^$' -bench TimeToExternalIP -benchtime=1x -timeout=30m ./test/integration/ ;;
    failover)
      hack/install-deps.sh lab
      hack/build-upstream.sh etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy kwok >/dev/null
      hack/build.sh
      go test -run '^$' -bench Failover -benchtime=1x -timeout=60m ./test/e2e/ ;;
    bgp)
      hack/install-deps.sh lab
      hack/build-upstream.sh etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy kwok >/dev/null
      hack/build.sh
      go test -run '^$' -bench BGP -benchtime=1x -timeout=60m ./test/e2e/ ;;
    *) die "unknown benchmark $w" ;;
  esac
done
