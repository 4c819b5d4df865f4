package provider

import (
	"context"
	"net/netip"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

const eventSource = "baremetal-cloud-provider"

func (c *Cloud) run(ctx context.Context, factory informers.SharedInformerFactory) {
	logger := klog.FromContext(ctx).WithName("baremetal")
	ctx = klog.NewContext(ctx, logger)

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	c.recorder = broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: eventSource})

	serviceInformer := factory.Core().V1().Services()
	namespaceInformer := factory.Core().V1().Namespaces()
	c.services = serviceInformer.Lister()
	c.namespaces = namespaceInformer.Lister()
	serviceHandler, err := serviceInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { c.onServiceUpdated(obj) },
		DeleteFunc: func(obj any) { c.onServiceDeleted(ctx, obj) },
	})
	if err != nil {
		logger.Error(err, "Cannot watch Services")
		return
	}

	dynFactory := dynamicinformer.NewDynamicSharedInformerFactory(c.dynamic, 0)
	poolInformer := dynFactory.ForResource(v1alpha1.IPPoolResource).Informer()
	if err := c.watchPoolErrors(poolInformer); err != nil {
		logger.Error(err, "Cannot watch IPPool errors")
		return
	}
	poolHandler, err := poolInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.onPool(ctx, obj) },
		UpdateFunc: func(_, obj any) { c.onPool(ctx, obj) },
		DeleteFunc: func(obj any) { c.onPoolDeleted(ctx, obj) },
	})
	if err != nil {
		logger.Error(err, "Cannot watch IPPools")
		return
	}
	c.mu.Lock()
	c.poolStore = poolInformer.GetStore()
	c.mu.Unlock()
	// The controller manager starts its factory after its controllers registered; starting it
	// here too is harmless (Start only starts what is not running) and does not wait for them.
	factory.Start(ctx.Done())
	dynFactory.Start(ctx.Done())
	defer dynFactory.Shutdown()

	// The handlers' own HasSynced, not the stores': a store is synced as soon as it holds the
	// first list, before every object has been handed to onPool.
	start := time.Now()
	if !cache.WaitForCacheSync(ctx.Done(), serviceHandler.HasSynced, namespaceInformer.Informer().HasSynced, poolHandler.HasSynced) {
		return
	}
	c.poolWatch.clear()
	restored := c.restore(ctx)
	close(c.ready)
	stateReady.Set(1)
	logger.Info("VIP state rebuilt from Service statuses", "services", restored, "duration", time.Since(start))

	go c.writePins(ctx)
	c.writePoolStatuses(ctx)
}

// poolFor names the pool a held VIP belongs to: the first of the preferred pools that contains
// it, else the first pool in selection order that does, else the first preferred name (the pool
// it came from before an edit removed it).
func (c *Cloud) poolFor(addr netip.Addr, preferred ...string) string {
	for _, name := range preferred {
		if p, ok := c.pools[name]; ok && p.addresses != nil && p.addresses.Contains(addr) {
			return name
		}
	}
	var containing []*poolConfig
	for _, name := range c.alloc.PoolsContaining(addr) {
		if p, ok := c.pools[name]; ok {
			containing = append(containing, p)
		}
	}
	if len(containing) == 0 {
		for _, name := range preferred {
			if name != "" {
				return name
			}
		}
		return ""
	}
	sortPools(containing)
	return containing[0].name
}

func (c *Cloud) onServiceDeleted(ctx context.Context, obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	svc, ok := obj.(*v1.Service)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.deprecationReported, svc.UID)
	key := serviceKey(svc)
	// The service controller releases VIPs through EnsureLoadBalancerDeleted before it lets a
	// Service go; this is the safety net for a Service deleted without its finalizer.
	if uid, held := c.owners[key]; held && uid == svc.UID {
		released := c.releaseLocked(key)
		if len(released) > 0 {
			klog.FromContext(ctx).Info("Released VIPs of a Service deleted without cleanup", "service", klog.KObj(svc), "vips", released)
		}
	}
}

// releaseLocked frees every VIP the Service holds. c.mu must be held.
func (c *Cloud) releaseLocked(key string) []netip.Addr {
	released := c.alloc.ReleaseAll(key)
	for _, addr := range released {
		c.forgetIfFree(addr)
	}
	delete(c.owners, key)
	delete(c.reported, key)
	delete(c.retiring, key)
	delete(c.inFlight, key)
	return released
}

// forgetIfFree drops bookkeeping of an address nobody holds any more.
func (c *Cloud) forgetIfFree(addr netip.Addr) {
	if len(c.alloc.Holders(addr)) > 0 {
		return
	}
	if pool, ok := c.allocatedFrom[addr]; ok {
		c.statusDirty[pool] = true
	}
	for _, p := range c.alloc.PoolsContaining(addr) {
		c.statusDirty[p] = true
	}
	delete(c.allocatedFrom, addr)
	delete(c.warnedOutside, addr)
	c.kickStatus()
}

func (c *Cloud) onPool(ctx context.Context, obj any) {
	u, ok := obj.(runtimeUnstructured)
	if !ok {
		return
	}
	pool := &v1alpha1.IPPool{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), pool); err != nil {
		klog.FromContext(ctx).Error(err, "Cannot decode IPPool", "pool", u.GetName())
		return
	}
	cfg := newPoolConfig(pool)
	c.mu.Lock()
	defer c.mu.Unlock()
	previous, known := c.pools[cfg.name]
	// A new generation is a spec edit; the same one is a status write, most often our own.
	specChanged := !known || previous.generation != cfg.generation || cfg.generation == 0
	c.pools[cfg.name] = cfg
	if cfg.addresses != nil {
		c.alloc.SetPool(cfg.addresses)
	} else {
		c.alloc.DeletePool(cfg.name)
		klog.FromContext(ctx).Info("IPPool is invalid; it hands out nothing until fixed", "pool", cfg.name, "reason", cfg.invalid.Error())
	}
	if specChanged {
		c.checkOutsidePools(ctx)
		c.pinAfterPoolChange()
	}
	c.markAllPoolsDirty()
}

func (c *Cloud) onPoolDeleted(ctx context.Context, obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	u, ok := obj.(runtimeUnstructured)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pools, u.GetName())
	c.alloc.DeletePool(u.GetName())
	c.checkOutsidePools(ctx)
	c.pinAfterPoolChange()
	c.markAllPoolsDirty()
}

// checkOutsidePools warns, once per VIP, about VIPs that no pool contains any more. They stay
// with their Services (a VIP never changes because a pool was edited). c.mu must be held.
func (c *Cloud) checkOutsidePools(ctx context.Context) {
	if c.recorder == nil {
		return
	}
	for addr := range c.allocatedFrom {
		if len(c.alloc.PoolsContaining(addr)) > 0 {
			delete(c.warnedOutside, addr)
			continue
		}
		if c.warnedOutside[addr] {
			continue
		}
		c.warnedOutside[addr] = true
		for _, holder := range c.alloc.Holders(addr) {
			ns, name, _ := strings.Cut(holder.Service, "/")
			svc, err := c.services.Services(ns).Get(name)
			if err != nil {
				continue
			}
			klog.FromContext(ctx).Info("VIP is no longer in any IPPool; the Service keeps it", "service", klog.KObj(svc), "vip", addr, "pool", c.allocatedFrom[addr])
			c.recorder.Eventf(svc, v1.EventTypeWarning, "VIPOutsidePools",
				"VIP %s is no longer in any IPPool (it came from pool %q); the Service keeps it. Add the address back to a pool, or recreate the Service to get a new VIP",
				addr, c.allocatedFrom[addr])
		}
	}
}

// runtimeUnstructured is what the dynamic informer hands out.
type runtimeUnstructured interface {
	UnstructuredContent() map[string]any
	GetName() string
}

func wantsLoadBalancer(svc *v1.Service) bool {
	return svc.Spec.Type == v1.ServiceTypeLoadBalancer && svc.Spec.LoadBalancerClass == nil
}
