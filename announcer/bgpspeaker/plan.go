package bgpspeaker

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Timer defaults: fast enough that a session is up within 3 s of the speaker starting or the
// router returning (see doc.go for the arithmetic and docs/bgp-notes.md for measurements).
const (
	DefaultHoldTime      = 9 * time.Second // FRR's "datacenter" profile: 3 s keepalives, 9 s hold
	DefaultKeepaliveTime = 3 * time.Second
	DefaultConnectTime   = 1 * time.Second // GoBGP's minimum: a dial every 1-2 s while down
	DefaultRestartTime   = 120 * time.Second
	// DeferralTime bounds how long a restarted speaker waits for the routers' End-of-RIB before
	// sending its routes; the routers keep the old ones meanwhile.
	DeferralTime = 3 * time.Second
)

// peerConf is a validated peer with its defaults filled in: what GoBGP is configured with.
// Two equal peerConfs need no change on the session.
type peerConf struct {
	Address                  netip.Addr
	Port                     uint16
	ASN, LocalASN            uint32
	Source                   netip.Addr
	Hold, Keepalive, Connect time.Duration
	Password                 string
	Multihop                 uint8
	GR                       bool
	RestartTime              time.Duration
	Passive                  bool
}

func (p peerConf) ebgp() bool { return p.ASN != p.LocalASN }

// pathConf is a validated route: what GoBGP's path is built from.
type pathConf struct {
	Prefix      netip.Prefix
	NextHop     netip.Addr // invalid: the session's local address
	Communities []uint32   // sorted, unique
	Large       []LargeCommunity
	MED         *uint32
	LocalPref   *uint32
}

func (a pathConf) equal(b pathConf) bool {
	return a.Prefix == b.Prefix && a.NextHop == b.NextHop && slices.Equal(a.Communities, b.Communities) &&
		slices.Equal(a.Large, b.Large) && eqPtr(a.MED, b.MED) && eqPtr(a.LocalPref, b.LocalPref)
}

func eqPtr(a, b *uint32) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// plan is a Desired that has been checked: only what can be applied.
type plan struct {
	peers  map[string]peerConf              // by name
	paths  map[netip.Prefix]pathConf        // by prefix
	export map[netip.Prefix][]netip.Addr    // prefix -> peer addresses that get it, sorted
	names  map[netip.Addr]string            // peer address -> name
	asked  map[netip.Prefix]map[string]bool // prefix -> peer names asked for (for merging duplicates)
}

// makePlan checks d against cfg and returns what can be applied, and why the rest cannot.
// noListen says why the speaker has no listening socket, which Passive peers need ("" when it
// has one, or has not started yet).
func makePlan(cfg Config, d Desired, noListen string) (plan, Problems) {
	p := plan{
		peers: map[string]peerConf{}, paths: map[netip.Prefix]pathConf{}, export: map[netip.Prefix][]netip.Addr{},
		names: map[netip.Addr]string{}, asked: map[netip.Prefix]map[string]bool{},
	}
	var probs Problems
	peerProblem := func(name, format string, a ...any) {
		probs = append(probs, Problem{Peer: name, Reason: fmt.Sprintf(format, a...)})
	}
	for _, in := range d.Peers {
		c, reason := checkPeer(cfg, in, noListen)
		switch {
		case reason != "":
			peerProblem(in.Name, "peer %q: %s", in.Name, reason)
		case p.peers[in.Name] != (peerConf{}):
			peerProblem(in.Name, "peer %q is listed twice; using the first", in.Name)
		case p.names[c.Address] != "":
			peerProblem(in.Name, "peers %q and %q have the same address %s; using %q", p.names[c.Address], in.Name, c.Address, p.names[c.Address])
		default:
			p.peers[in.Name] = c
			p.names[c.Address] = in.Name
		}
	}
	var everyone []string // the peers a problem of a route that names none concerns
	for _, in := range d.Peers {
		if in.Name != "" && !slices.Contains(everyone, in.Name) {
			everyone = append(everyone, in.Name)
		}
	}
	slices.Sort(everyone)
	for _, r := range d.Routes {
		probs = append(probs, p.addRoute(r, everyone)...)
	}
	for prefix, set := range p.asked {
		var addrs []netip.Addr
		for name := range set {
			addrs = append(addrs, p.peers[name].Address)
		}
		slices.SortFunc(addrs, netip.Addr.Compare)
		p.export[prefix] = addrs
	}
	slices.SortStableFunc(probs, func(a, b Problem) int {
		return cmp.Or(strings.Compare(a.Peer, b.Peer), a.Prefix.Addr().Compare(b.Prefix.Addr()))
	})
	return p, probs
}

func checkPeer(cfg Config, in Peer, noListen string) (peerConf, string) {
	c := peerConf{
		Address: in.Address, Port: in.Port, ASN: in.ASN, LocalASN: cmp.Or(in.LocalASN, cfg.ASN),
		Source: in.SourceAddress, Hold: cmp.Or(in.HoldTime, DefaultHoldTime),
		Keepalive: in.KeepaliveTime, Connect: cmp.Or(in.ConnectTime, DefaultConnectTime),
		Password: in.Password, Multihop: in.EBGPMultihop, GR: in.GracefulRestart, Passive: in.Passive,
	}
	if c.Keepalive == 0 {
		// A third of the hold time, as RFC 4271 suggests; DefaultKeepaliveTime for the default.
		c.Keepalive = c.Hold / 3
	}
	if c.GR {
		c.RestartTime = cmp.Or(in.RestartTime, DefaultRestartTime)
	}
	switch {
	case in.Name == "":
		return c, "a peer needs a name"
	case !in.Address.IsValid():
		return c, "no address"
	case in.Address.Zone() != "" || in.Address.IsLinkLocalUnicast():
		return c, fmt.Sprintf("link-local address %s is not supported: use a global or unique-local address", in.Address)
	case in.ASN == 0:
		return c, "no peer ASN"
	case c.LocalASN == 0:
		return c, "no local ASN (set the peer's or the speaker's)"
	case c.Hold < 3*time.Second:
		return c, fmt.Sprintf("hold time %s is below BGP's minimum of 3 s", c.Hold)
	case c.Keepalive < time.Second || c.Keepalive >= c.Hold:
		return c, fmt.Sprintf("keepalive time %s must be at least 1 s and below the hold time %s", c.Keepalive, c.Hold)
	case c.Source.IsValid() && c.Source.Is4() != in.Address.Is4():
		return c, fmt.Sprintf("source address %s and peer address %s are of different families", c.Source, in.Address)
	case c.Passive && noListen != "":
		return c, noListen
	case c.RestartTime > 4095*time.Second:
		return c, fmt.Sprintf("restart time %s is above the graceful restart capability's maximum of 4095 s", c.RestartTime)
	}
	c.Connect = max(c.Connect.Round(time.Second), time.Second)
	c.Address = c.Address.Unmap()
	return c, ""
}

// addRoute adds r to p and returns why parts of it are not applied. A problem of the route as
// a whole concerns each peer it names, or every peer (everyone) when it names none, so that the
// caller can show it in those peers' status.
func (p *plan) addRoute(r Route, everyone []string) Problems {
	var probs Problems
	problem := func(peer, format string, a ...any) {
		probs = append(probs, Problem{Peer: peer, Prefix: r.Prefix, Reason: fmt.Sprintf(format, a...)})
	}
	concerned := slices.Compact(slices.Sorted(slices.Values(r.Peers)))
	if len(concerned) == 0 {
		concerned = everyone
	}
	routeProblem := func(format string, a ...any) {
		if len(concerned) == 0 {
			problem("", format, a...)
		}
		for _, name := range concerned {
			problem(name, format, a...)
		}
	}
	fam := "IPv4"
	if r.Prefix.Addr().Is6() {
		fam = "IPv6"
	}
	switch {
	case !r.Prefix.IsValid():
		routeProblem("route with invalid prefix %s", r.Prefix)
		return probs
	case r.Prefix.Addr().Is4In6():
		routeProblem("route %s is an IPv4-mapped IPv6 prefix: use the IPv4 prefix %s", r.Prefix, netip.PrefixFrom(r.Prefix.Addr().Unmap(), max(r.Prefix.Bits()-96, 0)))
		return probs
	case r.Prefix.Bits() == 0:
		routeProblem("route %s is a default route, which the speaker never announces", r.Prefix)
		return probs
	case r.Prefix != r.Prefix.Masked():
		routeProblem("route %s has bits set beyond its length: the prefix is %s", r.Prefix, r.Prefix.Masked())
		return probs
	case r.NextHop.IsValid() && r.NextHop.Unmap().Is4() != r.Prefix.Addr().Is4():
		routeProblem("%s route %s has next hop %s of the other family", fam, r.Prefix, r.NextHop)
		return probs
	}
	c := pathConf{Prefix: r.Prefix, NextHop: r.NextHop.Unmap(), MED: r.MED, LocalPref: r.LocalPref}
	comms := map[uint32]bool{}
	for _, s := range r.Communities {
		v, err := ParseCommunity(s)
		if err != nil {
			routeProblem("route %s: %v; the route is sent without it", r.Prefix, err)
			continue
		}
		comms[v] = true
	}
	if r.GracefulShutdown {
		comms[GracefulShutdownCommunity] = true
		zero := uint32(0)
		c.LocalPref = &zero
	}
	c.Communities = slices.Sorted(maps.Keys(comms))
	large := map[LargeCommunity]bool{}
	for _, s := range r.LargeCommunities {
		v, err := ParseLargeCommunity(s)
		if err != nil {
			routeProblem("route %s: %v; the route is sent without it", r.Prefix, err)
			continue
		}
		large[v] = true
	}
	c.Large = slices.SortedFunc(maps.Keys(large), func(a, b LargeCommunity) int {
		return cmp.Or(cmp.Compare(a.GlobalAdmin, b.GlobalAdmin), cmp.Compare(a.Local1, b.Local1), cmp.Compare(a.Local2, b.Local2))
	})
	if old, ok := p.paths[r.Prefix]; ok && !old.equal(c) {
		routeProblem("route %s is listed twice with different next hop or attributes; using the first", r.Prefix)
		return probs
	}
	p.paths[r.Prefix] = c
	if p.asked[r.Prefix] == nil {
		p.asked[r.Prefix] = map[string]bool{}
	}
	for _, name := range r.Peers {
		peer, ok := p.peers[name]
		switch {
		case !ok:
			problem(name, "route %s names peer %q, which is not configured (or has problems)", r.Prefix, name)
		case !c.NextHop.IsValid() && peer.Address.Is4() != r.Prefix.Addr().Is4():
			problem(name, "%s route %s has no %s next hop for %s session to %s", fam, r.Prefix, fam, sessionFamily(peer.Address), peer.Address)
		default:
			if r.LocalPref != nil && peer.ebgp() {
				problem(name, "localPref of route %s is not sent to eBGP peer %q (AS %d): BGP carries LOCAL_PREF within an AS only", r.Prefix, name, peer.ASN)
			}
			p.asked[r.Prefix][name] = true
		}
	}
	return probs
}

func sessionFamily(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// change is what converging from one plan to the next takes.
type change struct {
	delPeers, addPeers []string       // names; a changed peer is deleted and added
	withdraw           []netip.Prefix // withdrawn under the old export policy: gone, or sent to fewer peers
	announce           []netip.Prefix // added under the new policy: new, changed, or re-added after a withdraw
	policy             bool           // the export policy changes
	resend             []netip.Addr   // peers that get prefixes they did not get before: re-send them all
}

// diff returns the steps from old to next. GoBGP evaluates the export policy of a withdrawal
// against the current policy, so a prefix that leaves a peer must be withdrawn before the
// policy stops matching that peer; re-adding an unchanged path does not re-send it, so a peer
// that gains a prefix gets a soft reset out. A peer that is deleted (or changed: deleted and
// added again) loses its session, and the router every route of it, without a withdrawal: its
// leaving does not withdraw the prefix from the peers that keep it, which would see their path
// withdrawn and announced again (an ECMP group shrinking and growing, flows rehashed).
func diff(old, next plan) change {
	var c change
	for name, pc := range old.peers {
		if n, ok := next.peers[name]; !ok || n != pc {
			c.delPeers = append(c.delPeers, name)
		}
	}
	for name, pc := range next.peers {
		if o, ok := old.peers[name]; !ok || o != pc {
			c.addPeers = append(c.addPeers, name)
		}
	}
	deleted := map[netip.Addr]bool{}
	for _, name := range c.delPeers {
		deleted[old.peers[name].Address] = true
	}
	resend := map[netip.Addr]bool{}
	for prefix, pc := range old.paths {
		n, ok := next.paths[prefix]
		if !ok || losesStayingPeer(old.export[prefix], next.export[prefix], deleted) {
			c.withdraw = append(c.withdraw, prefix)
			if ok {
				c.announce = append(c.announce, prefix)
			}
			continue
		}
		if !n.equal(pc) {
			c.announce = append(c.announce, prefix)
		}
		for _, a := range next.export[prefix] {
			if !slices.Contains(old.export[prefix], a) {
				resend[a] = true
			}
		}
	}
	for prefix := range next.paths {
		if _, ok := old.paths[prefix]; !ok {
			c.announce = append(c.announce, prefix)
		}
	}
	c.policy = !maps.EqualFunc(old.export, next.export, slices.Equal)
	c.resend = slices.SortedFunc(maps.Keys(resend), netip.Addr.Compare)
	slices.Sort(c.delPeers)
	slices.Sort(c.addPeers)
	slices.SortFunc(c.withdraw, comparePrefix)
	slices.SortFunc(c.announce, comparePrefix)
	return c
}

func comparePrefix(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) }

// losesStayingPeer says whether a peer in was, and not in now, keeps its session.
func losesStayingPeer(was, now []netip.Addr, deleted map[netip.Addr]bool) bool {
	for _, x := range was {
		if !slices.Contains(now, x) && !deleted[x] {
			return true
		}
	}
	return false
}
