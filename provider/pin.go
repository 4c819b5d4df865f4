package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

// A VIP's pool is told by its address (the first pool, by priority then name, containing it:
// package poolindex) unless the Service's allocated-pool annotation pins another. The annotation
// is written only where the address would tell the wrong pool, because every change to a
// Service's metadata makes the service controller sync it again: a second status write and a
// second pair of events for every Service, were it written on each allocation.

// pinnedPools returns the allocated-pool annotation the Service needs for its VIPs (nil for
// none) and whether the one it has means something else. c.mu must be held.
func (c *Cloud) pinnedPools(svc *v1.Service, vips []vip) (*string, bool) {
	var ips, pools []string
	stale := false
	for _, ing := range loadBalancerStatus(svc, vips).Ingress {
		for _, v := range vips {
			if v.addr.String() != ing.IP {
				continue
			}
			derived := c.poolFor(v.addr)
			if v.pool != derived {
				ips, pools = append(ips, ing.IP), append(pools, v.pool)
			}
			if named := annotatedPool(svc, v.addr); named != v.pool && (named != "" || derived != v.pool) {
				stale = true
			}
		}
	}
	// Entries for VIPs the Service no longer holds go too: one would speak again were the
	// Service to get that address back.
	for _, addr := range v1alpha1.AllocatedPoolVIPs(svc.Annotations[AnnotationAllocatedPool]) {
		if !slices.ContainsFunc(vips, func(v vip) bool { return v.addr.String() == addr }) {
			stale = true
		}
	}
	if !stale {
		return nil, false
	}
	if len(ips) == 0 {
		return nil, true
	}
	value := v1alpha1.FormatAllocatedPools(ips, pools)
	return &value, true
}

// pinAfterPoolChange queues every Service whose allocated-pool annotation no longer says what
// its next sync would report (a pool edited, added, reprioritised or deleted makes an address tell
// another pool, or none), so the announcer and a restarted CCM keep attributing each VIP to the
// pool the Service holds it from. c.mu must be held.
func (c *Cloud) pinAfterPoolChange() {
	if c.services == nil {
		return
	}
	queued := false
	for key := range c.owners {
		if c.pinPending[key] {
			continue
		}
		ns, name, _ := strings.Cut(key, "/")
		svc, err := c.services.Services(ns).Get(name)
		if err != nil {
			continue
		}
		if _, write := c.pinFor(svc); write {
			c.pinPending[key] = true
			queued = true
		}
	}
	if queued {
		c.kickPins()
	}
}

func (c *Cloud) kickPins() {
	select {
	case c.pinKick <- struct{}{}:
	default:
	}
}

// pinFor is the allocated-pool annotation the Service needs for the VIPs its status shows and it
// holds, each under the pool its next sync would report, and whether the one it has says
// otherwise. c.mu must be held.
func (c *Cloud) pinFor(svc *v1.Service) (*string, bool) {
	if _, inFlight := c.inFlight[serviceKey(svc)]; inFlight {
		// Its status does not show its last sync yet; the status' arrival looks again
		// (onServiceUpdated), with the annotation that sync wrote.
		return nil, false
	}
	req, err := parseRequest(svc)
	if err != nil {
		return nil, false
	}
	held := c.activeHeld(serviceKey(svc))
	var vips []vip
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		addr, err := netip.ParseAddr(ing.IP)
		if err != nil || !slices.Contains(held, addr) {
			continue
		}
		if want, ok := req.requested[ipam.FamilyOf(addr)]; ok && want == addr {
			vips = append(vips, vip{addr: addr, pool: c.poolFor(addr, c.heldFrom(svc, addr), req.pool)})
			continue
		}
		if pool, keep := c.keptVIPPool(svc, req, addr); keep {
			vips = append(vips, vip{addr: addr, pool: pool})
		}
	}
	if len(vips) == 0 {
		return nil, false
	}
	return c.pinnedPools(svc, vips)
}

// writePins writes the queued annotations until ctx ends.
func (c *Cloud) writePins(ctx context.Context) {
	logger := klog.FromContext(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.pinKick:
		}
		c.mu.Lock()
		keys := make([]string, 0, len(c.pinPending))
		for key := range c.pinPending {
			keys = append(keys, key)
		}
		clear(c.pinPending)
		c.mu.Unlock()
		for _, key := range keys {
			if err := c.writePin(ctx, key); err != nil {
				logger.Error(err, "Pinning the pool of a VIP whose address now tells another pool; will retry", "service", key)
				c.mu.Lock()
				c.pinPending[key] = true
				c.mu.Unlock()
				time.AfterFunc(time.Second, c.kickPins)
			}
		}
	}
}

// writePin brings one Service's annotation in line with pinFor. The patch carries the
// resourceVersion it was computed from: a sync that patched the annotation meanwhile wins, and
// the Service is looked at again.
func (c *Cloud) writePin(ctx context.Context, key string) error {
	ns, name, _ := strings.Cut(key, "/")
	svc, err := c.services.Services(ns).Get(name)
	if err != nil {
		return nil // gone: nothing to pin
	}
	c.mu.Lock()
	value, write := c.pinFor(svc)
	c.mu.Unlock()
	if !write {
		return nil
	}
	return c.patchAllocatedPool(ctx, svc, value, svc.ResourceVersion)
}

// patchAllocatedPool sets (or with nil removes) the allocated-pool annotation: the only field of
// a Service the provider writes besides the status the service controller writes for it.
// With resourceVersion set, the patch applies only to that version of the Service.
func (c *Cloud) patchAllocatedPool(ctx context.Context, svc *v1.Service, value *string, resourceVersion string) error {
	// The UID makes the patch a no-op conflict on a new Service that took the name meanwhile.
	meta := map[string]any{
		"uid":         svc.UID,
		"annotations": map[string]*string{AnnotationAllocatedPool: value},
	}
	if resourceVersion != "" {
		meta["resourceVersion"] = resourceVersion
	}
	patch, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Services(svc.Namespace).Patch(ctx, svc.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsConflict(err) {
		return fmt.Errorf("writing annotation %s on Service %s (UID %s, resourceVersion %q): the Service was replaced or changed meanwhile: %w",
			AnnotationAllocatedPool, serviceKey(svc), svc.UID, resourceVersion, err)
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("writing annotation %s on Service %s: %w", AnnotationAllocatedPool, serviceKey(svc), err)
	}
	return nil
}
