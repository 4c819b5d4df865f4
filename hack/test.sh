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
unit_packages() { go list ./... | grep -v '/test/'; }

if [ "$what" = all ] || [ "$what" = unit ]; then
  log "unit tests"
  # shellcheck disable=SC2046
  go test -race -count=1 $(unit_packages)
fi
if [ "$what" = all ] || [ "$what" = integration ]; then
  hack/build-upstream.sh etcd kube-apiserver >/dev/null
  hack/build.sh
  log "integration tests"
  go test -count=1 -timeout=20m ./test/integration/...
fi
if [ "$what" = all ] || [ "$what" = e2e ]; then
  log "lab e2e tests"
  hack/lab.sh e2e
fi
