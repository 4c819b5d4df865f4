package provider

import (
	"fmt"
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1/poolindex"
	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

// poolConfig is an IPPool as the provider uses it: parsed addresses plus selection rules.
type poolConfig struct {
	name       string
	generation int64
	// addresses is nil when they do not parse. A pool invalid for another reason (a bad
	// selector) keeps them, so its VIPs are not reported as outside every pool, but hands out
	// nothing: selects refuses every Service.
	addresses  *ipam.Pool
	invalid    error
	autoAssign bool
	priority   int32
	services   labels.Selector // nil = every Service
	namespaces labels.Selector // nil = every namespace
	// recorded is the status' record of shared VIPs and their terms (restore.go).
	recorded map[netip.Addr]sharingTerms
}

// newPoolConfig translates an IPPool. A pool that does not parse is kept (invalid set) so its
// status can say why, but it hands out nothing.
func newPoolConfig(p *v1alpha1.IPPool) *poolConfig {
	cfg := &poolConfig{name: p.Name, generation: p.Generation, autoAssign: true, priority: p.Spec.Priority}
	cfg.recorded = recordedTerms(p.Status.SharedVIPs)
	if p.Spec.AutoAssign != nil {
		cfg.autoAssign = *p.Spec.AutoAssign
	}
	addresses := make([]string, len(p.Spec.Addresses))
	for i, a := range p.Spec.Addresses {
		addresses[i] = string(a)
	}
	var err error
	if cfg.addresses, err = ipam.NewPool(p.Name, addresses); err != nil {
		cfg.invalid = err
		cfg.addresses = nil
	}
	if cfg.services, err = optionalSelector(p.Spec.ServiceSelector); err != nil && cfg.invalid == nil {
		cfg.invalid = fmt.Errorf("spec.serviceSelector: %w", err)
	}
	if cfg.namespaces, err = optionalSelector(p.Spec.NamespaceSelector); err != nil && cfg.invalid == nil {
		cfg.invalid = fmt.Errorf("spec.namespaceSelector: %w", err)
	}
	return cfg
}

// recordedTerms indexes a pool status' shared VIPs by address.
func recordedTerms(list []v1alpha1.SharedVIP) map[netip.Addr]sharingTerms {
	out := make(map[netip.Addr]sharingTerms, len(list))
	for _, rec := range list {
		if addr, err := netip.ParseAddr(rec.Address); err == nil {
			out[addr] = sharingTerms{key: rec.SharingKey, backend: rec.LocalSelector, services: rec.Services}
		}
	}
	return out
}

func optionalSelector(s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil {
		return nil, nil
	}
	return metav1.LabelSelectorAsSelector(s)
}

// selects reports whether the pool serves this Service, and if not, why.
func (p *poolConfig) selects(svc *v1.Service, ns *v1.Namespace) (bool, string) {
	if p.invalid != nil {
		return false, fmt.Sprintf("pool %q is invalid: %v", p.name, p.invalid)
	}
	if p.services != nil && !p.services.Matches(labels.Set(svc.Labels)) {
		return false, fmt.Sprintf("pool %q: serviceSelector %q does not match the Service's labels", p.name, p.services)
	}
	if p.namespaces != nil {
		var nsLabels labels.Set
		if ns != nil {
			nsLabels = ns.Labels
		}
		if !p.namespaces.Matches(nsLabels) {
			return false, fmt.Sprintf("pool %q: namespaceSelector %q does not match namespace %q", p.name, p.namespaces, svc.Namespace)
		}
	}
	return true, ""
}

// sortPools orders pools by priority (lower first), then name: the documented selection order,
// which also attributes a VIP to its pool (package poolindex).
func sortPools(pools []*poolConfig) {
	slices.SortFunc(pools, func(a, b *poolConfig) int { return poolindex.Compare(a.priority, a.name, b.priority, b.name) })
}
