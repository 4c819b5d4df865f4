package provider

import (
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
)

// A Service that gets a new VIP gives its old one up only once its status no longer lists it.
// Until then the old VIP stays held (so no other Service can take it) but is not reported: were
// the CCM to crash after freeing it and before the status write, the old and a new holder's
// statuses would both name it, and the restart would have to move one of them.

// retire marks addr, held by the Service, as given up. c.mu must be held.
func (c *Cloud) retire(key string, addr netip.Addr) {
	set := c.retiring[key]
	if set == nil {
		set = map[netip.Addr]bool{}
		c.retiring[key] = set
	}
	set[addr] = true
}

// unretire keeps addr: the Service wants it again. c.mu must be held.
func (c *Cloud) unretire(key string, addr netip.Addr) {
	if set := c.retiring[key]; set != nil {
		delete(set, addr)
		if len(set) == 0 {
			delete(c.retiring, key)
		}
	}
}

// activeHeld returns the VIPs the Service holds and has not given up. c.mu must be held.
func (c *Cloud) activeHeld(key string) []netip.Addr {
	held := c.alloc.Held(key)
	set := c.retiring[key]
	if len(set) == 0 {
		return held
	}
	out := held[:0]
	for _, addr := range held {
		if !set[addr] {
			out = append(out, addr)
		}
	}
	return out
}

// expectStatus notes the status a sync returned, which the service controller writes next.
// Given-up VIPs are freed, and ports dropped, only once a status showing that sync's result is
// seen: an object read before the write (a lagging cache) must not free a VIP the server's
// status still lists. c.mu must be held.
func (c *Cloud) expectStatus(svc *v1.Service, ingress []v1.LoadBalancerIngress) {
	key := serviceKey(svc)
	if sameIngress(svc.Status.LoadBalancer.Ingress, ingress) {
		delete(c.inFlight, key)
		c.releaseRetiredLocked(svc)
		return
	}
	c.inFlight[key] = ingress
}

// sameIngress compares what the provider puts in a status: addresses and their ports.
func sameIngress(a, b []v1.LoadBalancerIngress) bool {
	return slices.EqualFunc(a, b, func(x, y v1.LoadBalancerIngress) bool {
		return x.IP == y.IP && slices.EqualFunc(x.Ports, y.Ports, func(p, q v1.PortStatus) bool {
			return p.Port == q.Port && p.Protocol == q.Protocol
		})
	})
}

// releaseRetiredLocked frees the given-up VIPs the Service's status no longer lists. c.mu must
// be held.
func (c *Cloud) releaseRetiredLocked(svc *v1.Service) []netip.Addr {
	key := serviceKey(svc)
	set := c.retiring[key]
	if len(set) == 0 || c.owners[key] != svc.UID {
		return nil
	}
	listed := map[netip.Addr]bool{}
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if addr, err := netip.ParseAddr(ing.IP); err == nil {
			listed[addr] = true
		}
	}
	var released []netip.Addr
	for addr := range set {
		if listed[addr] {
			continue
		}
		delete(set, addr)
		c.alloc.Release(addr, key)
		c.markDirty(addr)
		c.forgetIfFree(addr)
		released = append(released, addr)
	}
	if len(set) == 0 {
		delete(c.retiring, key)
	}
	return released
}

// onServiceUpdated frees the VIPs a Service gave up, and the ports it dropped, once its new
// status is written.
func (c *Cloud) onServiceUpdated(obj any) {
	svc, ok := obj.(*v1.Service)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := serviceKey(svc)
	if expected, ok := c.inFlight[key]; ok {
		if !sameIngress(svc.Status.LoadBalancer.Ingress, expected) || c.owners[key] != svc.UID {
			return
		}
		delete(c.inFlight, key)
		// The status now shows what the sync returned. A pool edited between the two was
		// looked at before the status showed these VIPs (pinAfterPoolChange): look again.
		if _, write := c.pinFor(svc); write {
			c.pinPending[key] = true
			c.kickPins()
		}
	}
	c.releaseRetiredLocked(svc)
	c.narrowToStatusLocked(svc)
}
