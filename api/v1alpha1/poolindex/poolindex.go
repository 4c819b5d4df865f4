// Package poolindex answers which IPPool a VIP belongs to, the same way in the
// cloud-controller-manager and the announcer.
//
// The rule: the pool the Service's baremetal.dev/allocated-pool annotation names for the VIP,
// else the first pool, by priority (lower first) then name, whose addresses contain it. The CCM
// writes the annotation only when the rule without it would name another pool (overlapping pools,
// a Service that asked for a lower-priority pool, a pool edited after allocation), so the common
// allocation costs no write beyond the status.
package poolindex

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

// Compare orders pools for selection and attribution: priority (lower first), then name.
func Compare(aPriority int32, aName string, bPriority int32, bName string) int {
	switch {
	case aPriority < bPriority:
		return -1
	case aPriority > bPriority:
		return 1
	}
	return strings.Compare(aName, bName)
}

// Index holds the parsed addresses of a set of pools in selection order.
type Index struct {
	pools []entry
}

type entry struct {
	name      string
	priority  int32
	addresses *ipam.Pool
}

// New indexes the pools. A pool whose addresses do not parse contains nothing, as in the CCM,
// which hands out nothing from it.
func New(pools []*v1alpha1.IPPool) *Index {
	x := &Index{pools: make([]entry, 0, len(pools))}
	for _, p := range pools {
		if p == nil {
			continue
		}
		addresses := make([]string, len(p.Spec.Addresses))
		for i, a := range p.Spec.Addresses {
			addresses[i] = string(a)
		}
		parsed, err := ipam.NewPool(p.Name, addresses)
		if err != nil {
			continue
		}
		x.pools = append(x.pools, entry{name: p.Name, priority: p.Spec.Priority, addresses: parsed})
	}
	slices.SortFunc(x.pools, func(a, b entry) int { return Compare(a.priority, a.name, b.priority, b.name) })
	return x
}

// Containing names the first pool, in selection order, whose addresses contain addr, or "".
func (x *Index) Containing(addr netip.Addr) string {
	if x == nil {
		return ""
	}
	addr = addr.Unmap()
	for _, p := range x.pools {
		if p.addresses.Contains(addr) {
			return p.name
		}
	}
	return ""
}

// PoolOf names the pool of the VIP at index i of a Service's status.loadBalancer.ingress: the
// allocated-pool annotation's entry for it, else the first pool containing it, else "".
func (x *Index) PoolOf(annotations map[string]string, vip string, i int) string {
	if named := v1alpha1.AllocatedPoolOf(annotations[v1alpha1.AnnotationAllocatedPool], vip, i); named != "" {
		return named
	}
	addr, err := netip.ParseAddr(vip)
	if err != nil {
		return ""
	}
	return x.Containing(addr)
}
