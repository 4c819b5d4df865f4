package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

// statusCoalesce batches the status writes of a burst of allocations into one per pool: the
// usage counts are for people and lag by at most this; the sharing records a restart needs are
// written before the status that relies on them (recordShares), not here.
const statusCoalesce = time.Second

// markAllPoolsDirty schedules a status write for every pool. c.mu must be held.
func (c *Cloud) markAllPoolsDirty() {
	for name := range c.pools {
		c.statusDirty[name] = true
	}
	c.kickStatus()
}

// markDirty schedules a status write for the pools containing addr. c.mu must be held.
func (c *Cloud) markDirty(addr netip.Addr) {
	for _, name := range c.alloc.PoolsContaining(addr) {
		c.statusDirty[name] = true
	}
	if pool, ok := c.allocatedFrom[addr]; ok {
		c.statusDirty[pool] = true
	}
	c.kickStatus()
}

func (c *Cloud) kickStatus() {
	select {
	case c.statusKick <- struct{}{}:
	default:
	}
}

// writePoolStatuses keeps every IPPool's status current until ctx ends.
func (c *Cloud) writePoolStatuses(ctx context.Context) {
	logger := klog.FromContext(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.statusKick:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(statusCoalesce):
		}
		c.mu.Lock()
		dirty := make([]string, 0, len(c.statusDirty))
		for name := range c.statusDirty {
			dirty = append(dirty, name)
		}
		c.mu.Unlock()
		for _, name := range dirty {
			if err := c.writePoolStatus(ctx, name); err != nil {
				logger.Error(err, "Updating IPPool status; will retry", "pool", name)
				time.AfterFunc(time.Second, c.kickStatus)
			}
		}
	}
}

// writePoolStatus computes and writes one pool's status. Writes are serialised, and each is
// computed just before it is sent, so an older status never overwrites a newer one.
func (c *Cloud) writePoolStatus(ctx context.Context, name string) error {
	c.statusWrite.Lock()
	defer c.statusWrite.Unlock()
	c.mu.Lock()
	if _, ok := c.pools[name]; !ok || c.poolStore == nil {
		delete(c.statusDirty, name)
		c.mu.Unlock()
		return nil
	}
	status := c.poolStatusLocked(name)
	delete(c.statusDirty, name)
	c.mu.Unlock()
	if err := c.patchPoolStatus(ctx, c.poolStore, name, status); err != nil {
		c.mu.Lock()
		c.statusDirty[name] = true
		c.mu.Unlock()
		return err
	}
	c.mu.Lock()
	if p, ok := c.pools[name]; ok {
		p.recorded = recordedTerms(status.SharedVIPs)
	}
	c.mu.Unlock()
	return nil
}

// recordShares writes, before a Service's status can show that it shares a VIP, the terms of
// the share into the VIP's pool status, so a restart rebuilds the agreement (restore.go).
func (c *Cloud) recordShares(ctx context.Context, vips []vip) error {
	c.mu.Lock()
	var pools []string
	for _, v := range vips {
		if pool := c.unrecordedShare(v.addr); pool != "" && !slices.Contains(pools, pool) {
			pools = append(pools, pool)
		}
	}
	c.mu.Unlock()
	for _, pool := range pools {
		if err := c.writePoolStatus(ctx, pool); err != nil {
			return fmt.Errorf("recording the shared VIP's terms in IPPool %s status: %w", pool, err)
		}
	}
	return nil
}

func (c *Cloud) patchPoolStatus(ctx context.Context, store cache.Store, name string, status v1alpha1.IPPoolStatus) error {
	obj, exists, err := store.GetByKey(name)
	if err != nil || !exists {
		return err
	}
	u, ok := obj.(runtimeUnstructured)
	if !ok {
		return fmt.Errorf("unexpected %T in the IPPool cache", obj)
	}
	current := &v1alpha1.IPPool{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), current); err != nil {
		return err
	}
	// Keep transition times of conditions whose status did not change.
	conditions := slices.Clone(current.Status.Conditions)
	for _, cond := range status.Conditions {
		cond.ObservedGeneration = status.ObservedGeneration
		meta.SetStatusCondition(&conditions, cond)
	}
	status.Conditions = conditions
	if equality.Semantic.DeepEqual(current.Status, status) {
		return nil
	}
	// A merge patch leaves out fields it omits: name the emptied ones so they are removed.
	fields := map[string]any{"observedGeneration": status.ObservedGeneration, "conditions": status.Conditions,
		"ipv4": status.IPv4, "ipv6": status.IPv6, "sharedVIPs": status.SharedVIPs}
	if len(status.SharedVIPs) == 0 {
		fields["sharedVIPs"] = nil
	}
	patch, err := json.Marshal(map[string]any{"status": fields})
	if err != nil {
		return err
	}
	_, err = c.dynamic.Resource(v1alpha1.IPPoolResource).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// poolStatusLocked computes a pool's status. c.mu must be held.
func (c *Cloud) poolStatusLocked(name string) v1alpha1.IPPoolStatus {
	p := c.pools[name]
	status := v1alpha1.IPPoolStatus{ObservedGeneration: p.generation, SharedVIPs: c.sharedVIPsOf(name)}
	if p.invalid != nil {
		status.Conditions = []metav1.Condition{{
			Type: v1alpha1.ConditionValid, Status: metav1.ConditionFalse, Reason: "InvalidSpec",
			Message: p.invalid.Error() + "; the pool hands out no address until this is fixed",
		}}
		return status
	}
	status.Conditions = append(status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionValid, Status: metav1.ConditionTrue, Reason: "Valid",
		Message: fmt.Sprintf("%d address ranges", len(p.addresses.Ranges())),
	})

	usage := c.alloc.Usage(name)
	var exhausted []string
	for _, fam := range []struct {
		family ipam.Family
		used   uint64
		set    func(*v1alpha1.AddressCounts)
	}{
		{ipam.IPv4, usage.Used4, func(a *v1alpha1.AddressCounts) { status.IPv4 = a }},
		{ipam.IPv6, usage.Used6, func(a *v1alpha1.AddressCounts) { status.IPv6 = a }},
	} {
		size := p.addresses.Size(fam.family)
		if size.Sign() == 0 {
			continue
		}
		free := usage.Free(fam.family)
		fam.set(&v1alpha1.AddressCounts{Total: size.String(), Used: int64(fam.used), Free: free.String()})
		if free.Sign() <= 0 {
			exhausted = append(exhausted, fmt.Sprintf("all %s %s addresses are in use", size, fam.family))
		}
	}
	if len(exhausted) > 0 {
		status.Conditions = append(status.Conditions, metav1.Condition{
			Type: v1alpha1.ConditionExhausted, Status: metav1.ConditionTrue, Reason: "NoFreeAddresses",
			Message: strings.Join(exhausted, "; ") + "; new Services stay pending until addresses are added or released",
		})
	} else {
		status.Conditions = append(status.Conditions, metav1.Condition{
			Type: v1alpha1.ConditionExhausted, Status: metav1.ConditionFalse, Reason: "FreeAddresses", Message: "addresses are free",
		})
	}

	var overlaps []string
	for _, other := range c.sortedPools() {
		if other.name == name || other.addresses == nil {
			continue
		}
		if r, ok := p.addresses.Overlap(other.addresses); ok {
			overlaps = append(overlaps, fmt.Sprintf("%s overlaps pool %q", rangeString(r.From(), r.To()), other.name))
		}
	}
	if len(overlaps) > 0 {
		status.Conditions = append(status.Conditions, metav1.Condition{
			Type: v1alpha1.ConditionOverlapping, Status: metav1.ConditionTrue, Reason: "OverlapsOtherPools",
			Message: strings.Join(overlaps, "; ") + "; each address is still given to one Service only",
		})
	} else {
		status.Conditions = append(status.Conditions, metav1.Condition{
			Type: v1alpha1.ConditionOverlapping, Status: metav1.ConditionFalse, Reason: "NoOverlap", Message: "no other pool shares addresses",
		})
	}

	var outside []string
	for addr, from := range c.allocatedFrom {
		if from == name && !p.addresses.Contains(addr) {
			outside = append(outside, addr.String())
		}
	}
	if len(outside) > 0 {
		slices.Sort(outside)
		status.Conditions = append(status.Conditions, metav1.Condition{
			Type: v1alpha1.ConditionRemovedAddressesInUse, Status: metav1.ConditionTrue, Reason: "VIPsKept",
			Message: fmt.Sprintf("%d VIPs removed from spec.addresses are still held by Services and kept: %s", len(outside), abbreviate(outside, 5)),
		})
	} else {
		status.Conditions = append(status.Conditions, metav1.Condition{
			Type: v1alpha1.ConditionRemovedAddressesInUse, Status: metav1.ConditionFalse, Reason: "None", Message: "every VIP from this pool is in spec.addresses",
		})
	}
	return status
}

func (c *Cloud) sortedPools() []*poolConfig {
	pools := make([]*poolConfig, 0, len(c.pools))
	for _, p := range c.pools {
		pools = append(pools, p)
	}
	sortPools(pools)
	return pools
}

func rangeString(from, to netip.Addr) string {
	if from == to {
		return from.String()
	}
	return from.String() + "-" + to.String()
}

func abbreviate(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
}
