package check

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1/poolindex"
)

// The kube-proxy ConfigMap kubeadm writes, and its key holding the KubeProxyConfiguration.
const (
	kubeProxyNamespace = "kube-system"
	kubeProxyConfigMap = "kube-proxy"
	kubeProxyKey       = "config.conf"
)

// gatherAPI reads what the checks need from the API server. It is the adapter between
// Kubernetes objects and Facts: nothing past it sees a Kubernetes type.
func gatherAPI(ctx context.Context, cfg Config) APIFacts {
	var a APIFacts
	core := cfg.Client.CoreV1()
	node, err := core.Nodes().Get(ctx, cfg.NodeName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		a.Reached = true
	case err != nil:
		a.Err = err.Error()
		return a
	default:
		a.Reached, a.NodeFound = true, true
		a.InternalIPs = internalIPs(node)
	}

	cm, err := core.ConfigMaps(kubeProxyNamespace).Get(ctx, kubeProxyConfigMap, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		// Not kubeadm's layout, or no kube-proxy: the kernel decides alone.
	case err != nil:
		a.KubeProxyErr = err.Error()
	case cm.Data[kubeProxyKey] == "":
		a.KubeProxyErr = fmt.Sprintf("ConfigMap %s/%s has no %s key", kubeProxyNamespace, kubeProxyConfigMap, kubeProxyKey)
	default:
		a.KubeProxy, err = ParseKubeProxyConfig([]byte(cm.Data[kubeProxyKey]))
		if err != nil {
			a.KubeProxyErr = fmt.Sprintf("ConfigMap %s/%s, key %s: %v", kubeProxyNamespace, kubeProxyConfigMap, kubeProxyKey, err)
		}
	}

	var problems []string
	if peers, err := gatherPeers(ctx, cfg); err != nil {
		problems = append(problems, err.Error())
	} else {
		a.Peers = peers
	}
	pools, err := listPools(ctx, cfg)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if vips, err := gatherVIPs(ctx, cfg, pools); err != nil {
		problems = append(problems, err.Error())
	} else {
		a.VIPs = vips
	}
	a.VIPsErr = strings.Join(problems, "; ")
	if node != nil && a.NodeFound {
		a.PassiveBGPPeers = passivePeers(ctx, cfg, node)
	}
	return a
}

// internalIPs are a Node's InternalIP addresses, IPv4 first, as the announcer orders them.
func internalIPs(n *v1.Node) []netip.Addr {
	var out []netip.Addr
	for _, a := range n.Status.Addresses {
		if a.Type != v1.NodeInternalIP {
			continue
		}
		if addr, err := netip.ParseAddr(a.Address); err == nil {
			out = append(out, addr.Unmap())
		}
	}
	slices.SortStableFunc(out, func(a, b netip.Addr) int {
		switch {
		case a.Is4() == b.Is4():
			return 0
		case a.Is4():
			return -1
		}
		return 1
	})
	return out
}

// gatherPeers lists the other member nodes (the announcer's --member-selector) and their
// InternalIPs.
func gatherPeers(ctx context.Context, cfg Config) ([]Peer, error) {
	sel := labels.Everything()
	if cfg.MemberSelector != "" {
		var err error
		if sel, err = labels.Parse(cfg.MemberSelector); err != nil {
			return nil, fmt.Errorf("member selector %q: %w", cfg.MemberSelector, err)
		}
	}
	nodes, err := cfg.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("listing Nodes: %w", err)
	}
	var out []Peer
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if n.Name != cfg.NodeName {
			out = append(out, Peer{Name: n.Name, Addrs: internalIPs(n)})
		}
	}
	return out, nil
}

// listPools reads the IPPools by name; nil without a dynamic client.
func listPools(ctx context.Context, cfg Config) (map[string]*v1alpha1.IPPool, error) {
	if cfg.Dynamic == nil {
		return nil, nil
	}
	list, err := cfg.Dynamic.Resource(v1alpha1.IPPoolResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing IPPools: %w", err)
	}
	out := map[string]*v1alpha1.IPPool{}
	for _, u := range list.Items {
		p := &v1alpha1.IPPool{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), p); err == nil {
			out[p.Name] = p
		}
	}
	return out, nil
}

// gatherVIPs lists the VIPs in the status of this provider's LoadBalancer Services whose pool is
// announced at layer 2 (an unknown pool counts as layer 2, as the announcer treats it), whether
// or not they have endpoints: a host answering for a VIP is a problem before traffic comes.
func gatherVIPs(ctx context.Context, cfg Config, pools map[string]*v1alpha1.IPPool) ([]VIP, error) {
	list, err := cfg.Client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing Services: %w", err)
	}
	index := poolindex.New(slices.Collect(maps.Values(pools)))
	byAddr := map[netip.Addr]*VIP{}
	for i := range list.Items {
		svc := &list.Items[i]
		if svc.Spec.Type != v1.ServiceTypeLoadBalancer || svc.Spec.LoadBalancerClass != nil {
			continue
		}
		for k, ing := range svc.Status.LoadBalancer.Ingress {
			addr, err := netip.ParseAddr(ing.IP)
			if err != nil || addr.Zone() != "" {
				continue
			}
			addr = addr.Unmap()
			poolName := index.PoolOf(svc.Annotations, ing.IP, k)
			pool := pools[poolName]
			if pool != nil && pool.Spec.Announce != nil && pool.Spec.Announce.L2 == nil {
				continue // announced over BGP only
			}
			v := byAddr[addr]
			if v == nil {
				v = &VIP{Addr: addr, Pool: poolName}
				if pool != nil && pool.Spec.Announce != nil && pool.Spec.Announce.L2 != nil {
					v.Interfaces = slices.Clone(pool.Spec.Announce.L2.Interfaces)
				}
				byAddr[addr] = v
			}
			v.Services = append(v.Services, svc.Namespace+"/"+svc.Name)
		}
	}
	out := make([]VIP, 0, len(byAddr))
	for _, v := range byAddr {
		slices.Sort(v.Services)
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b VIP) int { return a.Addr.Compare(b.Addr) })
	return out, nil
}

// passivePeers are the names of the passive BGPPeers that select node; nil when they cannot
// be listed (no BGPPeer CRD, no RBAC: BGP is optional).
func passivePeers(ctx context.Context, cfg Config, node *v1.Node) []string {
	if cfg.Dynamic == nil {
		return nil
	}
	list, err := cfg.Dynamic.Resource(v1alpha1.BGPPeerResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	var out []string
	for _, u := range list.Items {
		p := &v1alpha1.BGPPeer{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), p); err != nil || !p.Spec.Passive {
			continue
		}
		if p.Spec.NodeSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(p.Spec.NodeSelector)
			if err != nil || !sel.Matches(labels.Set(node.Labels)) {
				continue
			}
		}
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}
