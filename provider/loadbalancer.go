package provider

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cloudprovider "k8s.io/cloud-provider"
	"k8s.io/klog/v2"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

// vip is one allocated address and the pool it came from.
type vip struct {
	addr netip.Addr
	pool string
}

// GetLoadBalancerName is stable for the Service's lifetime (derived from its UID).
func (c *Cloud) GetLoadBalancerName(_ context.Context, _ string, svc *v1.Service) string {
	return cloudprovider.DefaultLoadBalancerName(svc)
}

// GetLoadBalancer reports the VIPs the Service holds.
func (c *Cloud) GetLoadBalancer(ctx context.Context, _ string, svc *v1.Service) (*v1.LoadBalancerStatus, bool, error) {
	if err := c.waitReady(ctx); err != nil {
		return nil, false, err
	}
	c.mu.Lock()
	held := c.activeHeld(serviceKey(svc))
	c.mu.Unlock()
	if len(held) == 0 {
		return nil, false, nil
	}
	vips := make([]vip, len(held))
	for i, addr := range held {
		vips[i] = vip{addr: addr}
	}
	return loadBalancerStatus(svc, vips), true, nil
}

// EnsureLoadBalancer allocates the Service's VIPs (or confirms the ones it holds) and returns them.
func (c *Cloud) EnsureLoadBalancer(ctx context.Context, _ string, svc *v1.Service, _ []*v1.Node) (*v1.LoadBalancerStatus, error) {
	if err := c.waitReady(ctx); err != nil {
		return nil, err
	}
	logger := klog.FromContext(ctx).WithValues("service", klog.KObj(svc))
	req, err := parseRequest(svc)
	if err != nil {
		return nil, err
	}
	c.reportDeprecated(svc, req)
	ns, err := c.namespace(ctx, svc.Namespace)
	if err != nil {
		return nil, err
	}

	c.mu.Lock()
	vips, err := c.allocate(svc, ns, req)
	var pin *string
	repin := false
	if err == nil {
		pin, repin = c.pinnedPools(svc, vips)
	}
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := c.recordShares(ctx, vips); err != nil {
		return nil, err
	}
	logger.V(2).Info("Ensured VIPs", "vips", vipStrings(vips))
	if repin {
		if err := c.patchAllocatedPool(ctx, svc, pin, ""); err != nil {
			return nil, err
		}
	}
	return loadBalancerStatus(svc, vips), nil
}

// UpdateLoadBalancer has nothing to do: node membership is the announcer's business.
func (c *Cloud) UpdateLoadBalancer(ctx context.Context, _ string, _ *v1.Service, _ []*v1.Node) error {
	return c.waitReady(ctx)
}

// EnsureLoadBalancerDeleted releases every VIP the Service holds.
func (c *Cloud) EnsureLoadBalancerDeleted(ctx context.Context, _ string, svc *v1.Service) error {
	if err := c.waitReady(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	released := c.releaseLocked(serviceKey(svc))
	c.mu.Unlock()
	if len(released) > 0 {
		klog.FromContext(ctx).Info("Released VIPs", "service", klog.KObj(svc), "vips", released)
	}
	if _, ok := svc.Annotations[AnnotationAllocatedPool]; ok && svc.DeletionTimestamp == nil {
		return c.patchAllocatedPool(ctx, svc, nil, "")
	}
	return nil
}

// allocate gives the Service one VIP per wanted family, keeping what it already holds whenever
// that still satisfies its spec. All or nothing: on error the Service holds what it held before.
// c.mu must be held.
func (c *Cloud) allocate(svc *v1.Service, ns *v1.Namespace, req request) ([]vip, error) {
	key := req.claim.Service
	if uid, ok := c.owners[key]; ok && uid != svc.UID {
		// A new object with the name of one whose VIPs were never released: start afresh.
		c.releaseLocked(key)
	}
	held := c.activeHeld(key)
	heldBefore := map[netip.Addr]bool{}
	for _, addr := range held {
		heldBefore[addr] = true
	}
	// A VIP in the Service's status that the allocator lost (a restore conflict resolved since)
	// is taken back when free, so the VIP does not change.
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if addr, err := netip.ParseAddr(ing.IP); err == nil && !heldBefore[addr] && len(c.alloc.Holders(addr)) == 0 {
			held = append(held, addr)
		}
	}

	var (
		vips  []vip
		added []netip.Addr
		errs  []error
	)
	rollback := func() {
		for _, addr := range added {
			c.alloc.Release(addr, key)
			c.forgetIfFree(addr)
		}
	}
	for _, family := range req.families {
		var current []netip.Addr
		for _, addr := range held {
			if ipam.FamilyOf(addr) == family {
				current = append(current, addr)
			}
		}
		v, err := c.allocateFamily(svc, ns, req, family, current)
		if err != nil {
			if req.requireAll {
				rollback()
				return nil, err
			}
			errs = append(errs, err)
			continue
		}
		if !heldBefore[v.addr] {
			added = append(added, v.addr)
		}
		vips = append(vips, v)
	}
	if len(vips) == 0 {
		rollback()
		return nil, errors.Join(errs...)
	}

	kept := map[netip.Addr]bool{}
	for _, v := range vips {
		kept[v.addr] = true
		c.unretire(key, v.addr)
		// The first pool recorded for a VIP (whose status counts and records it) stays while
		// it contains it, whatever pools its later sharers name; each Service still reports
		// the pool it got the VIP from.
		if from, ok := c.allocatedFrom[v.addr]; !ok || (!c.poolContains(from, v.addr) && c.poolContains(v.pool, v.addr)) {
			c.allocatedFrom[v.addr] = v.pool
		}
		c.markDirty(v.addr)
	}
	for _, addr := range held {
		if !kept[addr] && heldBefore[addr] {
			c.retire(key, addr)
		}
	}
	c.owners[key] = svc.UID
	c.reported[key] = slices.Clone(vips)
	c.expectStatus(svc, loadBalancerStatus(svc, vips).Ingress)
	return vips, nil
}

// allocateFamily picks the Service's VIP of one family: the requested address, else a held one
// that still fits, else a new one from the first pool (by priority, then name) that has one.
func (c *Cloud) allocateFamily(svc *v1.Service, ns *v1.Namespace, req request, family ipam.Family, current []netip.Addr) (vip, error) {
	if want, ok := req.requested[family]; ok {
		pool := c.heldFrom(svc, want)
		if !slices.Contains(current, want) {
			var err error
			if pool, err = c.poolForRequested(svc, ns, req, want); err != nil {
				return vip{}, err
			}
		}
		claim := req.claim
		if slices.Contains(current, want) {
			claim = heldClaim(claim, svc, want)
		}
		if err := c.alloc.Assign(want, claim); err != nil {
			return vip{}, err
		}
		return vip{addr: want, pool: c.poolFor(want, pool, req.pool)}, nil
	}

	var leaving []string
	for _, addr := range current {
		pool, keep := c.keptVIPPool(svc, req, addr)
		if !keep {
			leaving = append(leaving, fmt.Sprintf("%s is not in pool %q, which the Service now names", addr, req.pool))
			continue
		}
		if err := c.alloc.Assign(addr, heldClaim(req.claim, svc, addr)); err != nil {
			// Its own ports, sharing key or pods changed and no longer fit the VIP's other
			// holders, who keep it.
			leaving = append(leaving, fmt.Sprintf("%s no longer fits its other holders: %v", addr, err))
			continue
		}
		return vip{addr: addr, pool: pool}, nil
	}

	v, err := c.allocateNew(svc, ns, req, family)
	switch {
	case len(leaving) == 0:
		return v, err
	case err != nil:
		return vip{}, &MoveBlockedError{Service: req.claim.Service, Reasons: leaving, Err: err}
	default:
		c.recorder.Eventf(svc, v1.EventTypeNormal, "VIPMoved", "moved to %s because of the Service's own change: %s", v.addr, strings.Join(leaving, "; "))
		return v, nil
	}
}

// allocateNew takes a new address of the family: one already shared under the Service's key in
// any pool it may use, else the lowest free address of the first pool (by priority, then name)
// that has one.
func (c *Cloud) allocateNew(svc *v1.Service, ns *v1.Namespace, req request, family ipam.Family) (vip, error) {
	candidates, err := c.candidatePools(svc, ns, req, family)
	if err != nil {
		return vip{}, err
	}
	if req.claim.SharingKey != "" {
		for _, p := range candidates {
			if addr, ok, err := c.alloc.Share(p.name, family, req.claim); err == nil && ok {
				return vip{addr: addr, pool: p.name}, nil
			}
		}
	}
	var failures []error
	for _, p := range candidates {
		addr, err := c.alloc.Allocate(p.name, family, req.claim)
		if err == nil {
			return vip{addr: addr, pool: p.name}, nil
		}
		var none *ipam.NoAddressesError
		if errors.As(err, &none) && req.pool == "" {
			continue
		}
		failures = append(failures, err)
	}
	switch len(failures) {
	case 0:
		return vip{}, &NoPoolError{Service: req.claim.Service, Family: family, Reasons: []string{"no pool that selects it has " + family.String() + " addresses"}}
	case 1:
		return vip{}, failures[0]
	default:
		return vip{}, fmt.Errorf("no %s address is free for Service %s: %w", family, req.claim.Service, errors.Join(failures...))
	}
}

// keptVIPPool decides whether a VIP the Service holds may stay under its baremetal.dev/pool
// annotation, and names the pool to report it under. Only the Service's own annotation naming
// another pool than the VIP came from moves it; a named pool edited to no longer contain the VIP,
// or a VIP of unknown origin (migrated from MetalLB, say), keeps it.
func (c *Cloud) keptVIPPool(svc *v1.Service, req request, addr netip.Addr) (string, bool) {
	from := c.heldFrom(svc, addr)
	if req.pool == "" {
		return c.poolFor(addr, from), true
	}
	if p, ok := c.pools[req.pool]; ok && p.addresses != nil && p.addresses.Contains(addr) {
		return req.pool, true
	}
	if from == "" || from == req.pool {
		return req.pool, true
	}
	return "", false
}

// heldFrom names the pool the Service holds a VIP from: its allocated-pool annotation's entry,
// else the pool its last sync reported, else the pool the VIP was first allocated from ("" if
// unknown). c.mu must be held.
func (c *Cloud) heldFrom(svc *v1.Service, addr netip.Addr) string {
	if from := annotatedPool(svc, addr); from != "" {
		return from
	}
	for _, v := range c.reported[serviceKey(svc)] {
		if v.addr == addr && v.pool != "" {
			return v.pool
		}
	}
	return c.allocatedFrom[addr]
}

// annotatedPool reads, from the allocated-pool annotation the provider wrote, the pool a VIP in
// the Service's status came from.
// A keyed entry counts whether or not the status shows the VIP yet (the annotation is written
// first); a positional one, from an older CCM, only for a VIP the status shows.
func annotatedPool(svc *v1.Service, addr netip.Addr) string {
	value := svc.Annotations[AnnotationAllocatedPool]
	for i, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP == addr.String() {
			return v1alpha1.AllocatedPoolOf(value, ing.IP, i)
		}
	}
	return v1alpha1.AllocatedPoolOf(value, addr.String(), -1)
}

// candidatePools are the pools a Service may get a new address of this family from, in order.
func (c *Cloud) candidatePools(svc *v1.Service, ns *v1.Namespace, req request, family ipam.Family) ([]*poolConfig, error) {
	if req.pool != "" {
		p, ok := c.pools[req.pool]
		if !ok {
			return nil, &ipam.PoolNotFoundError{Pool: req.pool}
		}
		if ok, why := p.selects(svc, ns); !ok {
			return nil, &NoPoolError{Service: req.claim.Service, Family: family, Reasons: []string{why}}
		}
		return []*poolConfig{p}, nil
	}
	var out []*poolConfig
	var reasons []string
	for _, p := range c.sortedPools() {
		if !p.autoAssign {
			reasons = append(reasons, fmt.Sprintf("pool %q has autoAssign: false", p.name))
			continue
		}
		if ok, why := p.selects(svc, ns); !ok {
			reasons = append(reasons, why)
			continue
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		if len(c.pools) == 0 {
			reasons = []string{"no IPPool exists; create one"}
		}
		return nil, &NoPoolError{Service: req.claim.Service, Family: family, Reasons: reasons}
	}
	return out, nil
}

// poolForRequested finds the pool a requested address comes from; the pool must select the
// Service (autoAssign does not matter: asking for an address is asking explicitly).
func (c *Cloud) poolForRequested(svc *v1.Service, ns *v1.Namespace, req request, addr netip.Addr) (string, error) {
	var refusals []string
	for _, p := range c.sortedPools() {
		if p.addresses == nil || !p.addresses.Contains(addr) {
			continue
		}
		if req.pool != "" && p.name != req.pool {
			refusals = append(refusals, fmt.Sprintf("it is in pool %q but the Service asks for pool %q", p.name, req.pool))
			continue
		}
		if ok, why := p.selects(svc, ns); !ok {
			refusals = append(refusals, why)
			continue
		}
		return p.name, nil
	}
	return "", &NotInPoolError{Addr: addr, Reasons: refusals}
}

// reportDeprecated emits one event per Service and set of MetalLB annotations it uses.
func (c *Cloud) reportDeprecated(svc *v1.Service, req request) {
	if len(req.deprecated) == 0 {
		return
	}
	var parts []string
	for _, d := range req.deprecated {
		parts = append(parts, fmt.Sprintf("%s is deprecated, use %s", d.used, d.replacement))
	}
	signature := strings.Join(parts, "; ")
	c.mu.Lock()
	seen := c.deprecationReported[svc.UID] == signature
	c.deprecationReported[svc.UID] = signature
	c.mu.Unlock()
	if !seen {
		c.recorder.Eventf(svc, v1.EventTypeWarning, "DeprecatedAnnotation", "MetalLB annotations are accepted for migration: %s", signature)
	}
}

// loadBalancerStatus lists the VIPs in the order of the Service's ipFamilies.
func loadBalancerStatus(svc *v1.Service, vips []vip) *v1.LoadBalancerStatus {
	order := serviceFamilies(svc)
	sorted := slices.Clone(vips)
	slices.SortStableFunc(sorted, func(a, b vip) int {
		return slices.Index(order, ipam.FamilyOf(a.addr)) - slices.Index(order, ipam.FamilyOf(b.addr))
	})
	// The ports go in the status too: they record what the Service agreed to when it shares a
	// VIP, which a restart rebuilds (restore.go).
	var ports []v1.PortStatus
	for _, p := range svc.Spec.Ports {
		ports = append(ports, v1.PortStatus{Port: p.Port, Protocol: p.Protocol})
	}
	status := &v1.LoadBalancerStatus{}
	for _, v := range sorted {
		mode := v1.LoadBalancerIPModeVIP
		status.Ingress = append(status.Ingress, v1.LoadBalancerIngress{IP: v.addr.String(), IPMode: &mode, Ports: slices.Clone(ports)})
	}
	return status
}

func vipStrings(vips []vip) []string {
	out := make([]string, len(vips))
	for i, v := range vips {
		out[i] = v.addr.String() + " (pool " + v.pool + ")"
	}
	return out
}

// namespace returns the Service's Namespace: from the cache, else from the API server. Pools'
// namespaceSelectors are decided on its labels, so a Namespace not cached yet must not pass for
// one without labels (it would pass NotIn and DoesNotExist selectors).
func (c *Cloud) namespace(ctx context.Context, name string) (*v1.Namespace, error) {
	ns, err := c.namespaces.Get(name)
	if err == nil {
		return ns, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading namespace %s from the cache: %w", name, err)
	}
	ns, err = c.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading namespace %s, needed to apply IPPool namespaceSelectors: %w", name, err)
	}
	return ns, nil
}

// poolContains reports whether the named pool exists and contains addr. c.mu must be held.
func (c *Cloud) poolContains(name string, addr netip.Addr) bool {
	p, ok := c.pools[name]
	return ok && p.addresses != nil && p.addresses.Contains(addr)
}
