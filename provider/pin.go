package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
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
	if !stale {
		return nil, false
	}
	if len(ips) == 0 {
		return nil, true
	}
	value := v1alpha1.FormatAllocatedPools(ips, pools)
	return &value, true
}

// pinAfterPoolChange queues an annotation for every Service holding a VIP whose address now
// tells another pool than the one it came from (a pool edited, added, reprioritised or deleted),
// so the announcer and a restarted CCM keep attributing it to its own pool. c.mu must be held.
func (c *Cloud) pinAfterPoolChange() {
	if c.services == nil {
		return
	}
	queued := false
	for addr, from := range c.allocatedFrom {
		if from == "" || c.poolFor(addr) == from {
			continue
		}
		for _, h := range c.alloc.Holders(addr) {
			if !c.pinPending[h.Service] {
				c.pinPending[h.Service] = true
				queued = true
			}
		}
	}
	if queued {
		select {
		case c.pinKick <- struct{}{}:
		default:
		}
	}
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
				time.AfterFunc(time.Second, func() {
					select {
					case c.pinKick <- struct{}{}:
					default:
					}
				})
			}
		}
	}
}

// writePin adds to one Service's annotation an entry for each VIP in its status that has none and
// whose address tells another pool than the one it came from.
func (c *Cloud) writePin(ctx context.Context, key string) error {
	ns, name, _ := strings.Cut(key, "/")
	svc, err := c.services.Services(ns).Get(name)
	if err != nil {
		return nil // gone: nothing to pin
	}
	c.mu.Lock()
	var ips, pools []string
	added := false
	for i, ing := range svc.Status.LoadBalancer.Ingress {
		addr, err := netip.ParseAddr(ing.IP)
		if err != nil {
			continue
		}
		if named := v1alpha1.AllocatedPoolOf(svc.Annotations[AnnotationAllocatedPool], ing.IP, i); named != "" {
			ips, pools = append(ips, ing.IP), append(pools, named)
			continue
		}
		if from := c.allocatedFrom[addr]; from != "" && c.poolFor(addr) != from {
			ips, pools = append(ips, ing.IP), append(pools, from)
			added = true
		}
	}
	c.mu.Unlock()
	if !added {
		return nil
	}
	value := v1alpha1.FormatAllocatedPools(ips, pools)
	return c.patchAllocatedPool(ctx, svc, &value)
}

// patchAllocatedPool sets (or with nil removes) the allocated-pool annotation: the only field of
// a Service the provider writes besides the status the service controller writes for it.
func (c *Cloud) patchAllocatedPool(ctx context.Context, svc *v1.Service, value *string) error {
	// The UID makes the patch a no-op conflict on a new Service that took the name meanwhile.
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid":         svc.UID,
		"annotations": map[string]*string{AnnotationAllocatedPool: value},
	}})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Services(svc.Namespace).Patch(ctx, svc.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsConflict(err) {
		return fmt.Errorf("writing annotation %s on Service %s (UID %s): the Service was replaced: %w", AnnotationAllocatedPool, serviceKey(svc), svc.UID, err)
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("writing annotation %s on Service %s: %w", AnnotationAllocatedPool, serviceKey(svc), err)
	}
	return nil
}
