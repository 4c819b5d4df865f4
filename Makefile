# The Makefile is an index: every target calls a script in hack/.
.DEFAULT_GOAL := help

.PHONY: help build test test-unit test-integration verify codegen manifests bench bench-ipam bench-time-to-ip bench-failover bench-bgp upstream lab lab-down lab-status lab-test clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

build: ## Build bin/baremetal-cloud-controller-manager
	hack/build.sh

test: ## Unit, integration and lab e2e tests, as root (builds pinned upstream binaries from source on first run)
	hack/test.sh

test-unit: ## Unit tests only, with the race detector
	hack/test.sh unit

test-integration: ## Integration tests only (real etcd + kube-apiserver + our CCM)
	hack/test.sh integration

verify: ## gofmt, go vet, go mod tidy drift, generated-code drift, golangci-lint
	hack/verify.sh

codegen: ## Regenerate deepcopy code and CRD manifests from api/ (and the rendered manifests)
	hack/update-codegen.sh

manifests: ## Render manifests/ into manifests/install.yaml and the Helm chart's copies
	hack/update-manifests.sh

bench: bench-ipam bench-time-to-ip ## All benchmarks (numbers, never pass/fail)

bench-ipam: ## Allocator benchmarks
	hack/bench.sh ipam

bench-time-to-ip: ## Service created -> EXTERNAL-IP, p50/p99 over 200 Services, real apiserver
	hack/bench.sh time-to-ip

bench-failover: ## L2 failover in the lab as root: cable cut, SIGKILL, SIGTERM; 20 trials each
	hack/bench.sh failover

bench-bgp: ## BGP mode in the lab as root against FRR: VIP -> route, deletion, announcer and router restarts
	hack/bench.sh bgp

upstream: ## Build the pinned upstream binaries (etcd, kube-apiserver) into the cache
	hack/build-upstream.sh

lab: ## Run the project locally as root: control plane, kwok nodes, netns LAN, CCM (and announcers); demo applied
	hack/lab.sh up

lab-down: ## Stop the local lab and remove every namespace, link, process and file it made
	hack/lab.sh down

lab-status: ## Show what of the local lab runs
	hack/lab.sh status

lab-test: ## Lab e2e tests as root (they bring up and tear down their own lab; not while make lab runs)
	hack/lab.sh e2e

clean: ## Remove bin/ (the upstream cache stays; see hack/lib.sh)
	rm -rf bin
