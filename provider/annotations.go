package provider

import "github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"

// Service annotations read and written by the provider.
const (
	// AnnotationPool restricts allocation to one IPPool.
	AnnotationPool = "baremetal.dev/pool"
	// AnnotationLoadBalancerIPs requests specific VIPs, comma-separated, at most one per family.
	AnnotationLoadBalancerIPs = "baremetal.dev/load-balancer-ips"
	// AnnotationSharingKey lets Services with the same key share a VIP when their ports differ.
	AnnotationSharingKey = "baremetal.dev/sharing-key"
	// AnnotationAllocatedPool is written by the provider: the pool each VIP came from
	// (v1alpha1.FormatAllocatedPools).
	AnnotationAllocatedPool = v1alpha1.AnnotationAllocatedPool
)

// aliases maps each annotation of ours to the MetalLB annotations accepted in its place, newest
// first, so clusters can migrate without editing every Service at once.
var aliases = map[string][]string{
	AnnotationPool:            {"metallb.io/address-pool", "metallb.universe.tf/address-pool"},
	AnnotationLoadBalancerIPs: {"metallb.io/loadBalancerIPs", "metallb.universe.tf/loadBalancerIPs"},
	AnnotationSharingKey:      {"metallb.io/allow-shared-ip", "metallb.universe.tf/allow-shared-ip"},
}
