// Package framework runs a real control plane for tests: etcd and kube-apiserver built from pinned
// upstream source (hack/build-upstream.sh) on loopback, and the project's own binaries against it.
// Nothing here is faked; tests talk to the API server through client-go like any user would.
package framework
