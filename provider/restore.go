package provider

import (
	"context"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

// A restart rebuilds what the statuses say was agreed, not what the specs ask for now. A Service
// whose spec or annotations changed while it could not move (its pool full, or no CCM leading)
// is restored on the terms it had when its status was written; its next sync compares its new
// terms with its partners' and it, not they, moves or waits. The agreed terms come from:
//   - status.loadBalancer.ingress[].ports: the ports each Service had on each VIP;
//   - IPPool status.sharedVIPs: the sharing key and Local pod selector of each shared VIP;
//   - when a record is missing (the pool was recreated, or the CCM died within a status-write
//     delay of the share), the terms most holders have now, ties going to the oldest holder.

// holding is one Service's claim on one VIP as its status shows it.
type holding struct {
	svc    *v1.Service
	req    request
	reqErr error
	// ports the status lists for the VIP; nil when it lists none (written by an older version,
	// or migrated from MetalLB).
	ports []ipam.Port
}

// restore rebuilds the allocator from every load-balanced Service's status. If statuses claim
// one VIP on terms that never were compatible (a hand edit), the oldest Service keeps it and the
// others are told.
func (c *Cloud) restore(ctx context.Context) int {
	logger := klog.FromContext(ctx)
	all, err := c.services.List(labels.Everything())
	if err != nil {
		logger.Error(err, "Listing Services from the cache")
		return 0
	}
	var services []*v1.Service
	for _, svc := range all {
		if wantsLoadBalancer(svc) && len(svc.Status.LoadBalancer.Ingress) > 0 {
			services = append(services, svc)
		}
	}
	slices.SortFunc(services, olderFirst)

	byAddr := map[netip.Addr][]holding{}
	var order []netip.Addr
	for _, svc := range services {
		req, reqErr := parseRequest(svc)
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			addr, err := netip.ParseAddr(ing.IP)
			if err != nil {
				continue
			}
			if why := ipam.Unusable(addr); why != "" {
				// Only a hand edit puts one there; keeping it would answer for it.
				c.recorder.Eventf(svc, v1.EventTypeWarning, "VIPUnusable", "status lists %s, which is %s and cannot be a VIP; a new VIP will be allocated", addr, why)
				continue
			}
			h := holding{svc: svc, req: req, reqErr: reqErr, ports: statusPorts(ing)}
			if len(byAddr[addr]) == 0 {
				order = append(order, addr)
			}
			byAddr[addr] = append(byAddr[addr], h)
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	records := c.sharedRecords()
	for _, addr := range order {
		holders := byAddr[addr]
		terms := agreedTerms(holders, records[addr])
		for _, h := range holders {
			claim := restoredClaim(h, terms, len(holders) > 1)
			if err := c.alloc.Assign(addr, claim); err != nil {
				logger.Info("VIP in a Service status conflicts with an older Service; it will be reallocated", "service", klog.KObj(h.svc), "vip", addr, "reason", err.Error())
				c.recorder.Eventf(h.svc, v1.EventTypeWarning, "VIPConflict", "status holds %s but %v; a new VIP will be allocated", addr, err)
				continue
			}
			c.owners[claim.Service] = h.svc.UID
			// What the Service's annotation, or else its address, says now: a pool edit made
			// while no CCM ran cannot be told from the pools as they were.
			said := annotatedPool(h.svc, addr)
			if said == "" {
				said = c.poolFor(addr)
			}
			c.reported[claim.Service] = append(c.reported[claim.Service], vip{addr: addr, pool: said})
			if _, known := c.allocatedFrom[addr]; !known {
				// The annotation names the VIP, so it is the record even when the pool no
				// longer contains it; without one the pool is derived, and the keep-or-move
				// decision the next sync makes on it is recorded in turn.
				pool := annotatedPool(h.svc, addr)
				if pool == "" {
					pool = c.poolFor(addr, h.req.pool, records[addr].pool)
				}
				if pool != "" {
					c.allocatedFrom[addr] = pool
				}
			}
		}
	}
	c.checkOutsidePools(ctx)
	c.pinAfterPoolChange()
	c.markAllPoolsDirty()
	return len(services)
}

func olderFirst(a, b *v1.Service) int {
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	return strings.Compare(serviceKey(a), serviceKey(b))
}

// sharingTerms are what all holders of a shared VIP must agree on.
type sharingTerms struct {
	key     string
	backend string
	// pool whose status recorded the terms ("" when derived), and the Services it names.
	pool     string
	services []string
}

// agreedTerms decides the terms a VIP's holders (oldest first) agreed on: the pool's record if
// it is believable, else the terms most holders have now (the oldest holder's on a tie).
func agreedTerms(holders []holding, record sharingTerms) sharingTerms {
	if len(holders) > 1 && record.pool != "" && believable(record, holders) {
		return record
	}
	votes := map[[2]string]int{}
	var best sharingTerms
	bestVotes := 0
	for _, h := range holders {
		if h.reqErr != nil {
			continue
		}
		t := [2]string{h.req.claim.SharingKey, h.req.claim.Backend}
		votes[t]++
		if votes[t] > bestVotes {
			best, bestVotes = sharingTerms{key: t[0], backend: t[1]}, votes[t]
		}
	}
	return best
}

// believable reports whether a pool's record of a share can be what the CCM wrote for these
// holders: it names every one of them, under a key (a share never has none). Whether its key
// is still anyone's does not matter: every holder may have changed since. The record is the
// CCM's own status; edited by hand to other terms, it moves the holders that do not fit them.
func believable(record sharingTerms, holders []holding) bool {
	if record.key == "" {
		return false
	}
	for _, h := range holders {
		if !slices.Contains(record.services, serviceKey(h.svc)) {
			return false
		}
	}
	return true
}

// restoredClaim is the claim a holder agreed to: its status ports (or, without them, its spec
// ports), and for a shared VIP the agreed key and selector. A lone holder keeps its current
// terms; one whose annotations do not parse holds its VIPs exclusively until they are fixed.
func restoredClaim(h holding, terms sharingTerms, shared bool) ipam.Claim {
	claim := ipam.Claim{Service: serviceKey(h.svc), Ports: h.ports}
	if claim.Ports == nil {
		claim.Ports = specPorts(h.svc)
	}
	switch {
	case shared:
		claim.SharingKey, claim.Backend = terms.key, terms.backend
	case h.reqErr == nil:
		claim.SharingKey, claim.Backend = h.req.claim.SharingKey, h.req.claim.Backend
	}
	return claim
}

func statusPorts(ing v1.LoadBalancerIngress) []ipam.Port {
	if len(ing.Ports) == 0 {
		return nil
	}
	out := make([]ipam.Port, 0, len(ing.Ports))
	for _, p := range ing.Ports {
		out = append(out, ipam.Port{Protocol: string(p.Protocol), Number: p.Port})
	}
	return out
}

func specPorts(svc *v1.Service) []ipam.Port {
	var out []ipam.Port
	for _, p := range svc.Spec.Ports {
		out = append(out, ipam.Port{Protocol: string(p.Protocol), Number: p.Port})
	}
	return out
}

// sharedRecords collects the sharing terms recorded in every pool's status. When pools disagree
// about a VIP (only overlapping pools can), the first pool in selection order wins. c.mu must be
// held.
func (c *Cloud) sharedRecords() map[netip.Addr]sharingTerms {
	out := map[netip.Addr]sharingTerms{}
	for _, p := range c.sortedPools() {
		for addr, terms := range p.recorded {
			if _, seen := out[addr]; !seen {
				terms.pool = p.name
				out[addr] = terms
			}
		}
	}
	return out
}

// unrecordedShare names the pool whose status should record addr's sharing terms but does not
// yet, or "". c.mu must be held.
func (c *Cloud) unrecordedShare(addr netip.Addr) string {
	holders := c.alloc.Holders(addr)
	if len(holders) < 2 || len(holders[0].SharingKey) > maxRecordedKey || len(holders[0].Backend) > maxRecordedSelector {
		return ""
	}
	name := c.recordPool(addr)
	p, ok := c.pools[name]
	if !ok {
		return ""
	}
	rec, ok := p.recorded[addr]
	if !ok || rec.key != holders[0].SharingKey || rec.backend != holders[0].Backend {
		return name
	}
	for _, h := range holders[:min(len(holders), maxRecordedSharers)] {
		if !slices.Contains(rec.services, h.Service) {
			return name
		}
	}
	return ""
}

// Bounds on what a pool's status records, well inside the object size limit; beyond them the
// restart falls back to the terms most holders have.
const (
	maxSharedRecords    = 10000
	maxRecordedSharers  = 256
	maxRecordedKey      = 253
	maxRecordedSelector = 1024
)

// recordPool names the pool whose status records addr's sharing terms: the VIP's own pool, else
// (it was deleted) the first pool that contains it, else the first pool: a record must outlive
// the pool it came from. c.mu must be held.
func (c *Cloud) recordPool(addr netip.Addr) string {
	if from, ok := c.allocatedFrom[addr]; ok {
		if _, exists := c.pools[from]; exists {
			return from
		}
	}
	sorted := c.sortedPools()
	for _, p := range sorted {
		if p.addresses != nil && p.addresses.Contains(addr) {
			return p.name
		}
	}
	if len(sorted) > 0 {
		return sorted[0].name
	}
	return ""
}

// sharedVIPsOf lists, for a pool's status, the VIPs it records with several holders and the
// terms they hold them on. Terms too long for the CRD's bounds are left out (a restart then
// judges those shares on the holders' current terms), so one Service cannot jam the status.
// c.mu must be held.
func (c *Cloud) sharedVIPsOf(pool string) []v1alpha1.SharedVIP {
	var addrs []netip.Addr
	for addr := range c.allocatedFrom {
		if holders := c.alloc.Holders(addr); len(holders) > 1 && len(holders[0].SharingKey) <= maxRecordedKey &&
			len(holders[0].Backend) <= maxRecordedSelector && c.recordPool(addr) == pool {
			addrs = append(addrs, addr)
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	if len(addrs) > maxSharedRecords {
		addrs = addrs[:maxSharedRecords]
	}
	out := make([]v1alpha1.SharedVIP, 0, len(addrs))
	for _, addr := range addrs {
		holders := c.alloc.Holders(addr)
		rec := v1alpha1.SharedVIP{Address: addr.String(), SharingKey: holders[0].SharingKey, LocalSelector: holders[0].Backend}
		for _, h := range holders[:min(len(holders), maxRecordedSharers)] {
			rec.Services = append(rec.Services, h.Service)
		}
		out = append(out, rec)
	}
	return out
}
