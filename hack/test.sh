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

if [ "$what" = all ] || [ "$what" = unit ]; then
  log "unit tests"
  # shellcheck disable=SC2046
  go test -race -count=1 $(unit_packages)
  log "layer-2 simulation: named scenarios and $SIM_SCHEDULES random schedules from seed $SIM_BASE_SEED"
  go test -count=1 -timeout=30m ./announcer/l2/ -sim.schedules="$SIM_SCHEDULES"
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
