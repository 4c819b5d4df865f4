package provider

import (
	"errors"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

// svcOption changes a Service built by testService.
type svcOption func(*v1.Service)

// testService returns a LoadBalancer Service default/<name> exposing 80/TCP, with a UID derived
// from its name, changed by opts.
func testService(name string, opts ...svcOption) *v1.Service {
	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name)},
		Spec: v1.ServiceSpec{
			Type:  v1.ServiceTypeLoadBalancer,
			Ports: []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80}},
		},
	}
	for _, o := range opts {
		o(svc)
	}
	return svc
}

func withAnnotation(key, value string) svcOption {
	return func(svc *v1.Service) {
		if svc.Annotations == nil {
			svc.Annotations = map[string]string{}
		}
		svc.Annotations[key] = value
	}
}

// withFamilies sets spec.ipFamilyPolicy (nil for "") and spec.ipFamilies.
func withFamilies(policy v1.IPFamilyPolicy, families ...v1.IPFamily) svcOption {
	return func(svc *v1.Service) {
		svc.Spec.IPFamilyPolicy = nil
		if policy != "" {
			svc.Spec.IPFamilyPolicy = &policy
		}
		svc.Spec.IPFamilies = families
	}
}

func withLoadBalancerIP(ip string) svcOption {
	return func(svc *v1.Service) { svc.Spec.LoadBalancerIP = ip }
}

func withPorts(ports ...v1.ServicePort) svcOption {
	return func(svc *v1.Service) { svc.Spec.Ports = ports }
}

func withLocal(selector map[string]string) svcOption {
	return func(svc *v1.Service) {
		svc.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		svc.Spec.Selector = selector
	}
}

func withNamespace(ns string) svcOption {
	return func(svc *v1.Service) { svc.Namespace = ns }
}

func withLabels(l map[string]string) svcOption {
	return func(svc *v1.Service) { svc.Labels = l }
}

func withUID(uid string) svcOption {
	return func(svc *v1.Service) { svc.UID = types.UID(uid) }
}

func withStatus(addrs ...netip.Addr) svcOption {
	return func(svc *v1.Service) {
		svc.Status.LoadBalancer.Ingress = nil
		for _, a := range addrs {
			svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress, v1.LoadBalancerIngress{IP: a.String()})
		}
	}
}

func tcp(port int32) v1.ServicePort { return v1.ServicePort{Protocol: v1.ProtocolTCP, Port: port} }
func udp(port int32) v1.ServicePort { return v1.ServicePort{Protocol: v1.ProtocolUDP, Port: port} }

var (
	v4  = v1.IPv4Protocol
	v6  = v1.IPv6Protocol
	ss  = v1.IPFamilyPolicySingleStack
	pds = v1.IPFamilyPolicyPreferDualStack
	rds = v1.IPFamilyPolicyRequireDualStack
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestParseRequest(t *testing.T) {
	const (
		lbIPs = AnnotationLoadBalancerIPs
		pool  = AnnotationPool
		share = AnnotationSharingKey
	)
	type want struct {
		families   []ipam.Family
		requireAll bool
		requested  map[ipam.Family]netip.Addr
		pool       string
		sharingKey string
		deprecated []deprecatedAnnotation
	}
	fam := func(f ...ipam.Family) []ipam.Family { return f }
	req4 := func(s string) map[ipam.Family]netip.Addr { return map[ipam.Family]netip.Addr{ipam.IPv4: mustAddr(s)} }
	req6 := func(s string) map[ipam.Family]netip.Addr { return map[ipam.Family]netip.Addr{ipam.IPv6: mustAddr(s)} }
	req46 := func(a, b string) map[ipam.Family]netip.Addr {
		return map[ipam.Family]netip.Addr{ipam.IPv4: mustAddr(a), ipam.IPv6: mustAddr(b)}
	}
	dep := func(used, replacement string) deprecatedAnnotation {
		return deprecatedAnnotation{used: used, replacement: replacement}
	}

	tests := []struct {
		name string
		svc  *v1.Service
		want want
	}{
		// Families and policies.
		{"no families, nil policy: IPv4", testService("a"),
			want{families: fam(ipam.IPv4), requireAll: true}},
		{"IPv6 only, nil policy", testService("a", withFamilies("", v6)),
			want{families: fam(ipam.IPv6), requireAll: true}},
		{"SingleStack IPv4", testService("a", withFamilies(ss, v4)),
			want{families: fam(ipam.IPv4), requireAll: true}},
		{"SingleStack IPv6", testService("a", withFamilies(ss, v6)),
			want{families: fam(ipam.IPv6), requireAll: true}},
		{"SingleStack keeps the primary family only", testService("a", withFamilies(ss, v6, v4)),
			want{families: fam(ipam.IPv6), requireAll: true}},
		{"nil policy keeps the primary family only", testService("a", withFamilies("", v4, v6)),
			want{families: fam(ipam.IPv4), requireAll: true}},
		{"PreferDualStack on a dual-stack cluster", testService("a", withFamilies(pds, v4, v6)),
			want{families: fam(ipam.IPv4, ipam.IPv6)}},
		{"PreferDualStack IPv6 primary", testService("a", withFamilies(pds, v6, v4)),
			want{families: fam(ipam.IPv6, ipam.IPv4)}},
		{"PreferDualStack on a single-stack cluster", testService("a", withFamilies(pds, v4)),
			want{families: fam(ipam.IPv4)}},
		{"RequireDualStack", testService("a", withFamilies(rds, v6, v4)),
			want{families: fam(ipam.IPv6, ipam.IPv4), requireAll: true}},

		// Requested addresses.
		{"one requested IPv4", testService("a", withAnnotation(lbIPs, "192.0.2.10")),
			want{families: fam(ipam.IPv4), requireAll: true, requested: req4("192.0.2.10")}},
		{"one requested IPv6", testService("a", withFamilies(ss, v6), withAnnotation(lbIPs, "2001:db8::10")),
			want{families: fam(ipam.IPv6), requireAll: true, requested: req6("2001:db8::10")}},
		{"two requested, PreferDualStack", testService("a", withFamilies(pds, v4, v6), withAnnotation(lbIPs, "192.0.2.10,2001:db8::10")),
			want{families: fam(ipam.IPv4, ipam.IPv6), requireAll: true, requested: req46("192.0.2.10", "2001:db8::10")}},
		{"two requested, RequireDualStack, order of ipFamilies wins", testService("a", withFamilies(rds, v6, v4), withAnnotation(lbIPs, "192.0.2.10,2001:db8::10")),
			want{families: fam(ipam.IPv6, ipam.IPv4), requireAll: true, requested: req46("192.0.2.10", "2001:db8::10")}},
		{"spaces around requested addresses", testService("a", withFamilies(pds, v4, v6), withAnnotation(lbIPs, "  192.0.2.10 ,\t2001:db8::10 ")),
			want{families: fam(ipam.IPv4, ipam.IPv6), requireAll: true, requested: req46("192.0.2.10", "2001:db8::10")}},
		{"PreferDualStack with one requested: only that family", testService("a", withFamilies(pds, v4, v6), withAnnotation(lbIPs, "2001:db8::10")),
			want{families: fam(ipam.IPv6), requireAll: true, requested: req6("2001:db8::10")}},
		{"empty annotation requests nothing", testService("a", withAnnotation(lbIPs, "")),
			want{families: fam(ipam.IPv4), requireAll: true}},
		{"spec.loadBalancerIP alone", testService("a", withLoadBalancerIP("192.0.2.20")),
			want{families: fam(ipam.IPv4), requireAll: true, requested: req4("192.0.2.20")}},
		{"spec.loadBalancerIP IPv6 alone", testService("a", withFamilies(pds, v4, v6), withLoadBalancerIP("2001:db8::20")),
			want{families: fam(ipam.IPv6), requireAll: true, requested: req6("2001:db8::20")}},
		{"spec.loadBalancerIP agrees with the annotation", testService("a", withLoadBalancerIP("192.0.2.20"), withAnnotation(lbIPs, "192.0.2.20")),
			want{families: fam(ipam.IPv4), requireAll: true, requested: req4("192.0.2.20")}},
		{"spec.loadBalancerIP agrees with one of two annotation addresses", testService("a", withFamilies(rds, v4, v6), withLoadBalancerIP("2001:db8::20"), withAnnotation(lbIPs, "192.0.2.20,2001:db8::20")),
			want{families: fam(ipam.IPv4, ipam.IPv6), requireAll: true, requested: req46("192.0.2.20", "2001:db8::20")}},

		// Pool and sharing key.
		{"pool", testService("a", withAnnotation(pool, "blue")),
			want{families: fam(ipam.IPv4), requireAll: true, pool: "blue"}},
		{"pool is trimmed", testService("a", withAnnotation(pool, "  blue ")),
			want{families: fam(ipam.IPv4), requireAll: true, pool: "blue"}},
		{"sharing key", testService("a", withAnnotation(share, "k1")),
			want{families: fam(ipam.IPv4), requireAll: true, sharingKey: "k1"}},
		{"sharing key is trimmed", testService("a", withAnnotation(share, " k1 ")),
			want{families: fam(ipam.IPv4), requireAll: true, sharingKey: "k1"}},

		// MetalLB aliases.
		{"metallb.io/address-pool", testService("a", withAnnotation("metallb.io/address-pool", "blue")),
			want{families: fam(ipam.IPv4), requireAll: true, pool: "blue",
				deprecated: []deprecatedAnnotation{dep("metallb.io/address-pool", pool)}}},
		{"metallb.universe.tf/address-pool", testService("a", withAnnotation("metallb.universe.tf/address-pool", "blue")),
			want{families: fam(ipam.IPv4), requireAll: true, pool: "blue",
				deprecated: []deprecatedAnnotation{dep("metallb.universe.tf/address-pool", pool)}}},
		{"metallb.io/loadBalancerIPs", testService("a", withAnnotation("metallb.io/loadBalancerIPs", "192.0.2.30")),
			want{families: fam(ipam.IPv4), requireAll: true, requested: req4("192.0.2.30"),
				deprecated: []deprecatedAnnotation{dep("metallb.io/loadBalancerIPs", lbIPs)}}},
		{"metallb.universe.tf/loadBalancerIPs", testService("a", withFamilies(pds, v4, v6), withAnnotation("metallb.universe.tf/loadBalancerIPs", "192.0.2.30,2001:db8::30")),
			want{families: fam(ipam.IPv4, ipam.IPv6), requireAll: true, requested: req46("192.0.2.30", "2001:db8::30"),
				deprecated: []deprecatedAnnotation{dep("metallb.universe.tf/loadBalancerIPs", lbIPs)}}},
		{"metallb.io/allow-shared-ip", testService("a", withAnnotation("metallb.io/allow-shared-ip", "k1")),
			want{families: fam(ipam.IPv4), requireAll: true, sharingKey: "k1",
				deprecated: []deprecatedAnnotation{dep("metallb.io/allow-shared-ip", share)}}},
		{"metallb.universe.tf/allow-shared-ip", testService("a", withAnnotation("metallb.universe.tf/allow-shared-ip", "k1")),
			want{families: fam(ipam.IPv4), requireAll: true, sharingKey: "k1",
				deprecated: []deprecatedAnnotation{dep("metallb.universe.tf/allow-shared-ip", share)}}},
		{"every alias at once, reported in a fixed order", testService("a",
			withAnnotation("metallb.io/loadBalancerIPs", "192.0.2.30"),
			withAnnotation("metallb.universe.tf/allow-shared-ip", "k1"),
			withAnnotation("metallb.io/address-pool", "blue")),
			want{families: fam(ipam.IPv4), requireAll: true, requested: req4("192.0.2.30"), pool: "blue", sharingKey: "k1",
				deprecated: []deprecatedAnnotation{
					dep("metallb.io/address-pool", pool),
					dep("metallb.universe.tf/allow-shared-ip", share),
					dep("metallb.io/loadBalancerIPs", lbIPs),
				}}},
		{"our annotation and an agreeing alias", testService("a",
			withAnnotation(pool, "blue"), withAnnotation("metallb.io/address-pool", "blue"),
			withAnnotation(share, "k1"), withAnnotation("metallb.universe.tf/allow-shared-ip", "k1"),
			withAnnotation(lbIPs, "192.0.2.30"), withAnnotation("metallb.io/loadBalancerIPs", "192.0.2.30")),
			// The redundant aliases still get a deprecation event, so they are removed.
			want{families: fam(ipam.IPv4), requireAll: true, requested: req4("192.0.2.30"), pool: "blue", sharingKey: "k1",
				deprecated: []deprecatedAnnotation{
					dep("metallb.io/address-pool", pool),
					dep("metallb.universe.tf/allow-shared-ip", share),
					dep("metallb.io/loadBalancerIPs", lbIPs),
				}}},
		{"alias and spec.loadBalancerIP agree", testService("a", withAnnotation("metallb.io/loadBalancerIPs", "192.0.2.30"), withLoadBalancerIP("192.0.2.30")),
			want{families: fam(ipam.IPv4), requireAll: true, requested: req4("192.0.2.30"),
				deprecated: []deprecatedAnnotation{dep("metallb.io/loadBalancerIPs", lbIPs)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.svc.DeepCopy()
			req, err := parseRequest(tt.svc)
			if !reflect.DeepEqual(before, tt.svc) {
				t.Errorf("parseRequest mutated its input:\nbefore %+v\nafter  %+v", before, tt.svc)
			}
			if err != nil {
				t.Fatalf("parseRequest: %v", err)
			}
			if !slices.Equal(req.families, tt.want.families) {
				t.Errorf("families = %v, want %v", req.families, tt.want.families)
			}
			if req.requireAll != tt.want.requireAll {
				t.Errorf("requireAll = %v, want %v", req.requireAll, tt.want.requireAll)
			}
			if len(req.requested) != len(tt.want.requested) || !maps.Equal(req.requested, tt.want.requested) {
				t.Errorf("requested = %v, want %v", req.requested, tt.want.requested)
			}
			if req.pool != tt.want.pool {
				t.Errorf("pool = %q, want %q", req.pool, tt.want.pool)
			}
			if req.claim.Service != "default/a" {
				t.Errorf("claim.Service = %q, want default/a", req.claim.Service)
			}
			if req.claim.SharingKey != tt.want.sharingKey {
				t.Errorf("claim.SharingKey = %q, want %q", req.claim.SharingKey, tt.want.sharingKey)
			}
			if !slices.Equal(req.deprecated, tt.want.deprecated) {
				t.Errorf("deprecated = %v, want %v", req.deprecated, tt.want.deprecated)
			}
		})
	}
}

func TestParseRequestErrors(t *testing.T) {
	const lbIPs = AnnotationLoadBalancerIPs
	tests := []struct {
		name  string
		svc   *v1.Service
		field string
		value string
		// every string of msg must appear in the error message.
		msg []string
	}{
		{"garbage", testService("a", withAnnotation(lbIPs, "not-an-ip")),
			"annotation " + lbIPs, "not-an-ip", []string{`"not-an-ip" is not an IP address`}},
		{"garbage second element", testService("a", withFamilies(pds, v4, v6), withAnnotation(lbIPs, "192.0.2.1,2001:db8::zz")),
			"annotation " + lbIPs, "192.0.2.1,2001:db8::zz", []string{"2001:db8::zz", "not an IP address"}},
		{"CIDR is not an address", testService("a", withAnnotation(lbIPs, "192.0.2.0/24")),
			"annotation " + lbIPs, "192.0.2.0/24", []string{"192.0.2.0/24"}},
		{"empty element", testService("a", withAnnotation(lbIPs, "192.0.2.1,")),
			"annotation " + lbIPs, "192.0.2.1,", []string{"empty address"}},
		{"empty element in the middle", testService("a", withAnnotation(lbIPs, "192.0.2.1, ,2001:db8::1")),
			"annotation " + lbIPs, "192.0.2.1, ,2001:db8::1", []string{"empty address"}},
		{"whitespace only", testService("a", withAnnotation(lbIPs, "  ")),
			"annotation " + lbIPs, "  ", []string{"empty address"}},
		{"two IPv4", testService("a", withFamilies(pds, v4, v6), withAnnotation(lbIPs, "192.0.2.1,192.0.2.2")),
			"annotation " + lbIPs, "192.0.2.1,192.0.2.2", []string{"192.0.2.1", "192.0.2.2", "both IPv4"}},
		{"two IPv6", testService("a", withFamilies(pds, v4, v6), withAnnotation(lbIPs, "2001:db8::1,2001:db8::2")),
			"annotation " + lbIPs, "2001:db8::1,2001:db8::2", []string{"2001:db8::1", "2001:db8::2", "both IPv6"}},
		{"three addresses", testService("a", withFamilies(pds, v4, v6), withAnnotation(lbIPs, "192.0.2.1,2001:db8::1,192.0.2.2")),
			"annotation " + lbIPs, "192.0.2.1,2001:db8::1,192.0.2.2", []string{"192.0.2.2"}},
		{"zone", testService("a", withFamilies(ss, v6), withAnnotation(lbIPs, "fe80::1%eth0")),
			"annotation " + lbIPs, "fe80::1%eth0", []string{"fe80::1%eth0", "zone"}},
		{"IPv4-mapped IPv6", testService("a", withAnnotation(lbIPs, "::ffff:192.0.2.1")),
			"annotation " + lbIPs, "::ffff:192.0.2.1", []string{"::ffff:192.0.2.1", "IPv4-mapped", "write 192.0.2.1"}},
		{"loopback IPv4", testService("a", withAnnotation(lbIPs, "127.0.0.1")),
			"annotation " + lbIPs, "127.0.0.1", []string{`"127.0.0.1" is loopback; it cannot be a VIP`}},
		{"loopback IPv6", testService("a", withFamilies(ss, v6), withAnnotation(lbIPs, "::1")),
			"annotation " + lbIPs, "::1", []string{`"::1" is loopback; it cannot be a VIP`}},
		{"unspecified", testService("a", withAnnotation(lbIPs, "0.0.0.0")),
			"annotation " + lbIPs, "0.0.0.0", []string{`"0.0.0.0" is unspecified; it cannot be a VIP`}},
		{"multicast", testService("a", withAnnotation(lbIPs, "224.0.0.1")),
			"annotation " + lbIPs, "224.0.0.1", []string{`"224.0.0.1" is multicast; it cannot be a VIP`}},
		{"subnet-router anycast", testService("a", withFamilies(ss, v6), withAnnotation(lbIPs, "2001:db8:0:1::")),
			"annotation " + lbIPs, "2001:db8:0:1::", []string{`"2001:db8:0:1::" is subnet-router anycast; it cannot be a VIP`}},

		{"spec.loadBalancerIP garbage", testService("a", withLoadBalancerIP("bogus")),
			"spec.loadBalancerIP", "bogus", []string{`"bogus" is not an IP address`}},
		{"spec.loadBalancerIP loopback", testService("a", withLoadBalancerIP("127.0.0.2")),
			"spec.loadBalancerIP", "127.0.0.2", []string{"127.0.0.2", "cannot be a VIP"}},
		{"spec.loadBalancerIP disagrees with the annotation", testService("a", withLoadBalancerIP("192.0.2.20"), withAnnotation(lbIPs, "192.0.2.21")),
			"spec.loadBalancerIP", "192.0.2.20", []string{"192.0.2.20", "192.0.2.21", "disagrees", lbIPs}},
		{"spec.loadBalancerIP of a family the annotation does not name", testService("a", withFamilies(pds, v4, v6), withLoadBalancerIP("2001:db8::20"), withAnnotation(lbIPs, "192.0.2.20")),
			"spec.loadBalancerIP", "2001:db8::20", []string{"2001:db8::20", "disagrees"}},

		{"requested IPv6 on an IPv4 Service", testService("a", withAnnotation(lbIPs, "2001:db8::10")),
			"annotation " + lbIPs, "2001:db8::10", []string{"2001:db8::10", "IPv6", "ipFamilies"}},
		{"requested IPv4 on an IPv6 Service", testService("a", withFamilies(ss, v6), withAnnotation(lbIPs, "192.0.2.10")),
			"annotation " + lbIPs, "192.0.2.10", []string{"192.0.2.10", "IPv4", "SingleStack"}},
		{"spec.loadBalancerIP IPv6 on an IPv4 Service", testService("a", withLoadBalancerIP("2001:db8::10")),
			"spec.loadBalancerIP", "2001:db8::10", []string{"2001:db8::10", "IPv6"}},
		{"two requested on a SingleStack Service", testService("a", withFamilies(ss, v4), withAnnotation(lbIPs, "192.0.2.10,2001:db8::10")),
			"annotation " + lbIPs, "192.0.2.10,2001:db8::10", []string{"2001:db8::10 is IPv6", "IPv6"}},
		{"two requested on a nil-policy dual Service", testService("a", withFamilies("", v4, v6), withAnnotation(lbIPs, "192.0.2.10,2001:db8::10")),
			"annotation " + lbIPs, "192.0.2.10,2001:db8::10", []string{"2001:db8::10 is IPv6"}},

		{"RequireDualStack with one requested", testService("a", withFamilies(rds, v4, v6), withAnnotation(lbIPs, "192.0.2.10")),
			"annotation " + lbIPs, "192.0.2.10", []string{"192.0.2.10", "RequireDualStack"}},
		{"RequireDualStack with spec.loadBalancerIP only", testService("a", withFamilies(rds, v4, v6), withLoadBalancerIP("2001:db8::10")),
			"spec.loadBalancerIP", "2001:db8::10", []string{"2001:db8::10", "RequireDualStack"}},

		{"our pool and a disagreeing alias", testService("a", withAnnotation(AnnotationPool, "blue"), withAnnotation("metallb.io/address-pool", "red")),
			"annotation metallb.io/address-pool", "red", []string{"red", "blue", "keep only baremetal.dev/pool"}},
		{"our pool and a disagreeing old alias", testService("a", withAnnotation(AnnotationPool, "blue"), withAnnotation("metallb.universe.tf/address-pool", "red")),
			"annotation metallb.universe.tf/address-pool", "red", []string{"red", "blue", "metallb.universe.tf/address-pool"}},
		{"our pool agrees with one alias, not the other", testService("a", withAnnotation(AnnotationPool, "blue"),
			withAnnotation("metallb.io/address-pool", "blue"), withAnnotation("metallb.universe.tf/address-pool", "red")),
			"annotation metallb.universe.tf/address-pool", "red", []string{"red"}},
		{"empty pool annotation and an alias", testService("a", withAnnotation(AnnotationPool, ""), withAnnotation("metallb.io/address-pool", "red")),
			"annotation metallb.io/address-pool", "red", []string{"red"}},
		{"sharing key and a disagreeing alias", testService("a", withAnnotation(AnnotationSharingKey, "k1"), withAnnotation("metallb.io/allow-shared-ip", "k2")),
			"annotation metallb.io/allow-shared-ip", "k2", []string{"k1", "k2"}},
		{"requested IPs and a disagreeing alias", testService("a", withAnnotation(lbIPs, "192.0.2.1"), withAnnotation("metallb.universe.tf/loadBalancerIPs", "192.0.2.2")),
			"annotation metallb.universe.tf/loadBalancerIPs", "192.0.2.2", []string{"192.0.2.1", "192.0.2.2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.svc.DeepCopy()
			_, err := parseRequest(tt.svc)
			if !reflect.DeepEqual(before, tt.svc) {
				t.Errorf("parseRequest mutated its input:\nbefore %+v\nafter  %+v", before, tt.svc)
			}
			if err == nil {
				t.Fatal("parseRequest succeeded, want an error")
			}
			var invalid *InvalidServiceError
			if !errors.As(err, &invalid) {
				t.Fatalf("error %v (%T) is not an *InvalidServiceError", err, err)
			}
			if invalid.Service != "default/a" {
				t.Errorf("Service = %q, want default/a", invalid.Service)
			}
			if invalid.Field != tt.field {
				t.Errorf("Field = %q, want %q", invalid.Field, tt.field)
			}
			if invalid.Value != tt.value {
				t.Errorf("Value = %q, want %q", invalid.Value, tt.value)
			}
			for _, s := range append([]string{tt.field}, tt.msg...) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

// The RequireDualStack error names the offending requested address; when the annotation and
// spec.loadBalancerIP both name it, the reported value must still be an address the user wrote,
// not the two strings glued together.
func TestParseRequestRequireDualStackErrorValue(t *testing.T) {
	svc := testService("a", withFamilies(rds, v4, v6),
		withAnnotation(AnnotationLoadBalancerIPs, "192.0.2.10"), withLoadBalancerIP("192.0.2.10"))
	_, err := parseRequest(svc)
	var invalid *InvalidServiceError
	if !errors.As(err, &invalid) {
		t.Fatalf("error %v (%T) is not an *InvalidServiceError", err, err)
	}
	if invalid.Value != "192.0.2.10" {
		t.Errorf("Value = %q, want %q (error: %v)", invalid.Value, "192.0.2.10", err)
	}
}

func TestParseRequestClaim(t *testing.T) {
	port := func(protocol string, number int32) ipam.Port { return ipam.Port{Protocol: protocol, Number: number} }
	tests := []struct {
		name string
		svc  *v1.Service
		want ipam.Claim
	}{
		{"one port", testService("a"),
			ipam.Claim{Service: "default/a", Ports: []ipam.Port{port("TCP", 80)}}},
		{"no ports", testService("a", withPorts()),
			ipam.Claim{Service: "default/a"}},
		{"ports in spec order, several protocols", testService("a", withNamespace("web"), withPorts(tcp(443), udp(53), tcp(53), v1.ServicePort{Protocol: v1.ProtocolSCTP, Port: 9})),
			ipam.Claim{Service: "web/a", Ports: []ipam.Port{port("TCP", 443), port("UDP", 53), port("TCP", 53), port("SCTP", 9)}}},
		{"sharing key", testService("a", withAnnotation(AnnotationSharingKey, "k")),
			ipam.Claim{Service: "default/a", SharingKey: "k", Ports: []ipam.Port{port("TCP", 80)}}},
		{"Cluster traffic policy has no backend", testService("a", func(s *v1.Service) {
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyCluster
			s.Spec.Selector = map[string]string{"app": "web"}
		}), ipam.Claim{Service: "default/a", Ports: []ipam.Port{port("TCP", 80)}}},
		{"Local traffic policy: canonical selector", testService("a", withLocal(map[string]string{"tier": "fe", "app": "web"})),
			ipam.Claim{Service: "default/a", Ports: []ipam.Port{port("TCP", 80)}, Backend: "app=web,tier=fe"}},
		{"Local traffic policy without selector", testService("a", withLocal(nil)),
			ipam.Claim{Service: "default/a", Ports: []ipam.Port{port("TCP", 80)}, Backend: "<no selector: default/a>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.svc.DeepCopy()
			req, err := parseRequest(tt.svc)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(before, tt.svc) {
				t.Errorf("parseRequest mutated its input")
			}
			if !reflect.DeepEqual(req.claim, tt.want) {
				t.Errorf("claim = %+v, want %+v", req.claim, tt.want)
			}
		})
	}
}

// Two Services with equal selectors written in a different map order get the same backend, so
// they may share a VIP under externalTrafficPolicy Local.
func TestParseRequestBackendIsCanonical(t *testing.T) {
	a := testService("a", withLocal(map[string]string{"app": "web", "tier": "fe", "z": "1"}))
	b := testService("b", withLocal(map[string]string{"z": "1", "tier": "fe", "app": "web"}))
	ra, err := parseRequest(a)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := parseRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if ra.claim.Backend != rb.claim.Backend {
		t.Errorf("backends differ: %q vs %q", ra.claim.Backend, rb.claim.Backend)
	}
	if err := ipam.Compatible(ra.claim, rb.claim); err == nil {
		t.Errorf("claims without a sharing key are compatible")
	}
}

// parseRequest must not keep references into the Service: changing the Service afterwards must
// not change the request.
func TestParseRequestDoesNotAlias(t *testing.T) {
	svc := testService("a", withPorts(tcp(80), tcp(443)), withFamilies(pds, v4, v6))
	req, err := parseRequest(svc)
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.Ports[0].Port = 8080
	svc.Spec.IPFamilies[0] = v6
	if req.claim.Ports[0].Number != 80 {
		t.Errorf("claim.Ports aliases spec.ports")
	}
	if req.families[0] != ipam.IPv4 {
		t.Errorf("families alias spec.ipFamilies")
	}
}

func TestParseVIP(t *testing.T) {
	good := []string{"192.0.2.1", " 192.0.2.1 ", "2001:db8::1", "198.51.100.255", "fd00::1"}
	for _, s := range good {
		if a, err := parseVIP(s); err != nil || a != mustAddr(strings.TrimSpace(s)) {
			t.Errorf("parseVIP(%q) = %v, %v", s, a, err)
		}
	}
	bad := []string{"", " ", "x", "192.0.2.1/32", "192.0.2.1%eth0", "fe80::1%eth0", "::ffff:192.0.2.1",
		"0.0.0.0", "::", "127.0.0.1", "127.1.2.3", "::1", "224.0.0.5", "ff02::1", "192.0.2.01"}
	for _, s := range bad {
		if a, err := parseVIP(s); err == nil {
			t.Errorf("parseVIP(%q) = %v, want an error", s, a)
		}
	}
}
