package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baremetal-dev/cloud-provider-baremetal/test/lab"
)

// The BGP tests of issue 8's "Proven in the lab": lab-router runs FRR (package test/frr), every
// node's announcer peers with it (examples/bgp.yaml, applied by lab.Up), and what the router
// learns is read from its RIB (vtysh json) and its kernel (ip -j route), and tested from
// lab-remote, which only routing reaches.

// TestBGPECMP: FRR learns the bgp-demo VIP from all three nodes, each path with its node as
// next hop and all of them multipath, and the router's kernel forwards to the three nodes.
func TestBGPECMP(t *testing.T) {
	bgpReady(t)
	vip := bgpDemoVIP(t, 4)
	st := waitVia(t, vip, bgpRoute, lab.Nodes...)
	for node, path := range st.Paths {
		h, _ := lab.Node(node)
		if nh := path.NextHops(); !slices.Equal(nh, []netip.Addr{h.IPv4}) {
			t.Errorf("%s's path for %s has next hops %v, want its own address %s", node, vip, nh, h.IPv4)
		}
	}
	out, err := env.Exec(lab.RouterNamespace, "ip", "route", "show", vip.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range lab.Nodes {
		h, _ := lab.Node(n)
		if !strings.Contains(out, "nexthop via "+h.IPv4.String()+" ") {
			t.Errorf("ip -n lab-router route show %s has no next hop %s:\n%s", vip, h.IPv4, out)
		}
	}
}

// TestBGPRemoteCurl: lab-remote reaches the VIP through the router and the demo pod answers
// (through the kube-proxy of the node the router picked), and the router's 5-tuple ECMP hash
// spreads new connections over more than one node: the pod sees each node's masqueraded
// address, or lab-remote's own when its node got the connection.
func TestBGPRemoteCurl(t *testing.T) {
	bgpReady(t)
	vip := bgpDemoVIP(t, 4)
	waitVia(t, vip, bgpRoute, lab.Nodes...)
	seen := map[string]int{}
	for range 30 {
		got, err := env.CurlFromRemote(context.Background(), vip, 2*time.Second)
		if err != nil {
			t.Fatalf("curl http://%s/ from lab-remote: %v", vip, err)
		}
		if !strings.HasPrefix(got.Pod, "metallb-demo-") {
			t.Fatalf("curl http://%s/ from lab-remote answered %v, not the demo pod", vip, got)
		}
		if got.ReceivedBy() == got.Node && got.Client != lab.RemoteHost().IPv4 {
			t.Fatalf("curl http://%s/ from lab-remote answered %v: neither a node's nor lab-remote's address", vip, got)
		}
		seen[got.ReceivedBy()]++
	}
	if len(seen) < 2 {
		t.Errorf("30 connections from lab-remote all reached one node (%v): ECMP does not spread flows", seen)
	}
	t.Logf("30 connections from lab-remote, by node: %v", seen)
}

// TestBGPAttributes: a pool's communities (well-known names included), large communities and MED
// arrive at the router on every node's path, as configured.
func TestBGPAttributes(t *testing.T) {
	bgpReady(t)
	const pool = "e2e-bgp-attrs"
	applyPool(t, pool, `apiVersion: baremetal.dev/v1alpha1
kind: IPPool
metadata:
  name: `+pool+`
spec:
  addresses: ["198.18.3.0/28"]
  autoAssign: false
  announce:
    bgp:
      communities: ["64513:200", "no-export"]
      largeCommunities: ["64513:2:2", "64513:3:3"]
      med: 50
`)
	vip := bgpService(t, "bgp-attrs", pool, 1, nil)[0]
	st := waitVia(t, vip, bgpRoute, lab.Nodes...)
	for _, node := range lab.Nodes {
		p := st.Paths[node]
		comms, large := p.Communities(), p.LargeCommunities()
		slices.Sort(comms)
		slices.Sort(large)
		if want := []string{"64513:200", "no-export"}; !slices.Equal(comms, want) {
			t.Errorf("%s's path: communities %v, want %v", node, comms, want)
		}
		if want := []string{"64513:2:2", "64513:3:3"}; !slices.Equal(large, want) {
			t.Errorf("%s's path: large communities %v, want %v", node, large, want)
		}
		if p.MED == nil || *p.MED != 50 {
			t.Errorf("%s's path: MED %v, want 50", node, ptrString(p.MED))
		}
	}
	// And the lab's own pool: examples/bgp.yaml's values, no MED.
	demo := waitVia(t, bgpDemoVIP(t, 4), bgpRoute, lab.Nodes...)
	for node, p := range demo.Paths {
		if !slices.Equal(p.Communities(), []string{"64513:100"}) || !slices.Equal(p.LargeCommunities(), []string{"64513:1:1"}) {
			t.Errorf("%s's path for bgp-demo: communities %v, large %v; want [64513:100], [64513:1:1]", node, p.Communities(), p.LargeCommunities())
		}
		if p.MED != nil && *p.MED != 0 {
			t.Errorf("%s's path for bgp-demo: MED %d, want none", node, *p.MED)
		}
	}
}

func ptrString(p *uint32) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}

// TestBGPServiceDeleteWithdraws: deleting the Service withdraws its route from every node.
func TestBGPServiceDeleteWithdraws(t *testing.T) {
	bgpReady(t)
	vip := bgpService(t, "bgp-delete", bgpPool, 1, nil)[0]
	waitVia(t, vip, bgpRoute, lab.Nodes...)
	start := time.Now()
	if err := env.Client.CoreV1().Services("default").Delete(context.Background(), "bgp-delete", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitVia(t, vip, bgpRoute)
	t.Logf("Service deleted -> %s gone from lab-router's RIB and kernel in %v", vip, time.Since(start).Round(time.Millisecond))
}

// TestBGPLocalTrafficPolicy: with externalTrafficPolicy Local only nodes with a serving pod
// advertise, and the advertisements follow the pods.
func TestBGPLocalTrafficPolicy(t *testing.T) {
	bgpReady(t)
	kwokPod(t, "bgp-local-a", "lab-node-3", "bgp-local")
	vip := bgpService(t, "bgp-local", bgpPool, 1, func(s *v1.Service) {
		s.Spec.Selector = map[string]string{"app": "bgp-local"}
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	})[0]
	waitVia(t, vip, bgpRoute, "lab-node-3")
	// kube-proxy keeps the client's address under Local: the pod sees lab-remote itself. The
	// route may come before kube-proxy's next sync (at most --min-sync-period, 1 s, later) and
	// the pod's server: retry a moment.
	var got lab.Answer
	var err error
	for deadline := time.Now().Add(waitShort); time.Now().Before(deadline); time.Sleep(poll) {
		if got, err = env.CurlFromRemote(context.Background(), vip, 2*time.Second); err == nil {
			break
		}
	}
	if err != nil || got.Pod != "bgp-local-a" || got.Node != "lab-node-3" || got.Client != lab.RemoteHost().IPv4 {
		t.Errorf("curl http://%s/ from lab-remote: %v, %v; want pod bgp-local-a on lab-node-3, seeing %s", vip, got, err, lab.RemoteHost().IPv4)
	}
	kwokPod(t, "bgp-local-b", "lab-node-1", "bgp-local")
	waitVia(t, vip, bgpRoute, "lab-node-1", "lab-node-3")
	deletePod("bgp-local-a")
	waitVia(t, vip, bgpRoute, "lab-node-1")
	deletePod("bgp-local-b")
	waitVia(t, vip, bgpRoute)
}

// TestBGPIPv6: the bgp-demo Service's IPv6 VIP is learnt over the IPv6 sessions with each node's
// IPv6 address as next hop (never an IPv4-mapped one), installed with three next hops, and
// lab-remote reaches it over IPv6.
func TestBGPIPv6(t *testing.T) {
	bgpReady(t)
	vip := bgpDemoVIP(t, 6)
	st := waitVia(t, vip, bgpRoute, lab.Nodes...)
	for node, path := range st.Paths {
		h, _ := lab.Node(node)
		if peer := netip.MustParseAddr(path.Peer.PeerID); peer != h.IPv6 {
			t.Errorf("%s's path for %s came from %s, want its IPv6 session (%s)", node, vip, peer, h.IPv6)
		}
		if nh := path.NextHops(); !slices.Equal(nh, []netip.Addr{h.IPv6}) {
			t.Errorf("%s's path for %s has next hops %v, want %s", node, vip, nh, h.IPv6)
		}
	}
	got, err := env.CurlFromRemote(context.Background(), vip, 2*time.Second)
	if err != nil || !strings.HasPrefix(got.Pod, "metallb-demo-") {
		t.Fatalf("curl http://[%s]/ from lab-remote: %v, %v; want the demo pod's answer", vip, got, err)
	}
	t.Logf("curl http://[%s]/ from lab-remote: %v", vip, got)
}

// TestBGPCordonDrains: a cordoned node first re-advertises its path with GRACEFUL_SHUTDOWN
// (65535:0), which makes the router drop it from the ECMP group while the path is still there,
// and only then withdraws it; uncordoned, it advertises again.
func TestBGPCordonDrains(t *testing.T) {
	bgpReady(t)
	const node = "lab-node-2"
	vip := bgpDemoVIP(t, 4)
	waitVia(t, vip, bgpRoute, lab.Nodes...)
	setUnschedulable(t, node, true)
	cordoned := time.Now()
	t.Cleanup(func() {
		setUnschedulable(t, node, false)
		waitVia(t, vip, bgpSession, lab.Nodes...)
	})
	var gshutAt, drainedAt, withdrawnAt time.Time
	deadline := cordoned.Add(2 * time.Minute)
	for time.Now().Before(deadline) && withdrawnAt.IsZero() {
		st := routeState(t, vip)
		now := time.Now()
		p, present := st.Paths[node]
		switch {
		case !present:
			withdrawnAt = now
		case slices.Contains(p.Communities(), gshutCommunity):
			if gshutAt.IsZero() {
				gshutAt = now
			}
			if drainedAt.IsZero() && !slices.Contains(st.Multipath, node) && !slices.Contains(st.Kernel, node) {
				drainedAt = now
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	switch {
	case withdrawnAt.IsZero():
		t.Fatalf("%s cordoned: its path for %s is still there after %v (%v)", node, vip, time.Since(cordoned).Round(time.Second), routeState(t, vip))
	case gshutAt.IsZero():
		t.Fatalf("%s cordoned: its path was withdrawn after %v without first carrying %s (65535:0)", node, withdrawnAt.Sub(cordoned), gshutCommunity)
	case drainedAt.IsZero():
		t.Errorf("%s cordoned: its path carried %s but the router kept it in the ECMP group until the withdrawal", node, gshutCommunity)
	}
	t.Logf("%s cordoned: %s seen after %v, out of the kernel's ECMP group after %v, withdrawn after %v", node, gshutCommunity,
		gshutAt.Sub(cordoned).Round(time.Millisecond), drainedAt.Sub(cordoned).Round(time.Millisecond), withdrawnAt.Sub(cordoned).Round(time.Millisecond))
	st := waitVia(t, vip, bgpRoute, "lab-node-1", "lab-node-3")
	for n, p := range st.Paths {
		if slices.Contains(p.Communities(), gshutCommunity) {
			t.Errorf("%s's path carries %s, though only %s was cordoned", n, gshutCommunity, node)
		}
	}
}

// TestBGPCableCut: a node whose cable is cut cannot say anything: the router notices when the
// hold time runs out. With graceful restart negotiated FRR then keeps its path as stale for the
// restart time (RFC 8538), so the path is gone at most hold time + restart time after the cut;
// the other nodes' paths stay throughout. The cable restored, the node advertises again.
func TestBGPCableCut(t *testing.T) {
	bgpReady(t)
	const node = "lab-node-3"
	vip := bgpDemoVIP(t, 4)
	waitVia(t, vip, bgpRoute, lab.Nodes...)
	hold, restart := peerTimers(t, bgpPeer4)
	if err := env.CutCable(node); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	restored := false
	t.Cleanup(func() {
		if !restored {
			_ = env.RestoreCable(node)
		}
	})
	var staleAt, withdrawnAt time.Time
	deadline := cut.Add(hold + restart + 10*time.Second)
	for time.Now().Before(deadline) && withdrawnAt.IsZero() {
		st := routeState(t, vip)
		now := time.Now()
		for _, other := range []string{"lab-node-1", "lab-node-2"} {
			if _, ok := st.Paths[other]; !ok {
				t.Fatalf("%v after cutting %s's cable, %s's path is gone too (%v)", now.Sub(cut).Round(time.Millisecond), node, other, st)
			}
		}
		p, present := st.Paths[node]
		switch {
		case !present && !slices.Contains(st.Kernel, node):
			withdrawnAt = now
		case present && p.Stale && staleAt.IsZero():
			staleAt = now
		}
		time.Sleep(50 * time.Millisecond)
	}
	if withdrawnAt.IsZero() {
		t.Fatalf("%s's cable cut: its path for %s is still there after %v (hold time %v, restart time %v): %v",
			node, vip, time.Since(cut).Round(time.Second), hold, restart, routeState(t, vip))
	}
	took := withdrawnAt.Sub(cut)
	t.Logf("%s's cable cut: path stale after %v, withdrawn after %v (hold time %v, restart time %v)",
		node, staleAt.Sub(cut).Round(time.Millisecond), took.Round(time.Millisecond), hold, restart)
	if took < hold-time.Second {
		t.Errorf("%s's path was withdrawn %v after its cable was cut, before the hold time (%v) could run out: who withdrew it?", node, took, hold)
	}
	if err := env.RestoreCable(node); err != nil {
		t.Fatal(err)
	}
	restored = true
	waitVia(t, vip, bgpSession, lab.Nodes...)
}

// TestBGPRollingRestart: every announcer restarted in turn (SIGTERM, then started again, as a
// DaemonSet's rolling update does) loses no connection of a lab-remote client connecting to
// the VIP every 10 ms: graceful restart keeps the router forwarding to each node meanwhile.
func TestBGPRollingRestart(t *testing.T) {
	bgpReady(t)
	vip := bgpDemoVIP(t, 4)
	waitVia(t, vip, bgpRoute, lab.Nodes...)
	probe := connectProbe(t, lab.RemoteNamespace, netip.AddrPortFrom(vip, 80).String(), 200*time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	for _, node := range lab.Nodes {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := env.RestartAnnouncer(ctx, node, syscall.SIGTERM)
		cancel()
		if err != nil {
			t.Fatalf("restarting the announcer of %s: %v", node, err)
		}
		if err := env.WaitSessions(context.Background(), bgpSession, allFamilies, node); err != nil {
			t.Fatal(err)
		}
		// The restarted node's path must be fresh again (not stale) before the next one goes.
		waitFresh(t, vip, node)
	}
	time.Sleep(500 * time.Millisecond)
	attempts := probe()
	var failed []string
	for _, a := range attempts {
		if !a.ok {
			failed = append(failed, a.at.Format("15:04:05.000"))
		}
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d connections from lab-remote to %s failed during the rolling restart, at %v", len(failed), len(attempts), vip, failed)
	}
	t.Logf("%d connections from lab-remote during the rolling restart", len(attempts))
	waitVia(t, vip, bgpRoute, lab.Nodes...)
}

// waitFresh waits until node's path for vip is there and not stale.
func waitFresh(t *testing.T, vip netip.Addr, node string) {
	t.Helper()
	deadline := time.Now().Add(bgpSession)
	var st lab.RouteState
	for time.Now().Before(deadline) {
		st = routeState(t, vip)
		if p, ok := st.Paths[node]; ok && !p.Stale {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s's path for %s is not fresh after its announcer restarted: %v", node, vip, st)
}
