package provider

import (
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

// testPool returns an IPPool with the given addresses and the API server's defaults left unset.
func testPool(name string, addresses ...string) *v1alpha1.IPPool {
	p := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1}}
	for _, a := range addresses {
		p.Spec.Addresses = append(p.Spec.Addresses, v1alpha1.AddressBlock(a))
	}
	return p
}

func boolPtr(b bool) *bool { return &b }

func TestNewPoolConfig(t *testing.T) {
	p := testPool("first", "192.0.2.240-192.0.2.250", "2001:db8:1::/120")
	p.Generation = 7
	p.Spec.Priority = -3
	cfg := newPoolConfig(p)
	if cfg.name != "first" || cfg.generation != 7 || cfg.priority != -3 {
		t.Errorf("cfg = %+v", cfg)
	}
	if !cfg.autoAssign {
		t.Error("autoAssign defaults to false, want true")
	}
	if cfg.invalid != nil {
		t.Errorf("invalid = %v", cfg.invalid)
	}
	if cfg.addresses == nil || cfg.addresses.Name() != "first" {
		t.Fatalf("addresses = %v", cfg.addresses)
	}
	if got := cfg.addresses.Size(ipam.IPv4).Int64(); got != 11 {
		t.Errorf("IPv4 size = %d, want 11", got)
	}
	// 2001:db8:1:: is the subnet-router anycast address of its /64: never handed out.
	if got := cfg.addresses.Size(ipam.IPv6).Int64(); got != 255 {
		t.Errorf("IPv6 size = %d, want 255", got)
	}
	if !cfg.addresses.Contains(netip.MustParseAddr("192.0.2.245")) || cfg.addresses.Contains(netip.MustParseAddr("192.0.2.251")) {
		t.Error("Contains is wrong")
	}
	if cfg.services != nil || cfg.namespaces != nil {
		t.Errorf("omitted selectors = %v, %v; want nil", cfg.services, cfg.namespaces)
	}

	for _, auto := range []bool{false, true} {
		p := testPool("p", "192.0.2.1")
		p.Spec.AutoAssign = boolPtr(auto)
		if got := newPoolConfig(p).autoAssign; got != auto {
			t.Errorf("autoAssign %v gives %v", auto, got)
		}
	}

	// The input is not changed.
	p = testPool("p", "192.0.2.0/24")
	p.Spec.ServiceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}
	before := p.DeepCopy()
	newPoolConfig(p)
	if !reflect.DeepEqual(before, p) {
		t.Error("newPoolConfig mutated the IPPool")
	}
}

func TestNewPoolConfigInvalid(t *testing.T) {
	badSelector := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "app", Operator: metav1.LabelSelectorOpIn},
	}}
	badLabel := &metav1.LabelSelector{MatchLabels: map[string]string{"bad key!": "x"}}
	tests := []struct {
		name          string
		pool          *v1alpha1.IPPool
		msg           []string
		wantAddresses bool
	}{
		{"garbage address", testPool("p", "192.0.2.1", "nope"), []string{"spec.addresses[1]", "nope"}, false},
		{"host bits", testPool("p", "192.0.2.1/24"), []string{"spec.addresses[0]", "host bits"}, false},
		{"reversed range", testPool("p", "192.0.2.9-192.0.2.1"), []string{"below its start"}, false},
		{"mixed range", testPool("p", "192.0.2.1-2001:db8::1"), []string{"mixes"}, false},
		{"zone", testPool("p", "fe80::1%eth0"), []string{"zone"}, false},
		{"serviceSelector In without values", func() *v1alpha1.IPPool {
			p := testPool("p", "192.0.2.1")
			p.Spec.ServiceSelector = badSelector
			return p
		}(), []string{"spec.serviceSelector"}, true},
		{"namespaceSelector In without values", func() *v1alpha1.IPPool {
			p := testPool("p", "192.0.2.1")
			p.Spec.NamespaceSelector = badSelector
			return p
		}(), []string{"spec.namespaceSelector"}, true},
		{"namespaceSelector with a bad label key", func() *v1alpha1.IPPool {
			p := testPool("p", "192.0.2.1")
			p.Spec.NamespaceSelector = badLabel
			return p
		}(), []string{"spec.namespaceSelector", "bad key!"}, true},
		{"bad addresses win over a bad selector", func() *v1alpha1.IPPool {
			p := testPool("p", "nope")
			p.Spec.ServiceSelector = badSelector
			return p
		}(), []string{"spec.addresses[0]"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := newPoolConfig(tt.pool)
			if cfg.invalid == nil {
				t.Fatal("invalid = nil")
			}
			for _, s := range tt.msg {
				if !strings.Contains(cfg.invalid.Error(), s) {
					t.Errorf("invalid %q does not contain %q", cfg.invalid, s)
				}
			}
			if !tt.wantAddresses && cfg.addresses != nil {
				t.Errorf("addresses = %v, want nil", cfg.addresses)
			}
			var parseErr *ipam.ParseError
			if !tt.wantAddresses && !errors.As(cfg.invalid, &parseErr) {
				t.Errorf("invalid %v does not wrap an *ipam.ParseError", cfg.invalid)
			}
			ok, why := cfg.selects(testService("a"), nil)
			if ok || !strings.Contains(why, `pool "p" is invalid`) {
				t.Errorf("selects = %v, %q; an invalid pool selects nothing", ok, why)
			}
		})
	}
}

func TestPoolSelects(t *testing.T) {
	withSelectors := func(services, namespaces *metav1.LabelSelector) *poolConfig {
		p := testPool("p", "192.0.2.0/24")
		p.Spec.ServiceSelector = services
		p.Spec.NamespaceSelector = namespaces
		cfg := newPoolConfig(p)
		if cfg.invalid != nil {
			t.Fatal(cfg.invalid)
		}
		return cfg
	}
	labelsSel := func(kv ...string) *metav1.LabelSelector {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return &metav1.LabelSelector{MatchLabels: m}
	}
	namespace := func(name string, l map[string]string) *v1.Namespace {
		return &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
	}
	web := testService("web", withNamespace("prod"), withLabels(map[string]string{"app": "web", "tier": "fe"}))
	bare := testService("bare", withNamespace("prod"))
	prod := namespace("prod", map[string]string{"env": "prod"})
	unlabelled := namespace("prod", nil)

	tests := []struct {
		name string
		pool *poolConfig
		svc  *v1.Service
		ns   *v1.Namespace
		want bool
		why  []string
	}{
		{"no selectors", withSelectors(nil, nil), bare, nil, true, nil},
		{"empty selectors select everything", withSelectors(&metav1.LabelSelector{}, &metav1.LabelSelector{}), bare, nil, true, nil},
		{"service selector matches", withSelectors(labelsSel("app", "web"), nil), web, prod, true, nil},
		{"service selector does not match", withSelectors(labelsSel("app", "db"), nil), web, prod, false,
			[]string{`pool "p"`, "serviceSelector", "app=db"}},
		{"service selector, unlabelled Service", withSelectors(labelsSel("app", "web"), nil), bare, prod, false,
			[]string{"serviceSelector"}},
		{"service selector expression NotIn", withSelectors(&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "app", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"db"}}}}, nil), bare, nil, true, nil},
		{"namespace selector matches", withSelectors(nil, labelsSel("env", "prod")), bare, prod, true, nil},
		{"namespace selector does not match", withSelectors(nil, labelsSel("env", "dev")), bare, prod, false,
			[]string{`pool "p"`, "namespaceSelector", "env=dev", `namespace "prod"`}},
		{"namespace selector, unlabelled namespace", withSelectors(nil, labelsSel("env", "prod")), bare, unlabelled, false,
			[]string{"namespaceSelector"}},
		{"namespace selector, unknown namespace", withSelectors(nil, labelsSel("env", "prod")), bare, nil, false,
			[]string{"namespaceSelector", `namespace "prod"`}},
		{"namespace selector DoesNotExist, unknown namespace", withSelectors(nil, &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "restricted", Operator: metav1.LabelSelectorOpDoesNotExist}}}), bare, nil, true, nil},
		{"both match", withSelectors(labelsSel("tier", "fe"), labelsSel("env", "prod")), web, prod, true, nil},
		{"service matches, namespace does not", withSelectors(labelsSel("tier", "fe"), labelsSel("env", "dev")), web, prod, false,
			[]string{"namespaceSelector"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, why := tt.pool.selects(tt.svc, tt.ns)
			if ok != tt.want {
				t.Fatalf("selects = %v (%q), want %v", ok, why, tt.want)
			}
			if ok && why != "" {
				t.Errorf("reason %q for a selected Service", why)
			}
			for _, s := range tt.why {
				if !strings.Contains(why, s) {
					t.Errorf("reason %q does not contain %q", why, s)
				}
			}
		})
	}
}

func TestSortPools(t *testing.T) {
	cfg := func(name string, priority int32) *poolConfig { return &poolConfig{name: name, priority: priority} }
	pools := []*poolConfig{cfg("a", 10), cfg("z", 0), cfg("b", 0), cfg("m", -5), cfg("c", 10), cfg("a0", 0)}
	sortPools(pools)
	var got []string
	for _, p := range pools {
		got = append(got, p.name)
	}
	want := []string{"m", "a0", "b", "z", "a", "c"}
	if !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}

	// Any input order gives the same result.
	c, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pools {
		c.pools[p.name] = p
	}
	for range 20 {
		got = got[:0]
		for _, p := range c.sortedPools() {
			got = append(got, p.name)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("sortedPools = %v, want %v", got, want)
		}
	}
}
