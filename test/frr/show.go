package frr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// NeighborSummary is one neighbor of `show bgp summary json`, merged over address families.
type NeighborSummary struct {
	State      string         // "Established", "Active", "Idle", ...
	RemoteAS   uint32         // as the router knows it (the OPEN's AS once established)
	UptimeMsec int64          // time in the current state, as FRR counts it
	PfxRcd     map[string]int // prefixes received (accepted) per family: "ipv4Unicast", "ipv6Unicast"
}

// Received returns the prefixes received in all families.
func (n NeighborSummary) Received() int {
	total := 0
	for _, v := range n.PfxRcd {
		total += v
	}
	return total
}

type summaryPeer struct {
	State          string `json:"state"`
	RemoteAS       uint32 `json:"remoteAs"`
	PeerUptimeMsec int64  `json:"peerUptimeMsec"`
	PfxRcd         int    `json:"pfxRcd"`
}

// Neighbors returns the router's BGP neighbors by address (as FRR names them, e.g. "198.18.0.2").
// Dynamic (listen range) neighbors appear once they have connected.
func (r *Router) Neighbors(ctx context.Context) (map[string]NeighborSummary, error) {
	var raw map[string]json.RawMessage
	if err := r.JSON(ctx, "show bgp summary", &raw); err != nil {
		return nil, err
	}
	m := map[string]NeighborSummary{}
	for family, msg := range raw {
		var f struct {
			Peers map[string]summaryPeer `json:"peers"`
		}
		if json.Unmarshal(msg, &f) != nil {
			continue // not a family object
		}
		for addr, p := range f.Peers {
			n, ok := m[addr]
			if !ok {
				n = NeighborSummary{State: p.State, RemoteAS: p.RemoteAS, UptimeMsec: p.PeerUptimeMsec, PfxRcd: map[string]int{}}
			}
			n.PfxRcd[family] = p.PfxRcd
			m[addr] = n
		}
	}
	return m, nil
}

// RIBRoute is a prefix in the router's BGP table.
type RIBRoute struct {
	Prefix string    `json:"prefix"`
	Paths  []RIBPath `json:"paths"`
}

// RIBPath is one path of a RIBRoute, with the attributes the tests check.
type RIBPath struct {
	Valid     bool `json:"valid"`
	Multipath bool `json:"multipath"`
	Stale     bool `json:"stale"`
	Bestpath  *struct {
		Overall bool `json:"overall"`
	} `json:"bestpath"`
	MED       *uint32 `json:"metric"`
	LocalPref *uint32 `json:"locPrf"`
	Community *struct {
		String string `json:"string"`
	} `json:"community"`
	LargeCommunity *struct {
		String string `json:"string"`
	} `json:"largeCommunity"`
	Nexthops []struct {
		IP  string `json:"ip"`
		AFI string `json:"afi"`
	} `json:"nexthops"`
	Peer struct {
		PeerID string `json:"peerId"`
	} `json:"peer"`
}

// Communities returns the path's communities as FRR prints them ("65000:100", "no-export").
func (p RIBPath) Communities() []string {
	if p.Community == nil {
		return nil
	}
	return strings.Fields(p.Community.String)
}

// LargeCommunities returns the path's large communities ("1:2:3").
func (p RIBPath) LargeCommunities() []string {
	if p.LargeCommunity == nil {
		return nil
	}
	return strings.Fields(p.LargeCommunity.String)
}

// NextHops returns the path's next hops (global ones; FRR adds the link-local of an IPv6 peer).
func (p RIBPath) NextHops() []netip.Addr {
	var out []netip.Addr
	for _, nh := range p.Nexthops {
		if a, err := netip.ParseAddr(nh.IP); err == nil && !a.IsLinkLocalUnicast() {
			out = append(out, a)
		}
	}
	return out
}

// ErrNoRoute is returned by Route when the router has no path for the prefix.
var ErrNoRoute = errors.New("frr: no such route")

// Route returns the router's BGP paths for prefix (exact match), or ErrNoRoute.
func (r *Router) Route(ctx context.Context, prefix netip.Prefix) (RIBRoute, error) {
	family := "ipv4"
	if prefix.Addr().Is6() {
		family = "ipv6"
	}
	var rt RIBRoute
	if err := r.JSON(ctx, fmt.Sprintf("show bgp %s unicast %s", family, prefix), &rt); err != nil {
		return RIBRoute{}, err
	}
	if len(rt.Paths) == 0 {
		return RIBRoute{}, fmt.Errorf("%w: %s in %s", ErrNoRoute, prefix, r.cfg.Dir)
	}
	return rt, nil
}

// KernelRoute is a route as the kernel of a namespace has it.
type KernelRoute struct {
	NextHops  []netip.Addr // gateways
	Multipath bool         // installed as one multipath (ECMP) route
	Protocol  string       // "bgp" for what zebra installed
}

// ErrNoKernelRoute is returned by KernelNextHops when the kernel has no route for the prefix.
var ErrNoKernelRoute = errors.New("frr: no such kernel route")

// KernelNextHops reads the route for prefix (exact match) from the kernel of namespace ns with
// `ip -j route show`. Zebra can fail to install what bgpd shows as best, so tests check both.
func KernelNextHops(ctx context.Context, ns string, prefix netip.Prefix) (KernelRoute, error) {
	fam := "-4"
	if prefix.Addr().Is6() {
		fam = "-6"
	}
	out, err := exec.CommandContext(ctx, "ip", "-n", ns, fam, "-j", "route", "show", "exact", prefix.String()).CombinedOutput()
	if err != nil {
		return KernelRoute{}, fmt.Errorf("frr: ip -n %s route show %s: %w: %s", ns, prefix, err, out)
	}
	type hop struct {
		Gateway string `json:"gateway"`
	}
	var routes []struct {
		hop
		Protocol string `json:"protocol"`
		Nexthops []hop  `json:"nexthops"`
	}
	if err := json.Unmarshal(out, &routes); err != nil {
		return KernelRoute{}, fmt.Errorf("frr: decoding ip route output %q: %w", out, err)
	}
	if len(routes) == 0 {
		return KernelRoute{}, fmt.Errorf("%w: %s in namespace %s", ErrNoKernelRoute, prefix, ns)
	}
	rt := routes[0]
	kr := KernelRoute{Protocol: rt.Protocol, Multipath: len(rt.Nexthops) > 0}
	hops := rt.Nexthops
	if !kr.Multipath {
		hops = []hop{rt.hop}
	}
	for _, h := range hops {
		if a, err := netip.ParseAddr(h.Gateway); err == nil {
			kr.NextHops = append(kr.NextHops, a)
		}
	}
	return kr, nil
}
