#!/usr/bin/env bash
# Fails if formatting, vet, module tidiness, generated code, the rendered manifests (install.yaml,
# the Helm chart, which is linted and rendered) or the linter is not clean.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

status=0
fail() { log "FAIL: $*"; status=1; }

log "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
[ -z "$unformatted" ] || fail "gofmt would change: $unformatted"

log "go vet"
go vet ./... || fail "go vet"

log "go mod tidy"
for dir in . hack/tools/*/; do
  (cd "$dir" && go mod tidy -diff >/dev/null) || fail "go mod tidy would change $dir/go.mod or go.sum"
done

log "generated code"
hack/update-codegen.sh
git diff --exit-code --stat -- api manifests/crd || fail "generated code is stale: run make codegen and commit"

log "manifests/install.yaml and the Helm chart's copies of manifests/"
hack/update-manifests.sh
git diff --exit-code --stat -- manifests/install.yaml charts/cloud-provider-baremetal/files ||
  fail "rendered manifests are stale: run hack/update-manifests.sh and commit"
untracked=$(git ls-files --others --exclude-standard -- charts/cloud-provider-baremetal/files)
[ -z "$untracked" ] || fail "rendered manifests are not committed: $untracked"

log "helm lint and template"
helm() { hack/go-tool.sh helm helm.sh/helm/v3/cmd/helm "$@"; }
chart=charts/cloud-provider-baremetal
# --kube-version: the oldest Kubernetes the chart supports (ValidatingAdmissionPolicy v1).
helm lint --strict --quiet --kube-version=v1.30.0 "$chart" || fail "helm lint $chart"
helm template baremetal "$chart" --namespace=kube-system --kube-version=v1.30.0 >/dev/null || fail "helm template $chart"
helm template baremetal "$chart" --namespace=kube-system --kube-version=v1.30.0 \
  --set=ccm.enabled=false,announcer.enabled=false,crds.enabled=false >/dev/null || fail "helm template $chart with every part disabled"

log "golangci-lint"
hack/go-tool.sh lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint run ./... || fail "golangci-lint"

exit $status
