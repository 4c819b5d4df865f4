package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/baremetal-dev/cloud-provider-baremetal/test/framework"
	"github.com/baremetal-dev/cloud-provider-baremetal/test/frr"
)

// BGPDemoService is examples/bgp.yaml's dual-stack Service (namespace default), whose VIPs come
// from bgp-pool and reach the nodes only through BGP.
const BGPDemoService = "bgp-demo"

// applyBGPDemo applies examples/bgp.yaml (the BGPPeers of lab-router, bgp-pool and the bgp-demo
// Service) and waits for the Service's two VIPs. It does not wait for routes: that is the
// announcer's part, which the e2e tests check.
func (l *Lab) applyBGPDemo(ctx context.Context) error {
	if err := framework.ApplyFiles(ctx, l.Config, filepath.Join(l.Root, "examples/bgp.yaml")); err != nil {
		return fmt.Errorf("applying examples/bgp.yaml: %w", err)
	}
	start := time.Now()
	var vips []string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		svc, err := l.Client.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, BGPDemoService, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		vips = vips[:0]
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			vips = append(vips, ing.IP)
		}
		return len(vips) == 2, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the EXTERNAL-IPs of service/%s (see .lab/%s.log): %w", BGPDemoService, CCMComponent, err)
	}
	l.BGPDemoVIPs = nil
	for _, v := range vips {
		if a, err := netip.ParseAddr(v); err == nil {
			l.BGPDemoVIPs = append(l.BGPDemoVIPs, a)
		}
	}
	l.printf("%-36s EXTERNAL-IPs %s, in %.1fs\n", "service/"+BGPDemoService, strings.Join(vips, ","), time.Since(start).Seconds())
	return nil
}

// HostRoute is the /32 or /128 a VIP is advertised as.
func HostRoute(vip netip.Addr) netip.Prefix {
	return netip.PrefixFrom(vip.Unmap(), vip.Unmap().BitLen())
}

// NodeOfAddress names the lab node an address belongs to: its LAN address of either family, or
// the link-local address of its LAN interface (what zebra installs as an IPv6 next hop when a
// node sends one). ok is false for any other address.
func (l *Lab) NodeOfAddress(addr netip.Addr) (node string, ok bool) {
	addr = addr.Unmap().WithZone("")
	for _, n := range Nodes {
		h, _ := Node(n)
		if addr == h.IPv4 || addr == h.IPv6 {
			return n, true
		}
		if addr.IsLinkLocalUnicast() {
			if ll, err := linkLocal(h.Namespace, LANInterface); err == nil && ll == addr {
				return n, true
			}
		}
	}
	return "", false
}

// linkLocal is the IPv6 link-local address of an interface in a namespace.
func linkLocal(ns, ifname string) (netip.Addr, error) {
	out, err := run(context.Background(), "ip", "-n", ns, "-6", "-br", "addr", "show", "dev", ifname, "scope", "link")
	if err != nil {
		return netip.Addr{}, err
	}
	for _, f := range strings.Fields(out) {
		if p, err := netip.ParsePrefix(f); err == nil && p.Addr().IsLinkLocalUnicast() {
			return p.Addr(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no link-local address on %s in %s", ifname, ns)
}

// RouteState is what lab-router has for one prefix: the nodes of its BGP paths (valid ones,
// by the peer that sent them), which of those are multipath, and the nodes its kernel forwards
// to. Each list is sorted; an address that is no lab node's appears as it is.
type RouteState struct {
	Prefix    netip.Prefix
	Paths     map[string]frr.RIBPath // valid paths by node
	Multipath []string               // nodes whose path is best or multipath
	Kernel    []string               // next hops of the kernel route, as nodes
	// KernelErr is why the kernel route could not be read (frr.ErrNoKernelRoute when absent).
	KernelErr error
}

// RouteState reads lab-router's BGP table and kernel for prefix. A prefix the router does not
// have is a RouteState with no paths and no kernel next hops, not an error.
func (l *Lab) RouteState(ctx context.Context, prefix netip.Prefix) (RouteState, error) {
	st := RouteState{Prefix: prefix, Paths: map[string]frr.RIBPath{}}
	var rt frr.RIBRoute
	if err := l.routerJSON(ctx, routeCommand(prefix), &rt); err != nil {
		return st, err
	}
	for _, p := range rt.Paths {
		if !p.Valid {
			continue
		}
		node := p.Peer.PeerID
		if a, err := netip.ParseAddr(node); err == nil {
			if n, ok := l.NodeOfAddress(a); ok {
				node = n
			}
		}
		st.Paths[node] = p
		if p.Multipath || (p.Bestpath != nil && p.Bestpath.Overall) {
			st.Multipath = append(st.Multipath, node)
		}
	}
	slices.Sort(st.Multipath)
	kr, err := frr.KernelNextHops(ctx, RouterNamespace, prefix)
	if err != nil {
		st.KernelErr = err
		return st, nil
	}
	for _, nh := range kr.NextHops {
		name := nh.String()
		if n, ok := l.NodeOfAddress(nh); ok {
			name = n
		}
		st.Kernel = append(st.Kernel, name)
	}
	slices.Sort(st.Kernel)
	return st, nil
}

func (st RouteState) String() string {
	var paths []string
	for n := range st.Paths {
		paths = append(paths, n)
	}
	slices.Sort(paths)
	kernel := fmt.Sprint(st.Kernel)
	if st.KernelErr != nil && !errors.Is(st.KernelErr, frr.ErrNoKernelRoute) {
		kernel = st.KernelErr.Error()
	}
	return fmt.Sprintf("%s: BGP paths from %v, multipath %v, kernel next hops %s", st.Prefix, paths, st.Multipath, kernel)
}

func routeCommand(prefix netip.Prefix) string {
	family := "ipv4"
	if prefix.Addr().Is6() {
		family = "ipv6"
	}
	return fmt.Sprintf("show bgp %s unicast %s json", family, prefix)
}

// routerJSON is frr.Router.JSON through RouterVTY (so it also works on an adopted FRR).
func (l *Lab) routerJSON(ctx context.Context, cmd string, v any) error {
	if l.router != nil {
		return l.router.JSON(ctx, cmd, v)
	}
	out, err := l.RouterVTY(ctx, cmd)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("lab-router: decoding %q: %w", cmd, err)
	}
	return nil
}

// WaitRouteVia waits until lab-router routes prefix through exactly these nodes, in BGP (one
// valid multipath path per node) and in its kernel (one next hop per node), and returns that
// state. No nodes waits for the prefix to be gone from both. On timeout the error shows the
// last state seen.
func (l *Lab) WaitRouteVia(ctx context.Context, prefix netip.Prefix, timeout time.Duration, nodes ...string) (RouteState, error) {
	want := slices.Clone(nodes)
	slices.Sort(want)
	return l.waitRoute(ctx, prefix, timeout, fmt.Sprintf("via %v", want), func(st RouteState) bool {
		var paths []string
		for n := range st.Paths {
			paths = append(paths, n)
		}
		slices.Sort(paths)
		return slices.Equal(paths, want) && slices.Equal(st.Multipath, want) && slices.Equal(st.Kernel, want)
	})
}

// WaitKernelNextHops waits until lab-router's kernel routes prefix through exactly n next hops
// (0: no route) and returns the state then.
func (l *Lab) WaitKernelNextHops(ctx context.Context, prefix netip.Prefix, n int, timeout time.Duration) (RouteState, error) {
	return l.waitRoute(ctx, prefix, timeout, fmt.Sprintf("with %d kernel next hops", n), func(st RouteState) bool {
		return len(st.Kernel) == n
	})
}

func (l *Lab) waitRoute(ctx context.Context, prefix netip.Prefix, timeout time.Duration, what string, done func(RouteState) bool) (RouteState, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last RouteState
	var lastErr error
	for {
		st, err := l.RouteState(ctx, prefix)
		if err == nil {
			last, lastErr = st, nil
			if done(st) {
				return st, nil
			}
		} else if ctx.Err() == nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return last, fmt.Errorf("lab-router: %s %s not reached in %v: %w", prefix, what, timeout, lastErr)
			}
			return last, fmt.Errorf("lab-router: %s %s not reached in %v; last %v", prefix, what, timeout, last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// WaitSessions waits until lab-router has an Established BGP session with each of these nodes
// from its LAN address of each family in families (4, 6).
func (l *Lab) WaitSessions(ctx context.Context, timeout time.Duration, families []int, nodes ...string) error {
	var want []string
	for _, n := range nodes {
		h, err := Node(n)
		if err != nil {
			return err
		}
		for _, f := range families {
			if f == 4 {
				want = append(want, h.IPv4.String())
			} else {
				want = append(want, h.IPv6.String())
			}
		}
	}
	var missing []string
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		states, err := l.sessionStates(ctx)
		if err != nil {
			missing = []string{err.Error()}
			return false, nil
		}
		missing = missing[:0]
		for _, a := range want {
			if states[a] != "Established" {
				missing = append(missing, fmt.Sprintf("%s %q", a, states[a]))
			}
		}
		return len(missing) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("lab-router: sessions not Established after %v: %v (see .lab/frr/bgpd.log and the announcer logs)", timeout, missing)
	}
	return nil
}

// sessionStates are lab-router's BGP neighbors' states by address.
func (l *Lab) sessionStates(ctx context.Context) (map[string]string, error) {
	if l.router != nil {
		n, err := l.router.Neighbors(ctx)
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		for a, s := range n {
			out[a] = s.State
		}
		return out, nil
	}
	var raw map[string]struct {
		Peers map[string]struct {
			State string `json:"state"`
		} `json:"peers"`
	}
	if err := l.routerJSON(ctx, "show bgp summary json", &raw); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, f := range raw {
		for a, p := range f.Peers {
			out[a] = p.State
		}
	}
	return out, nil
}

// CurlFromRemote fetches http://vip/ from lab-remote, behind the router, giving up after
// timeout. The node the router picked hands the request to a pod through its kube-proxy; the
// pod's answer says which (Answer.ReceivedBy).
func (l *Lab) CurlFromRemote(ctx context.Context, vip netip.Addr, timeout time.Duration) (Answer, error) {
	return l.Get(ctx, RemoteNamespace, netip.AddrPortFrom(vip, 80), timeout)
}

// RestartAnnouncer restarts one node's announcer: sig (SIGTERM for a rolling update, SIGKILL
// for a crash), then wait until it has exited, then start it again and wait until it runs.
func (l *Lab) RestartAnnouncer(ctx context.Context, node string, sig syscall.Signal) error {
	name := AnnouncerComponent(node)
	if err := l.Kill(name, sig, 15*time.Second); err != nil {
		return err
	}
	return l.Start(ctx, name)
}
