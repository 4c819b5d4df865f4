// Package v1alpha1 holds the Go types of the baremetal.dev/v1alpha1 API: IPPool, the cluster-scoped
// resource that says where load-balancer VIPs come from and how they are announced, and BGPPeer,
// a router the announcers peer with. The CRD manifests under manifests/crd are generated from
// these types by controller-gen.
//
// +kubebuilder:object:generate=true
// +groupName=baremetal.dev
package v1alpha1
