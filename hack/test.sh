#!/usr/bin/env bash
# Runs the tests. With no argument: unit tests (race detector on; the speakers' privileged tests
# use network namespaces), integration tests (the real CCM binary against etcd and kube-apiserver
# built from pinned upstream source) and the lab e2e tests (the whole product in network
# namespaces; needs root, and no `make lab` running).
# Usage: hack/test.sh [unit|integration|e2e]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

what=${1:-all}
# The privileged tests (speakers, e2e) use arping, ndisc6, nftables... from Debian.
hack/install-deps.sh lab
# announcer/l2 is pure and single-threaded: its simulation runs without the race detector, with
# thousands of random fault schedules (the seed of a failing one is printed). CI runs a fixed
# set of them, so a red run is reproducible; SIM_BASE_SEED=$(date +%s) searches new ones.
# test/lab's own tests are pure (topology, config text, parsing); the rest of test/ needs an API
# server or the lab.
unit_packages() { go list ./... | grep -v '/test/' | grep -v '/announcer/l2$'; echo ./test/lab/; }
SIM_SCHEDULES=${SIM_SCHEDULES:-3000}
export SIM_BASE_SEED=${SIM_BASE_SEED:-20261130}

upstream_pid=""
stop_upstream_build() {
  if [ -n "$upstream_pid" ]; then kill -- "-$upstream_pid" 2>/dev/null || true; fi
}
trap stop_upstream_build EXIT

if [ "$what" = all ] || [ "$what" = unit ]; then
  log "unit tests"
  # shellcheck disable=SC2046
  go test -race -count=1 $(unit_packages)
  if [ "$what" = all ]; then
    # The simulation is single-threaded: on a fresh machine the other core builds the upstream
    # binaries the later stages need (instant when they are cached). Own process group, so a
    # failed run stops it.
    upstream_log=$(mktemp)
    setsid hack/build-upstream.sh etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl kwok >"$upstream_log" 2>&1 &
    upstream_pid=$!
  fi
  log "layer-2 simulation: named scenarios and $SIM_SCHEDULES random schedules from seed $SIM_BASE_SEED"
  go test -count=1 -timeout=30m ./announcer/l2/ -sim.schedules="$SIM_SCHEDULES"
  if [ -n "$upstream_pid" ]; then
    if ! wait "$upstream_pid"; then
      cat "$upstream_log" >&2
      upstream_pid=""
      die "building the upstream binaries failed"
    fi
    upstream_pid=""
    grep -h " built " "$upstream_log" >&2 || true
    rm -f "$upstream_log"
  fi
fi
if [ "$what" = all ] || [ "$what" = integration ]; then
  hack/build-upstream.sh etcd kube-apiserver kubectl >/dev/null
  hack/build.sh
  log "integration tests"
  go test -count=1 -timeout=20m ./test/integration/...
fi
if [ "$what" = all ] || [ "$what" = e2e ]; then
  log "lab e2e tests"
  hack/lab.sh e2e
fi
