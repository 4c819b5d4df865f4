package provider

import (
	"net/netip"

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
	c.releaseRetiredLocked(svc)
	c.narrowToStatusLocked(svc)
}
