package check

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

// TestGatherAPI checks the adapter's translation of objects into Facts: which Services' VIPs
// count (layer-2 pools, unknown pools; not BGP-only pools, not other load-balancer classes), the
// pool's interfaces, the member selector and passive BGPPeers. A fake clientset is enough: it is
// read-only translation, nothing here depends on the API server's behaviour.
func TestGatherAPI(t *testing.T) {
	node := func(name string, lbls map[string]string, addrs ...string) *v1.Node {
		n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}}
		for _, a := range addrs {
			n.Status.Addresses = append(n.Status.Addresses, v1.NodeAddress{Type: v1.NodeInternalIP, Address: a})
		}
		return n
	}
	svc := func(name, pool string, class *string, ips ...string) *v1.Service {
		s := &v1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: map[string]string{v1alpha1.AnnotationAllocatedPool: pool}},
			Spec:       v1.ServiceSpec{Type: v1.ServiceTypeLoadBalancer, LoadBalancerClass: class},
		}
		for _, ip := range ips {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, v1.LoadBalancerIngress{IP: ip})
		}
		return s
	}
	other := "example.com/other"
	client := fake.NewClientset(
		node("node-a", map[string]string{"lb": "yes"}, "2001:db8::1", "198.18.0.1"),
		node("node-b", map[string]string{"lb": "yes"}, "198.18.0.2"),
		node("node-c", nil, "198.18.0.3"),
		svc("web", "l2-pool", nil, "198.18.0.240"),
		svc("web-too", "l2-pool", nil, "198.18.0.240"),
		svc("routed", "bgp-pool", nil, "198.18.0.241"),
		svc("unknown", "", nil, "::ffff:198.18.0.242"),
		svc("derived", "", nil, "198.18.0.244"),
		svc("theirs", "l2-pool", &other, "198.18.0.243"),
		&v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cluster"}, Spec: v1.ServiceSpec{Type: v1.ServiceTypeClusterIP}},
	)
	pool := func(name string, addresses []any, announce map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "baremetal.dev/v1alpha1", "kind": "IPPool", "metadata": map[string]any{"name": name},
			"spec": map[string]any{"addresses": addresses, "announce": announce},
		}}
	}
	peer := func(name string, passive bool, sel map[string]any) *unstructured.Unstructured {
		spec := map[string]any{"peerAddress": "198.18.0.9", "peerASN": int64(64512), "myASN": int64(64513), "passive": passive}
		if sel != nil {
			spec["nodeSelector"] = sel
		}
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "baremetal.dev/v1alpha1", "kind": "BGPPeer", "metadata": map[string]any{"name": name}, "spec": spec,
		}}
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.IPPoolResource: "IPPoolList", v1alpha1.BGPPeerResource: "BGPPeerList"},
		pool("l2-pool", []any{"198.18.0.240", "198.18.0.243-198.18.0.244"}, map[string]any{"l2": map[string]any{"interfaces": []any{"eth1"}}}),
		pool("bgp-pool", []any{"198.18.0.241"}, map[string]any{"bgp": map[string]any{}}),
		peer("tor-passive", true, map[string]any{"matchLabels": map[string]any{"lb": "yes"}}),
		peer("tor-elsewhere", true, map[string]any{"matchLabels": map[string]any{"rack": "b"}}),
		peer("tor-active", false, nil),
	)
	a := gatherAPI(context.Background(), Config{NodeName: "node-a", Client: client, Dynamic: dyn, MemberSelector: "lb=yes"})
	if !a.Reached || !a.NodeFound || a.Err != "" || a.VIPsErr != "" || a.KubeProxyErr != "" || a.KubeProxy != nil {
		t.Fatalf("gatherAPI = %+v", a)
	}
	if want := []netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("2001:db8::1")}; !slices.Equal(a.InternalIPs, want) {
		t.Errorf("InternalIPs %v, want %v (IPv4 first)", a.InternalIPs, want)
	}
	if len(a.Peers) != 1 || a.Peers[0].Name != "node-b" {
		t.Errorf("Peers %+v, want node-b only (the member selector)", a.Peers)
	}
	wantVIPs := []VIP{
		{Addr: netip.MustParseAddr("198.18.0.240"), Pool: "l2-pool", Interfaces: []string{"eth1"}, Services: []string{"default/web", "default/web-too"}},
		{Addr: netip.MustParseAddr("198.18.0.242"), Services: []string{"default/unknown"}},
		// No annotation: the address tells the pool.
		{Addr: netip.MustParseAddr("198.18.0.244"), Pool: "l2-pool", Interfaces: []string{"eth1"}, Services: []string{"default/derived"}},
	}
	if len(a.VIPs) != len(wantVIPs) {
		t.Fatalf("VIPs %+v, want %+v", a.VIPs, wantVIPs)
	}
	for i, w := range wantVIPs {
		g := a.VIPs[i]
		if g.Addr != w.Addr || g.Pool != w.Pool || !slices.Equal(g.Interfaces, w.Interfaces) || !slices.Equal(g.Services, w.Services) {
			t.Errorf("VIP %d = %+v, want %+v", i, g, w)
		}
	}
	if !slices.Equal(a.PassiveBGPPeers, []string{"tor-passive"}) {
		t.Errorf("PassiveBGPPeers %v, want [tor-passive]", a.PassiveBGPPeers)
	}

	if a := gatherAPI(context.Background(), Config{NodeName: "node-x", Client: client}); !a.Reached || a.NodeFound {
		t.Errorf("a missing node: %+v", a)
	}
}
