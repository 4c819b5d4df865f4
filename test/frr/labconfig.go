package frr

import (
	"fmt"
	"net/netip"
	"strings"
)

// LabRouter describes the lab's router: one BGP instance that accepts sessions from any node in
// its listen ranges (peer group NODES), takes their routes without a policy and installs up to
// MaximumPaths of them as ECMP.
type LabRouter struct {
	Hostname     string
	ASN          uint32
	RouterID     netip.Addr
	ListenRanges []netip.Prefix // nodes connect from these; FRR never dials them
	// PeerASN is the nodes' ASN; 0 accepts any other ASN ("remote-as external").
	PeerASN         uint32
	Password        string // MD5 (RFC 2385) for the whole peer group
	MaximumPaths    int    // 0 means 16
	BFD             bool   // "neighbor NODES bfd" (see LAB-NOTES: unconfirmed for listen ranges)
	GracefulRestart bool   // restarting-speaker mode; FRR is a GR helper without it too
	Extra           string // appended inside "router bgp" before the address families
}

// LabRouterConfig renders the frr.conf for r. The minimal form, for reference:
//
//	router bgp 64500
//	 bgp router-id 198.18.0.1
//	 no bgp ebgp-requires-policy
//	 bgp bestpath as-path multipath-relax
//	 neighbor NODES peer-group
//	 neighbor NODES remote-as external
//	 bgp listen range 198.18.0.0/24 peer-group NODES
//	 address-family ipv4 unicast
//	  neighbor NODES activate
//	  maximum-paths 16
//	 exit-address-family
//	 address-family ipv6 unicast
//	  neighbor NODES activate
//	  maximum-paths 16
//	 exit-address-family
//
// "no bgp ebgp-requires-policy" because FRR 8.4 applies RFC 8212 and would accept nothing from
// eBGP peers without a route-map; multipath-relax so that nodes with different ASNs form one
// ECMP group.
func LabRouterConfig(r LabRouter) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	host := r.Hostname
	if host == "" {
		host = "router"
	}
	paths := r.MaximumPaths
	if paths == 0 {
		paths = 16
	}
	p("frr defaults traditional")
	p("hostname %s", host)
	p("log stdout")
	p("!")
	p("router bgp %d", r.ASN)
	p(" bgp router-id %s", r.RouterID)
	p(" no bgp ebgp-requires-policy")
	p(" no bgp default ipv4-unicast")
	p(" bgp bestpath as-path multipath-relax")
	if r.GracefulRestart {
		p(" bgp graceful-restart")
	}
	p(" neighbor NODES peer-group")
	if r.PeerASN == 0 {
		p(" neighbor NODES remote-as external")
	} else {
		p(" neighbor NODES remote-as %d", r.PeerASN)
	}
	if r.Password != "" {
		p(" neighbor NODES password %s", r.Password)
	}
	if r.BFD {
		p(" neighbor NODES bfd")
	}
	for _, lr := range r.ListenRanges {
		p(" bgp listen range %s peer-group NODES", lr.Masked())
	}
	if r.Extra != "" {
		b.WriteString(strings.TrimRight(r.Extra, "\n") + "\n")
	}
	for _, af := range []string{"ipv4", "ipv6"} {
		p(" address-family %s unicast", af)
		p("  neighbor NODES activate")
		p("  maximum-paths %d", paths)
		p(" exit-address-family")
	}
	p("!")
	return b.String()
}
