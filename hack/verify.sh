#!/usr/bin/env bash
# Fails if formatting, vet, module tidiness, generated code or the linter is not clean.
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
git diff --exit-code --stat -- api manifests || fail "generated code is stale: run make codegen and commit"

log "golangci-lint"
hack/go-tool.sh lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint run ./... || fail "golangci-lint"

exit $status
