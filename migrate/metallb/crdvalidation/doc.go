// Package crdvalidation holds only tests: every object the MetalLB converter makes from
// ../testdata must pass our CRDs (manifests/crd/bases) as the API server would judge it,
// OpenAPI schema and CEL rules both. They live apart from package metallb because the API
// server's validation code, linked into metallb's test binary, makes its fuzzing crawl.
package crdvalidation
