#!/usr/bin/env bash
# Regenerates the deepcopy code in api/ and the CRD manifests in manifests/crd from the Go types.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

controller_gen() { hack/go-tool.sh codegen sigs.k8s.io/controller-tools/cmd/controller-gen "$@"; }
controller_gen object paths=./api/...
controller_gen crd paths=./api/... output:crd:dir=manifests/crd/bases
# The CRDs reach manifests/install.yaml and the Helm chart through the rendered manifests.
hack/update-manifests.sh
