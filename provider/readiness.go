package provider

import (
	"context"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

var (
	stateReady = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace:      "baremetal",
		Subsystem:      "ccm",
		Name:           "allocation_state_ready",
		Help:           "1 once the VIP allocation state is rebuilt from Service statuses and LoadBalancer calls are served, else 0.",
		StabilityLevel: metrics.ALPHA,
	})
	poolListErrors = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "baremetal",
		Subsystem:      "ccm",
		Name:           "ippool_list_errors_total",
		Help:           "Failed lists or watches of IPPools, by reason (crd_missing, forbidden, other).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})
	registerMetrics sync.Once
)

func init() {
	registerMetrics.Do(func() {
		legacyregistry.MustRegister(stateReady, poolListErrors)
	})
}

// poolWatchState remembers the last error listing or watching IPPools.
type poolWatchState struct {
	mu  sync.Mutex
	err error
}

func (s *poolWatchState) record(ctx context.Context, err error) {
	poolListErrors.WithLabelValues(listErrorReason(err)).Inc()
	s.mu.Lock()
	first := s.err == nil
	s.err = err
	s.mu.Unlock()
	if first {
		_, why := s.persistent()
		klog.FromContext(ctx).Error(err, "Cannot list IPPools; no Service gets a VIP until this is fixed", "hint", why)
	}
}

func (s *poolWatchState) clear() {
	s.mu.Lock()
	s.err = nil
	s.mu.Unlock()
}

// persistent reports whether the last error will not go away by waiting (the CRD is not
// installed, or RBAC forbids the CCM to read IPPools), with what to do about it.
func (s *poolWatchState) persistent() (bool, string) {
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	switch {
	case err == nil:
		return false, ""
	case apierrors.IsNotFound(err):
		return true, fmt.Sprintf("the IPPool CRD (%s) is not installed: apply manifests/crd (%v)", v1alpha1.IPPoolResource.GroupResource(), err)
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		return true, fmt.Sprintf("the CCM may not list and watch %s: check its ClusterRole (%v)", v1alpha1.IPPoolResource.GroupResource(), err)
	default:
		return false, fmt.Sprintf("listing IPPools failed: %v", err)
	}
}

func (s *poolWatchState) reason() string {
	if _, why := s.persistent(); why != "" {
		return why
	}
	return "the IPPool, Service and Namespace caches are still loading"
}

// watchPoolErrors makes the pool informer report list and watch failures to the provider.
func (c *Cloud) watchPoolErrors(informer cache.SharedIndexInformer) error {
	return informer.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
		select {
		case <-c.ready:
			// Served from the cache meanwhile; the reflector relists and logs on its own.
			poolListErrors.WithLabelValues(listErrorReason(err)).Inc()
		default:
			c.poolWatch.record(ctx, err)
		}
		cache.DefaultWatchErrorHandler(ctx, r, err)
	})
}

func listErrorReason(err error) string {
	switch {
	case apierrors.IsNotFound(err):
		return "crd_missing"
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		return "forbidden"
	default:
		return "other"
	}
}
