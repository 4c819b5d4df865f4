package provider

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

// request is what a Service asks of the allocator, read from its spec and annotations.
type request struct {
	// families wanted, in the order of spec.ipFamilies (which is the order of the status).
	families []ipam.Family
	// requireAll: every family must get an address (SingleStack, RequireDualStack); otherwise
	// (PreferDualStack) one is enough.
	requireAll bool
	// requested addresses by family; when set, exactly these are the VIPs.
	requested map[ipam.Family]netip.Addr
	// pool restricts allocation to one IPPool ("" = any pool that selects the Service).
	pool  string
	claim ipam.Claim
	// deprecated lists the MetalLB annotations the Service used, for a deprecation event.
	deprecated []deprecatedAnnotation
}

type deprecatedAnnotation struct{ used, replacement string }

// InvalidServiceError says which part of a Service the provider cannot use, and why.
type InvalidServiceError struct {
	Service string
	Field   string // "annotation baremetal.dev/pool" or "spec.loadBalancerIP"
	Value   string
	Reason  string
}

func (e *InvalidServiceError) Error() string {
	return fmt.Sprintf("%s=%q is invalid: %s", e.Field, e.Value, e.Reason)
}

// parseRequest translates a Service into an allocation request. It never mutates svc.
func parseRequest(svc *v1.Service) (request, error) {
	key := serviceKey(svc)
	req := request{requested: map[ipam.Family]netip.Addr{}}

	pool, _, err := annotation(svc, AnnotationPool, &req)
	if err != nil {
		return req, err
	}
	req.pool = strings.TrimSpace(pool)
	sharingKey, _, err := annotation(svc, AnnotationSharingKey, &req)
	if err != nil {
		return req, err
	}
	ips, ipsSource, err := annotation(svc, AnnotationLoadBalancerIPs, &req)
	if err != nil {
		return req, err
	}
	// requestField and requestValue name what the user wrote, for error messages.
	requestField, requestValue := "annotation "+ipsSource, ips
	if ips != "" {
		if req.requested, err = parseRequestedIPs(ips); err != nil {
			return req, &InvalidServiceError{Service: key, Field: requestField, Value: ips, Reason: err.Error()}
		}
	}
	if lbIP := svc.Spec.LoadBalancerIP; lbIP != "" {
		addr, err := parseVIP(lbIP)
		if err != nil {
			return req, &InvalidServiceError{Service: key, Field: "spec.loadBalancerIP", Value: lbIP, Reason: err.Error()}
		}
		if ips == "" {
			req.requested[ipam.FamilyOf(addr)] = addr
			requestField, requestValue = "spec.loadBalancerIP", lbIP
		} else if req.requested[ipam.FamilyOf(addr)] != addr {
			return req, &InvalidServiceError{Service: key, Field: "spec.loadBalancerIP", Value: lbIP,
				Reason: fmt.Sprintf("it disagrees with %s=%q; set only one of them", ipsSource, ips)}
		}
	}

	req.families = serviceFamilies(svc)
	policy := v1.IPFamilyPolicySingleStack
	if svc.Spec.IPFamilyPolicy != nil {
		policy = *svc.Spec.IPFamilyPolicy
	}
	switch policy {
	case v1.IPFamilyPolicyPreferDualStack:
	case v1.IPFamilyPolicyRequireDualStack:
		req.requireAll = true
	default:
		req.requireAll = true
		req.families = req.families[:1]
	}
	if len(req.requested) > 0 {
		var families []ipam.Family
		for _, f := range req.families {
			if _, ok := req.requested[f]; ok {
				families = append(families, f)
			}
		}
		for _, f := range []ipam.Family{ipam.IPv4, ipam.IPv6} {
			if addr, ok := req.requested[f]; ok && !slices.Contains(req.families, f) {
				return req, &InvalidServiceError{Service: key, Field: requestField, Value: requestValue,
					Reason: fmt.Sprintf("%s is %s but the Service's ipFamilies are %v (ipFamilyPolicy %s)", addr, f, svc.Spec.IPFamilies, policy)}
			}
		}
		if policy == v1.IPFamilyPolicyRequireDualStack && len(families) < len(req.families) {
			return req, &InvalidServiceError{Service: key, Field: requestField, Value: requestValue,
				Reason: "ipFamilyPolicy RequireDualStack needs one requested address per family"}
		}
		// Requested addresses are exactly the VIPs: no other family is added automatically.
		req.families = families
		req.requireAll = true
	}

	req.claim = ipam.Claim{Service: key, SharingKey: strings.TrimSpace(sharingKey)}
	if len(req.claim.SharingKey) > maxSharingKey {
		return req, &InvalidServiceError{Service: key, Field: "annotation " + AnnotationSharingKey, Value: req.claim.SharingKey[:32] + "...",
			Reason: fmt.Sprintf("it is %d characters long; at most %d", len(req.claim.SharingKey), maxSharingKey)}
	}
	req.claim.Ports = specPorts(svc)
	if svc.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal {
		// With traffic policy Local only nodes running the pods may announce the VIP, so Services
		// sharing it must run on the same pods.
		req.claim.Backend = labels.Set(svc.Spec.Selector).String()
		if req.claim.Backend == "" {
			// Its endpoints are managed by hand: nothing says they are another Service's pods.
			req.claim.Backend = "<no selector: " + key + ">"
		}
	}
	return req, nil
}

// maxSharingKey bounds a sharing key: it is recorded in IPPool status (restore.go).
const maxSharingKey = 253

// annotation reads one of our annotations or its MetalLB aliases and returns the value with the
// name of the annotation it came from. Any alias used is recorded as deprecated. Values that
// disagree are an error, so a half-done migration is noticed rather than guessed at.
func annotation(svc *v1.Service, name string, req *request) (value, source string, err error) {
	value, found := svc.Annotations[name]
	if found {
		source = name
	}
	for _, alias := range aliases[name] {
		aliasValue, ok := svc.Annotations[alias]
		if !ok {
			continue
		}
		req.deprecated = append(req.deprecated, deprecatedAnnotation{used: alias, replacement: name})
		if !found {
			value, source, found = aliasValue, alias, true
			continue
		}
		if aliasValue != value {
			return "", "", &InvalidServiceError{Service: serviceKey(svc), Field: "annotation " + alias, Value: aliasValue,
				Reason: fmt.Sprintf("it disagrees with %s=%q; keep only %s", source, value, name)}
		}
	}
	if !found {
		source = name
	}
	return value, source, nil
}

// parseRequestedIPs parses "192.168.1.10" or "192.168.1.10,2001:db8::10".
func parseRequestedIPs(s string) (map[ipam.Family]netip.Addr, error) {
	out := map[ipam.Family]netip.Addr{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("empty address in the list; write one address per family, comma-separated")
		}
		addr, err := parseVIP(part)
		if err != nil {
			return nil, err
		}
		f := ipam.FamilyOf(addr)
		if prev, dup := out[f]; dup {
			return nil, fmt.Errorf("%s and %s are both %s; request at most one address per family", prev, addr, f)
		}
		out[f] = addr
	}
	return out, nil
}

// parseVIP parses one address a Service may ask for.
func parseVIP(s string) (netip.Addr, error) {
	addr, err := netip.ParseAddr(strings.TrimSpace(s))
	switch {
	case err != nil:
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	case addr.Zone() != "":
		return netip.Addr{}, fmt.Errorf("%q has a zone; a VIP cannot be scoped to a link", s)
	case addr.Is4In6():
		return netip.Addr{}, fmt.Errorf("%q is an IPv4-mapped IPv6 address; write %s", s, addr.Unmap())
	}
	if why := ipam.Unusable(addr); why != "" {
		return netip.Addr{}, fmt.Errorf("%q is %s; it cannot be a VIP", s, why)
	}
	return addr, nil
}

// serviceFamilies are the Service's IP families as set by the API server (IPv4 if unset).
func serviceFamilies(svc *v1.Service) []ipam.Family {
	var out []ipam.Family
	for _, f := range svc.Spec.IPFamilies {
		switch f {
		case v1.IPv4Protocol:
			out = append(out, ipam.IPv4)
		case v1.IPv6Protocol:
			out = append(out, ipam.IPv6)
		}
	}
	if len(out) == 0 {
		out = []ipam.Family{ipam.IPv4}
	}
	return out
}

func serviceKey(svc *v1.Service) string {
	return svc.Namespace + "/" + svc.Name
}
