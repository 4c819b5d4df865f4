package provider

import (
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"

	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

// A Service's ports on a VIP it holds are agreed twice: in memory, and in the ports its status
// lists. Between a sync that changes them and the status write, a restart would rebuild the
// status' ports; so until the status shows the new ports the Service holds the VIP on both the
// old and the new ones, and no one joins it on ports that only the unwritten change freed.

// heldClaim is the claim a Service keeps a VIP it already holds on: its current claim, with
// the ports its status still lists for the VIP added.
func heldClaim(claim ipam.Claim, svc *v1.Service, addr netip.Addr) ipam.Claim {
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP != addr.String() {
			continue
		}
		for _, p := range statusPorts(ing) {
			if !slices.Contains(claim.Ports, p) {
				claim.Ports = append(slices.Clone(claim.Ports), p)
			}
		}
	}
	return claim
}

// narrowToStatusLocked drops, from the claims the Service holds its VIPs on, the ports neither
// its written status nor its spec lists any more. c.mu must be held.
func (c *Cloud) narrowToStatusLocked(svc *v1.Service) {
	key := serviceKey(svc)
	if c.owners[key] != svc.UID {
		return
	}
	spec := specPorts(svc)
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		addr, err := netip.ParseAddr(ing.IP)
		if err != nil {
			continue
		}
		listed := statusPorts(ing)
		for _, h := range c.alloc.Holders(addr) {
			if h.Service != key {
				continue
			}
			kept := slices.DeleteFunc(slices.Clone(h.Ports), func(p ipam.Port) bool {
				return !slices.Contains(listed, p) && !slices.Contains(spec, p)
			})
			if len(kept) < len(h.Ports) {
				h.Ports = kept
				// Fewer ports never conflict with the other holders.
				_ = c.alloc.Assign(addr, h)
			}
		}
	}
}
