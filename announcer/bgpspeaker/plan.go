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
// listening says whether the speaker has a listening socket (Passive peers need one).
func makePlan(cfg Config, d Desired, listening bool) (plan, Problems) {
	p := plan{
		peers: map[string]peerConf{}, paths: map[netip.Prefix]pathConf{}, export: map[netip.Prefix][]netip.Addr{},
		names: map[netip.Addr]string{}, asked: map[netip.Prefix]map[string]bool{},
	}
	var probs Problems
	peerProblem := func(name, format string, a ...any) {
		probs = append(probs, Problem{Peer: name, Reason: fmt.Sprintf(format, a...)})
	}
	for _, in := range d.Peers {
		c, reason := checkPeer(cfg, in, listening)
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
	for _, r := range d.Routes {
		probs = append(probs, p.addRoute(r)...)
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

func checkPeer(cfg Config, in Peer, listening bool) (peerConf, string) {
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
	case c.Passive && !listening:
		return c, "passive, but the speaker has no listening socket (Config.ListenPort is 0 and the first Set had no passive peer)"
	case c.RestartTime > 4095*time.Second:
		return c, fmt.Sprintf("restart time %s is above the graceful restart capability's maximum of 4095 s", c.RestartTime)
	}
	c.Connect = max(c.Connect.Round(time.Second), time.Second)
	c.Address = c.Address.Unmap()
	return c, ""
}

// addRoute adds r to p and returns why parts of it are not applied.
func (p *plan) addRoute(r Route) Problems {
	var probs Problems
	problem := func(peer, format string, a ...any) {
		probs = append(probs, Problem{Peer: peer, Prefix: r.Prefix, Reason: fmt.Sprintf(format, a...)})
	}
	fam := "IPv4"
	if r.Prefix.Addr().Is6() {
		fam = "IPv6"
	}
	switch {
	case !r.Prefix.IsValid():
		problem("", "route with invalid prefix %s", r.Prefix)
		return probs
	case !r.Prefix.IsSingleIP() || r.Prefix.Addr().Is4In6():
		problem("", "route %s is not a host route (/32 or /128)", r.Prefix)
		return probs
	case r.NextHop.IsValid() && r.NextHop.Unmap().Is4() != r.Prefix.Addr().Is4():
		problem("", "%s route %s has next hop %s of the other family", fam, r.Prefix, r.NextHop)
		return probs
	}
	c := pathConf{Prefix: r.Prefix, NextHop: r.NextHop.Unmap(), MED: r.MED, LocalPref: r.LocalPref}
	comms := map[uint32]bool{}
	for _, s := range r.Communities {
		v, err := ParseCommunity(s)
		if err != nil {
			problem("", "route %s: %v; the route is sent without it", r.Prefix, err)
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
			problem("", "route %s: %v; the route is sent without it", r.Prefix, err)
			continue
		}
		large[v] = true
	}
	c.Large = slices.SortedFunc(maps.Keys(large), func(a, b LargeCommunity) int {
		return cmp.Or(cmp.Compare(a.GlobalAdmin, b.GlobalAdmin), cmp.Compare(a.Local1, b.Local1), cmp.Compare(a.Local2, b.Local2))
	})
	if old, ok := p.paths[r.Prefix]; ok && !old.equal(c) {
		problem("", "route %s is listed twice with different next hop or attributes; using the first", r.Prefix)
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
// that gains a prefix gets a soft reset out.
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
	resend := map[netip.Addr]bool{}
	for prefix, pc := range old.paths {
		n, ok := next.paths[prefix]
		if !ok || !isSubset(old.export[prefix], next.export[prefix]) {
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

func isSubset(a, b []netip.Addr) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
