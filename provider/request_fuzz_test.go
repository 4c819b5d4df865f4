package provider

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

// fuzzService builds a Service from fuzzed annotation values. The selector byte chooses the
// ipFamilyPolicy (bits 0-1), spec.ipFamilies (bits 2-4) and whether each annotation is written
// under our name or a MetalLB alias (bits 5-7).
func fuzzService(pool, sharingKey, ips, lbIP string, sel byte) *v1.Service {
	svc := testService("fuzz")
	switch sel & 3 {
	case 1:
		p := v1.IPFamilyPolicySingleStack
		svc.Spec.IPFamilyPolicy = &p
	case 2:
		p := v1.IPFamilyPolicyPreferDualStack
		svc.Spec.IPFamilyPolicy = &p
	case 3:
		p := v1.IPFamilyPolicyRequireDualStack
		svc.Spec.IPFamilyPolicy = &p
	}
	switch (sel >> 2) & 7 {
	case 1:
		svc.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol}
	case 2:
		svc.Spec.IPFamilies = []v1.IPFamily{v1.IPv6Protocol}
	case 3, 5:
		svc.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}
	case 4, 6:
		svc.Spec.IPFamilies = []v1.IPFamily{v1.IPv6Protocol, v1.IPv4Protocol}
	}
	set := func(name string, alias bool, value string) {
		if value == "" {
			return
		}
		if alias {
			name = aliases[name][int(sel)%len(aliases[name])]
		}
		if svc.Annotations == nil {
			svc.Annotations = map[string]string{}
		}
		svc.Annotations[name] = value
	}
	set(AnnotationPool, sel&0x20 != 0, pool)
	set(AnnotationSharingKey, sel&0x40 != 0, sharingKey)
	set(AnnotationLoadBalancerIPs, sel&0x80 != 0, ips)
	svc.Spec.LoadBalancerIP = lbIP
	return svc
}

func FuzzParseRequest(f *testing.F) {
	seeds := []struct {
		pool, key, ips, lbIP string
		sel                  byte
	}{
		{"", "", "", "", 0},
		{"blue", "k", "192.0.2.10", "", 0x05},
		{"", "", "192.0.2.10,2001:db8::10", "", 0x0e},
		{"", "", "2001:db8::10,192.0.2.10", "192.0.2.10", 0x13},
		{"", "", "192.0.2.10", "", 0x0f},
		{"", "", "", "2001:db8::1", 0x0a},
		{"", "", "::ffff:1.2.3.4", "", 0},
		{"", "", "fe80::1%eth0", "", 0x09},
		{"", "", "192.0.2.1,,", "", 0},
		{"", "", "192.0.2.1,192.0.2.2", "", 0x0e},
		{"", "", "127.0.0.1", "0.0.0.0", 0},
		{" p ", " k ", " 192.0.2.1 ", " 192.0.2.1 ", 0xe0},
		{"", "", "192.0.2.10", "192.0.2.11", 0},
		{"", "", "2001:db8::1", "", 0x04},
	}
	for _, s := range seeds {
		f.Add(s.pool, s.key, s.ips, s.lbIP, s.sel)
	}
	f.Fuzz(func(t *testing.T, pool, sharingKey, ips, lbIP string, sel byte) {
		svc := fuzzService(pool, sharingKey, ips, lbIP, sel)
		before := svc.DeepCopy()
		req, err := parseRequest(svc)
		if !reflect.DeepEqual(before, svc) {
			t.Fatalf("parseRequest mutated its input")
		}
		if err != nil {
			var invalid *InvalidServiceError
			if !errors.As(err, &invalid) {
				t.Fatalf("error %v is a %T, want *InvalidServiceError", err, err)
			}
			return
		}
		if len(req.families) == 0 || len(req.families) > 2 {
			t.Fatalf("families = %v", req.families)
		}
		for i, fam := range req.families {
			if fam != ipam.IPv4 && fam != ipam.IPv6 {
				t.Fatalf("family %v", fam)
			}
			if slices.Contains(req.families[:i], fam) {
				t.Fatalf("duplicate family in %v", req.families)
			}
		}
		if len(req.requested) > 2 {
			t.Fatalf("%d requested addresses", len(req.requested))
		}
		for fam, addr := range req.requested {
			switch {
			case !addr.IsValid():
				t.Fatalf("requested %v: invalid address", fam)
			case addr.Is4In6():
				t.Fatalf("requested %s is IPv4-mapped", addr)
			case addr.Zone() != "":
				t.Fatalf("requested %s has a zone", addr)
			case addr.IsLoopback() || addr.IsUnspecified() || addr.IsMulticast():
				t.Fatalf("requested %s cannot be a VIP", addr)
			case ipam.FamilyOf(addr) != fam:
				t.Fatalf("requested %s filed under %v", addr, fam)
			case !slices.Contains(req.families, fam):
				t.Fatalf("requested %s but families are %v", addr, req.families)
			}
		}
		if len(req.requested) > 0 {
			if len(req.families) != len(req.requested) || !req.requireAll {
				t.Fatalf("requested %v but families %v, requireAll %v", req.requested, req.families, req.requireAll)
			}
		}
		if req.claim.Service != "default/fuzz" {
			t.Fatalf("claim.Service = %q", req.claim.Service)
		}
	})
}

func FuzzParseProvidedNodeIPs(f *testing.F) {
	for _, s := range []string{
		"", "10.0.0.1", "2001:db8::1", "10.0.0.1,2001:db8::1", "2001:db8::1, 10.0.0.1",
		"10.0.0.1,10.0.0.2", "10.0.0.1,2001:db8::1,10.0.0.2", "fe80::1%eth0", "0.0.0.0", "::",
		"::ffff:10.0.0.1", "::ffff:10.0.0.1,10.0.0.2", ",", "x,y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addrs, err := parseProvidedNodeIPs(s)
		if err != nil {
			if addrs != nil {
				t.Fatalf("error %v with addresses %v", err, addrs)
			}
			return
		}
		if len(addrs) != 1 && len(addrs) != 2 {
			t.Fatalf("%d addresses: %v", len(addrs), addrs)
		}
		for _, a := range addrs {
			if !a.IsValid() || a.Zone() != "" || a.Is4In6() || a.IsUnspecified() {
				t.Fatalf("bad node address %v from %q", a, s)
			}
		}
		if len(addrs) == 2 && addrs[0].Is4() == addrs[1].Is4() {
			t.Fatalf("two addresses of one family: %v", addrs)
		}
	})
}
