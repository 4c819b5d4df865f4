package desired

import (
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

func svc(name string, policy v1.ServiceExternalTrafficPolicy, pools string, ips ...string) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: map[string]string{AnnotationAllocatedPool: pools}},
		Spec:       v1.ServiceSpec{Type: v1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: policy},
	}
	for _, ip := range ips {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, v1.LoadBalancerIngress{IP: ip})
	}
	return s
}

type ep struct {
	node           string
	ready, serving *bool
}

func slice(service string, eps ...ep) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{
		Namespace: "default", Name: service + "-x", Labels: map[string]string{discoveryv1.LabelServiceName: service},
	}}
	for _, e := range eps {
		node := e.node
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{NodeName: &node, Conditions: discoveryv1.EndpointConditions{Ready: e.ready, Serving: e.serving}})
	}
	return es
}

func b(v bool) *bool { return &v }

func TestDesiredVIPs(t *testing.T) {
	l2Pool := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "l2"}, Spec: v1alpha1.IPPoolSpec{Announce: &v1alpha1.Announce{L2: &v1alpha1.L2Announce{
		Interfaces:   []string{"eth1"},
		NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"edge": "true"}},
	}}}}
	bgpPool := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "bgp"}, Spec: v1alpha1.IPPoolSpec{Announce: &v1alpha1.Announce{BGP: &v1alpha1.BGPAnnounce{}}}}
	pools := map[string]*v1alpha1.IPPool{"l2": l2Pool, "bgp": bgpPool, "default": {ObjectMeta: metav1.ObjectMeta{Name: "default"}}}
	cluster, local := v1.ServiceExternalTrafficPolicyCluster, v1.ServiceExternalTrafficPolicyLocal

	classed := svc("classed", cluster, "default", "198.18.0.9")
	classed.Spec.LoadBalancerClass = ptr("other.example/lb")
	nodePort := svc("nodeport", cluster, "default", "198.18.0.10")
	nodePort.Spec.Type = v1.ServiceTypeNodePort

	got := VIPs(
		[]*v1.Service{
			svc("web", cluster, "default", "198.18.0.1"),
			svc("no-endpoints", cluster, "default", "198.18.0.2"),
			svc("not-ready", cluster, "default", "198.18.0.3"),
			svc("terminating-serving", cluster, "default", "198.18.0.4"),
			svc("local", local, "default", "198.18.0.5"),
			svc("dual", cluster, "default,default", "198.18.0.6", "2001:db8::6"),
			svc("on-bgp", cluster, "bgp", "198.18.0.7"),
			svc("on-l2", cluster, "l2", "198.18.0.8"),
			classed, nodePort,
			svc("pending", cluster, ""),
			svc("share-a", local, "default", "198.18.0.11"),
			svc("share-b", local, "default", "198.18.0.11"),
			svc("unknown-pool", cluster, "deleted-pool", "198.18.0.12"),
		},
		[]*discoveryv1.EndpointSlice{
			slice("web", ep{node: "n1"}),
			slice("not-ready", ep{node: "n1", ready: b(false)}),
			slice("terminating-serving", ep{node: "n1", ready: b(false), serving: b(true)}),
			slice("local", ep{node: "n2"}, ep{node: "n3"}, ep{node: "n1", ready: b(false)}),
			slice("dual", ep{node: "n1"}),
			slice("on-bgp", ep{node: "n1"}),
			slice("on-l2", ep{node: "n1"}),
			slice("classed", ep{node: "n1"}),
			slice("nodeport", ep{node: "n1"}),
			slice("share-a", ep{node: "n1"}, ep{node: "n2"}),
			slice("share-b", ep{node: "n2"}, ep{node: "n3"}),
			slice("unknown-pool", ep{node: "n1"}),
		},
		pools,
	)
	want := map[string]struct {
		services   []string
		candidates []string // nil = any
		interfaces []string
		selector   bool
	}{
		"198.18.0.1":  {services: []string{"default/web"}},
		"198.18.0.4":  {services: []string{"default/terminating-serving"}},
		"198.18.0.5":  {services: []string{"default/local"}, candidates: []string{"n2", "n3"}},
		"198.18.0.6":  {services: []string{"default/dual"}},
		"2001:db8::6": {services: []string{"default/dual"}},
		"198.18.0.8":  {services: []string{"default/on-l2"}, interfaces: []string{"eth1"}, selector: true},
		"198.18.0.11": {services: []string{"default/share-a", "default/share-b"}, candidates: []string{"n2"}},
		"198.18.0.12": {services: []string{"default/unknown-pool"}},
	}
	if len(got) != len(want) {
		var addrs []string
		for _, v := range got {
			addrs = append(addrs, v.Addr.String())
		}
		t.Fatalf("got VIPs %v, want %d of them", addrs, len(want))
	}
	for _, v := range got {
		w, ok := want[v.Addr.String()]
		if !ok {
			t.Errorf("unexpected VIP %s", v.Addr)
			continue
		}
		if !slices.Equal(v.Services, w.services) {
			t.Errorf("%s: services %v, want %v", v.Addr, v.Services, w.services)
		}
		var cands []string
		for n, ok := range v.Candidates {
			if ok {
				cands = append(cands, n)
			}
		}
		slices.Sort(cands)
		if (v.Candidates == nil) != (w.candidates == nil) || !slices.Equal(cands, w.candidates) {
			t.Errorf("%s: candidates %v (nil %v), want %v", v.Addr, cands, v.Candidates == nil, w.candidates)
		}
		if !slices.Equal(v.Interfaces, w.interfaces) {
			t.Errorf("%s: interfaces %v, want %v", v.Addr, v.Interfaces, w.interfaces)
		}
		if (v.NodeSelector != nil) != w.selector {
			t.Errorf("%s: node selector set = %v, want %v", v.Addr, v.NodeSelector != nil, w.selector)
		}
		if w.selector && (v.NodeSelector.Matches(map[string]string{"edge": "false"}) || !v.NodeSelector.Matches(map[string]string{"edge": "true"})) {
			t.Errorf("%s: node selector does not follow the pool's l2.nodeSelector", v.Addr)
		}
	}
	// The local Service's candidate set is a copy per VIP: later intersections never alias.
	for i := 1; i < len(got); i++ {
		if got[i-1].Addr.Compare(got[i].Addr) >= 0 {
			t.Errorf("VIPs not sorted: %s before %s", got[i-1].Addr, got[i].Addr)
		}
	}
}

func TestElectionNode(t *testing.T) {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"a": "b"}}, Spec: v1.NodeSpec{Unschedulable: true},
		Status: v1.NodeStatus{Conditions: []v1.NodeCondition{{Type: v1.NodeNetworkUnavailable, Status: v1.ConditionTrue}}}}
	en := ElectionNode(n, true)
	if en.Name != "n1" || !en.Unschedulable || !en.NetworkUnavailable || !en.Healthy || en.Labels["a"] != "b" {
		t.Errorf("electionNode = %+v", en)
	}
}

func ptr[T any](v T) *T { return &v }

// Services sharing a VIP may name different pools: the VIP's settings come from the first
// Service by namespace/name, whatever order the cache lists them in.
func TestDesiredVIPsSharedPoolIsDeterministic(t *testing.T) {
	eth1 := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "eth1"}, Spec: v1alpha1.IPPoolSpec{Announce: &v1alpha1.Announce{L2: &v1alpha1.L2Announce{Interfaces: []string{"eth1"}}}}}
	eth2 := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "eth2"}, Spec: v1alpha1.IPPoolSpec{Announce: &v1alpha1.Announce{L2: &v1alpha1.L2Announce{Interfaces: []string{"eth2"}}}}}
	pools := map[string]*v1alpha1.IPPool{"eth1": eth1, "eth2": eth2}
	a := svc("a", v1.ServiceExternalTrafficPolicyCluster, "eth2", "198.18.0.7")
	z := svc("z", v1.ServiceExternalTrafficPolicyCluster, "eth1", "198.18.0.7")
	slices := []*discoveryv1.EndpointSlice{slice("a", ep{node: "n1"}), slice("z", ep{node: "n1"})}
	for _, order := range [][]*v1.Service{{a, z}, {z, a}} {
		got := VIPs(order, slices, pools)
		if len(got) != 1 || got[0].Pool != "eth2" || !slicesEqual(got[0].Interfaces, []string{"eth2"}) {
			t.Fatalf("order %s,%s: got %+v, want the VIP on pool eth2 (Service default/a)", order[0].Name, order[1].Name, got)
		}
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// Without an allocated-pool annotation a VIP's pool is the first, by priority then name, that
// contains it: the announcer must find its settings (BGP or layer 2) as the CCM attributes it.
func TestDesiredVIPsDerivePoolsFromAddresses(t *testing.T) {
	bgpPool := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "z-routed"}, Spec: v1alpha1.IPPoolSpec{
		Priority:  -1,
		Addresses: []v1alpha1.AddressBlock{"198.18.0.16/28"},
		Announce:  &v1alpha1.Announce{BGP: &v1alpha1.BGPAnnounce{}},
	}}
	l2Pool := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "a-l2"}, Spec: v1alpha1.IPPoolSpec{
		Addresses: []v1alpha1.AddressBlock{"198.18.0.0/24"},
		Announce:  &v1alpha1.Announce{L2: &v1alpha1.L2Announce{Interfaces: []string{"eth1"}}},
	}}
	pools := map[string]*v1alpha1.IPPool{bgpPool.Name: bgpPool, l2Pool.Name: l2Pool}
	cluster := v1.ServiceExternalTrafficPolicyCluster
	services := []*v1.Service{
		svc("routed", cluster, "", "198.18.0.20"),
		svc("answered", cluster, "", "198.18.0.5"),
		// Pinned by the CCM: it came from the layer-2 pool although the routed pool, first by
		// priority, contains it.
		svc("pinned", cluster, "198.18.0.21=a-l2", "198.18.0.21"),
	}
	endpointSlices := []*discoveryv1.EndpointSlice{slice("routed", ep{node: "n1"}), slice("answered", ep{node: "n1"}), slice("pinned", ep{node: "n1"})}

	var l2 []string
	for _, v := range VIPs(services, endpointSlices, pools) {
		l2 = append(l2, v.Addr.String()+"="+v.Pool+"/"+strings.Join(v.Interfaces, ","))
	}
	if want := []string{"198.18.0.5=a-l2/eth1", "198.18.0.21=a-l2/eth1"}; !slices.Equal(l2, want) {
		t.Errorf("layer-2 VIPs %v, want %v", l2, want)
	}
	var routed []string
	for _, v := range BGPVIPs(services, endpointSlices, pools) {
		routed = append(routed, v.Addr.String()+"="+v.Pool)
	}
	if want := []string{"198.18.0.20=z-routed"}; !slices.Equal(routed, want) {
		t.Errorf("BGP VIPs %v, want %v", routed, want)
	}
}
