// Package desired computes, from the API's objects, the VIPs a node's announcers must make the
// network deliver: those of load-balanced Services with a ready or serving endpoint, with their
// pool's announcement settings and, for externalTrafficPolicy: Local, the nodes that may
// announce them. It is pure: objects in, VIPs out. Layer 2 (announcer/l2) and BGP both start
// from it.
package desired

import (
	"maps"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/election"
	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1/poolindex"
)

// AnnotationAllocatedPool is written by the cloud-controller-manager: the pool of each VIP.
const AnnotationAllocatedPool = v1alpha1.AnnotationAllocatedPool

// VIP is one VIP to announce, with what the announcers need beyond the election.
type VIP struct {
	election.VIP
	// Services using the VIP ("namespace/name"), sorted: they get the ownership events.
	Services []string
	// Pool the VIP came from ("" if unknown).
	Pool string
	// Interfaces to answer on; empty means the interface holding the node's IP.
	Interfaces []string
}

// labelSelector adapts a Kubernetes selector to election.Selector.
type labelSelector struct{ labels.Selector }

func (s labelSelector) Matches(l map[string]string) bool { return s.Selector.Matches(labels.Set(l)) }

// VIPs lists the VIPs to announce at layer 2: those of load-balanced Services served by
// this provider that have a ready or serving endpoint, with their candidate nodes
// (externalTrafficPolicy: Local) and their pool's settings. It is pure: objects in, VIPs out.
func VIPs(services []*v1.Service, endpointSlices []*discoveryv1.EndpointSlice, pools map[string]*v1alpha1.IPPool) []VIP {
	found := gather(services, endpointSlices, pools, func(name string) bool {
		_, ok := l2Settings(pools[name])
		return ok
	})
	out := make([]VIP, 0, len(found))
	for _, g := range found {
		info := VIP{VIP: election.VIP{Addr: g.Addr, Candidates: g.Candidates}, Pool: g.Pool, Services: g.Services}
		if l2, _ := l2Settings(pools[g.Pool]); l2 != nil {
			info.Interfaces = slices.Clone(l2.Interfaces)
			if sel, err := selector(l2.NodeSelector); err == nil && sel != nil {
				info.NodeSelector = labelSelector{sel}
			} else if err != nil {
				// A selector that does not parse selects nothing, rather than everything.
				info.NodeSelector = labelSelector{labels.Nothing()}
			}
		}
		out = append(out, info)
	}
	return out
}

// BGPVIP is one VIP to advertise over BGP.
type BGPVIP struct {
	Addr netip.Addr
	// Services using the VIP ("namespace/name"), sorted.
	Services []string
	// Pool the VIP came from, and its BGP settings (never nil).
	Pool     string
	Settings *v1alpha1.BGPAnnounce
	// Candidates are the nodes with a serving endpoint of every externalTrafficPolicy: Local
	// Service using the VIP; nil when every such Service is Cluster.
	Candidates map[string]bool
}

// BGPVIPs lists the VIPs of pools announced over BGP, on the same terms as VIPs: a Service
// with a ready or serving endpoint somewhere, and for Local Services the nodes that have one.
// A VIP whose pool is unknown (in no pool and not pinned, or pinned to a deleted one) is not
// advertised over BGP: unlike layer 2, where the default keeps a VIP answered, BGP needs the pool's peers.
func BGPVIPs(services []*v1.Service, endpointSlices []*discoveryv1.EndpointSlice, pools map[string]*v1alpha1.IPPool) []BGPVIP {
	found := gather(services, endpointSlices, pools, func(name string) bool { return bgpSettings(pools[name]) != nil })
	out := make([]BGPVIP, 0, len(found))
	for _, g := range found {
		out = append(out, BGPVIP{Addr: g.Addr, Services: g.Services, Pool: g.Pool, Settings: bgpSettings(pools[g.Pool]), Candidates: g.Candidates})
	}
	return out
}

func bgpSettings(pool *v1alpha1.IPPool) *v1alpha1.BGPAnnounce {
	if pool == nil || pool.Spec.Announce == nil {
		return nil
	}
	return pool.Spec.Announce.BGP
}

// gathered is a VIP in use by served Services whose pool an announcement protocol accepts.
type gathered struct {
	Addr       netip.Addr
	Services   []string
	Pool       string
	Candidates map[string]bool
}

// gather collects the VIPs of load-balanced Services of this provider that have a ready or
// serving endpoint and whose pool accept takes, sorted by address. A VIP's pool is the one its
// Service's allocated-pool annotation names, else the first pool containing it (poolindex).
func gather(services []*v1.Service, endpointSlices []*discoveryv1.EndpointSlice, pools map[string]*v1alpha1.IPPool, accept func(pool string) bool) []gathered {
	index := poolindex.New(slices.Collect(maps.Values(pools)))
	slicesByService := map[string][]*discoveryv1.EndpointSlice{}
	for _, es := range endpointSlices {
		name := es.Labels[discoveryv1.LabelServiceName]
		if name == "" {
			continue
		}
		key := es.Namespace + "/" + name
		slicesByService[key] = append(slicesByService[key], es)
	}

	byAddr := map[netip.Addr]*gathered{}
	// candidates per VIP: intersection over the Local Services using it.
	local := map[netip.Addr]map[string]bool{}
	// Services sharing a VIP may name different pools: the first by namespace/name decides its
	// announcement settings, whatever order the cache lists them in.
	services = slices.Clone(services)
	slices.SortFunc(services, func(a, b *v1.Service) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	for _, svc := range services {
		if svc.Spec.Type != v1.ServiceTypeLoadBalancer || svc.Spec.LoadBalancerClass != nil {
			continue
		}
		key := svc.Namespace + "/" + svc.Name
		nodes, serving := servingNodes(slicesByService[key])
		if !serving {
			continue
		}
		for i, ing := range svc.Status.LoadBalancer.Ingress {
			addr, err := netip.ParseAddr(ing.IP)
			if err != nil || addr.Zone() != "" {
				continue
			}
			poolName := index.PoolOf(svc.Annotations, ing.IP, i)
			if !accept(poolName) {
				continue
			}
			info, seen := byAddr[addr]
			if !seen {
				info = &gathered{Addr: addr, Pool: poolName}
				byAddr[addr] = info
			}
			info.Services = append(info.Services, key)
			if svc.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal {
				if prev, ok := local[addr]; ok {
					for n := range prev {
						if !nodes[n] {
							delete(prev, n)
						}
					}
				} else {
					local[addr] = maps.Clone(nodes)
				}
			}
		}
	}
	out := make([]gathered, 0, len(byAddr))
	for addr, info := range byAddr {
		if c, ok := local[addr]; ok {
			info.Candidates = c
		}
		slices.Sort(info.Services)
		out = append(out, *info)
	}
	slices.SortFunc(out, func(a, b gathered) int { return a.Addr.Compare(b.Addr) })
	return out
}

// servingNodes reports whether any endpoint is ready or serving, and on which nodes.
func servingNodes(endpointSlices []*discoveryv1.EndpointSlice) (map[string]bool, bool) {
	nodes := map[string]bool{}
	serving := false
	for _, es := range endpointSlices {
		for _, ep := range es.Endpoints {
			ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			if !ready && (ep.Conditions.Serving == nil || !*ep.Conditions.Serving) {
				continue
			}
			serving = true
			if ep.NodeName != nil {
				nodes[*ep.NodeName] = true
			}
		}
	}
	return nodes, serving
}

// l2Settings returns the pool's layer-2 settings and whether the pool is announced at layer 2.
// An unknown pool (the VIP is in no pool and not pinned, or pinned to a deleted pool) is
// announced with the defaults: its Services keep their VIPs, so they must keep working.
func l2Settings(pool *v1alpha1.IPPool) (*v1alpha1.L2Announce, bool) {
	if pool == nil || pool.Spec.Announce == nil {
		return nil, true
	}
	if pool.Spec.Announce.L2 == nil {
		return nil, false
	}
	return pool.Spec.Announce.L2, true
}

func selector(s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil {
		return nil, nil
	}
	return metav1.LabelSelectorAsSelector(s)
}

// ElectionNode translates a Node; healthy comes from the failure detector.
func ElectionNode(n *v1.Node, healthy bool) election.Node {
	en := election.Node{Name: n.Name, Labels: n.Labels, Unschedulable: n.Spec.Unschedulable, Healthy: healthy}
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeNetworkUnavailable && c.Status == v1.ConditionTrue {
			en.NetworkUnavailable = true
		}
	}
	return en
}
