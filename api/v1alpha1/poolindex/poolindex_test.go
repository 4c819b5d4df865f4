package poolindex

import (
	"net/netip"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

func pool(name string, priority int32, addresses ...string) *v1alpha1.IPPool {
	p := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.IPPoolSpec{Priority: priority}}
	for _, a := range addresses {
		p.Spec.Addresses = append(p.Spec.Addresses, v1alpha1.AddressBlock(a))
	}
	return p
}

func TestPoolOf(t *testing.T) {
	index := New([]*v1alpha1.IPPool{
		pool("b-wide", 0, "198.18.0.0/24", "2001:db8::/64"),
		pool("a-wide", 0, "198.18.0.0/25"),
		pool("urgent", -1, "198.18.0.100-198.18.0.110"),
		pool("broken", -5, "198.18.0.0/24", "not-an-address"),
		nil,
	})
	for _, tc := range []struct {
		name       string
		annotation string
		vip        string
		i          int
		want       string
	}{
		{name: "name breaks a priority tie", vip: "198.18.0.5", want: "a-wide"},
		{name: "lower priority value first", vip: "198.18.0.105", want: "urgent"},
		{name: "only one pool contains it", vip: "198.18.0.200", want: "b-wide"},
		{name: "IPv6", vip: "2001:db8::7", want: "b-wide"},
		{name: "IPv4-mapped is the IPv4 address", vip: "::ffff:198.18.0.200", want: "b-wide"},
		{name: "an IPv4 /24's network address is in no pool", vip: "198.18.0.0", want: ""},
		{name: "outside every pool", vip: "198.18.9.9", want: ""},
		{name: "not an address", vip: "nope", want: ""},
		{name: "the annotation pins another pool", annotation: "198.18.0.5=b-wide", vip: "198.18.0.5", want: "b-wide"},
		{name: "the annotation pins a pool outside every pool", annotation: "198.18.9.9=gone", vip: "198.18.9.9", want: "gone"},
		{name: "an entry for another VIP does not count", annotation: "198.18.0.6=b-wide", vip: "198.18.0.5", want: "a-wide"},
		{name: "a positional value from an old CCM", annotation: "x,b-wide", vip: "198.18.0.5", i: 1, want: "b-wide"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			annotations := map[string]string{}
			if tc.annotation != "" {
				annotations[v1alpha1.AnnotationAllocatedPool] = tc.annotation
			}
			if got := index.PoolOf(annotations, tc.vip, tc.i); got != tc.want {
				t.Errorf("PoolOf(%q, %s) = %q, want %q", tc.annotation, tc.vip, got, tc.want)
			}
			if tc.annotation != "" {
				return
			}
			if addr, err := netip.ParseAddr(tc.vip); err == nil && index.Containing(addr) != tc.want {
				t.Errorf("Containing(%s) = %q, want %q", tc.vip, index.Containing(addr), tc.want)
			}
		})
	}
	var empty *Index
	if got := empty.Containing(netip.MustParseAddr("198.18.0.1")); got != "" {
		t.Errorf("a nil index names %q", got)
	}
}

func TestCompare(t *testing.T) {
	if Compare(-1, "z", 0, "a") >= 0 || Compare(0, "a", 0, "b") >= 0 || Compare(3, "a", 3, "a") != 0 || Compare(2, "a", 1, "z") <= 0 {
		t.Error("Compare does not order by priority, then name")
	}
}
