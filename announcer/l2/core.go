package l2

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/election"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/membership"
)

// Config holds the timers of one node's core.
type Config struct {
	// Self is this node's name.
	Self string
	// FailureTimeout is how long a silent peer stays alive, and how old the last echo of a
	// connected peer may be.
	FailureTimeout time.Duration
	// JoinGrace is how long a starting node (or one whose link came back) listens before it may
	// own anything, so it hears the others' claims first.
	JoinGrace time.Duration
	// ProbeWait is how long a takeover probe listens for another MAC answering for the VIP.
	ProbeWait time.Duration
	// ReprobeAfter is how long a node waits before probing again a VIP that something answered.
	ReprobeAfter time.Duration
	// ColdStartWait bounds how long a node that just became active takes only its own share of
	// unclaimed VIPs, waiting for the other members the API lists to connect.
	ColdStartWait time.Duration
	// DefendInterval is the shortest time between two re-announcements of a VIP against another
	// MAC answering for it (RFC 5227's DEFEND_INTERVAL is 10 s; a cluster peer is answered at once).
	DefendInterval time.Duration
	// SelfProbeInterval is how often an owner probes its own VIPs, to find a host that answers
	// for them too (another node's kernel, a stranger): replies are unicast, so only a probe
	// shows them.
	SelfProbeInterval time.Duration
	// CedeFor is how long a node that yielded a VIP to a contest or a wire conflict does not
	// take it again.
	CedeFor time.Duration
}

// DefaultConfig has the shipped timers: a dead owner is replaced within about 250 ms.
func DefaultConfig(self string) Config {
	return Config{
		Self:              self,
		FailureTimeout:    200 * time.Millisecond,
		JoinGrace:         300 * time.Millisecond,
		ProbeWait:         25 * time.Millisecond,
		ReprobeAfter:      500 * time.Millisecond,
		ColdStartWait:     2 * time.Second,
		DefendInterval:    10 * time.Second,
		SelfProbeInterval: 10 * time.Second,
		CedeFor:           time.Second,
	}
}

// Validate reports every problem with the timers.
func (c Config) Validate() error {
	var errs []error
	if c.Self == "" {
		errs = append(errs, errors.New("the node name is required"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"failure timeout", c.FailureTimeout}, {"probe wait", c.ProbeWait}, {"reprobe interval", c.ReprobeAfter}, {"defend interval", c.DefendInterval}, {"self-probe interval", c.SelfProbeInterval}} {
		if d.v <= 0 {
			errs = append(errs, errors.New(d.name+" must be positive"))
		}
	}
	if c.JoinGrace < c.FailureTimeout {
		errs = append(errs, errors.New("the join grace must be at least the failure timeout, so a joining node hears every live peer"))
	}
	return errors.Join(errs...)
}

// Member is a node that runs an announcer, as the API shows it. Every member gets heartbeats,
// so a node the API has just excluded still hears the others contest its VIPs.
type Member struct {
	// Node is the node as the election sees it; Healthy is ignored (the core decides it).
	Node election.Node
	// Addrs are its InternalIPs: heartbeats in its name from anywhere else are dropped.
	Addrs []netip.Addr
	// Voter reports that the member counts in the quorum: it may own VIPs (no exclude label)
	// and the API says it is Ready. Every node counts the same voters, whichever side of a
	// partition it is on, so two sides cannot both have a quorum.
	Voter bool
}

// VIP is one address to announce at layer 2.
type VIP struct {
	election.VIP
	// Links are the links ("ARP/eth1", "NDP/" for the default interface) to answer on. A node
	// that can serve none of them is not elected.
	Links []string
}

// Owned is a VIP this node answers for.
type Owned struct {
	Gen   uint32
	Links []string
}

// Probe asks the caller to send one probe (or, for Reannounce, a gratuitous burst) for Addr on
// Link.
type Probe struct {
	Link string
	Addr netip.Addr
}

// Foreign is a frame from another MAC speaking for an address (see the speakers' OnForeign).
type Foreign struct {
	Link string
	Addr netip.Addr
	MAC  net.HardwareAddr
	// Probe: the other host probes the address (it wants it and does not use it yet).
	Probe bool
	// Announce: the frame announces the address (a gratuitous ARP, an unsolicited Neighbor
	// Advertisement): what an announcer sends on takeover, and a kernel does not.
	Announce bool
}

// Output is what the caller must do after Step.
type Output struct {
	// Probes to send now.
	Probes []Probe
	// Reannounce lists VIPs whose gratuitous burst must be sent again now: the node won a
	// conflict and the neighbours may hold the loser's MAC.
	Reannounce []Probe
	// Events describe what changed, for logs, Kubernetes events and metrics.
	Events []Event
}

// EventKind says what an Event reports.
type EventKind int

// Event kinds.
const (
	// Took: this node answers for VIP now (Gen is its claim).
	Took EventKind = iota + 1
	// Yielded: this node stopped answering for VIP (Reason says why; Peer is the new owner
	// when known).
	Yielded
	// ProbeAnswered: a takeover probe found MAC (Peer's, if known) answering for VIP: it waits.
	ProbeAnswered
	// KernelAnswers: Peer's kernel answers ARP/NDP for VIP with MAC although Peer does not own it
	// (kube-proxy IPVS without strictARP, or the VIP configured on an interface).
	KernelAnswers
	// ForeignAnswer: a MAC no member has answers for VIP.
	ForeignAnswer
	// NoQuorum: this node lost its quorum (it is connected both ways to half of the members or
	// fewer): it keeps what it owns and takes nothing over until the quorum returns.
	NoQuorum
)

func (k EventKind) String() string {
	return [...]string{"Unknown", "Took", "Yielded", "ProbeAnswered", "KernelAnswers", "ForeignAnswer", "NoQuorum"}[max(0, min(int(k), 6))]
}

// Event is one thing that happened.
type Event struct {
	Kind   EventKind
	VIP    netip.Addr
	Peer   string
	MAC    net.HardwareAddr
	Gen    uint32
	Reason string
}

// Core is one node's layer-2 decision maker: membership, election and the wire witness. It is
// pure (no goroutine, no clock, no I/O): the caller feeds it heartbeats, wire observations, the
// API's view and the links' state, calls Step, and carries out the Output. The same code runs in
// every announcer and, many times over, in the simulation that checks its invariants.
type Core struct {
	cfg Config
	det *membership.Detector

	state       membership.State
	joinUntil   time.Time
	activeSince time.Time
	primaryUp   bool
	apiFresh    bool
	hadQuorum   bool
	// noQuorumSince is when this active node last lost its quorum; reportedNoQuorum, whether
	// that was reported.
	noQuorumSince    time.Time
	reportedNoQuorum bool
	quorumSince      time.Time

	members map[string]Member // by name, self included
	vips    []VIP
	byAddr  map[netip.Addr]int
	cannot  map[string]bool
	macs    map[string]net.HardwareAddr // by link

	owned    map[netip.Addr]*ownership
	probes   map[netip.Addr]*probing
	maxGen   map[netip.Addr]uint32
	holder   map[netip.Addr]string // the node whose claim had maxGen
	ceded    map[netip.Addr]time.Time
	wants    map[netip.Addr]bool
	lostTo   map[netip.Addr]time.Time // VIPs yielded to a better claim, repeated in heartbeats until then
	released []membership.Claim       // what a leaving node gave up, repeated in its Leaving heartbeats
	peerMACs map[string]string        // MAC -> node
	macsOf   map[string][]string      // node -> its MACs, to forget the old ones

	oneWaySince map[string]time.Time // peers heard that do not hear us, since when
	lastRecheck time.Time            // when a returning peer last made us probe our VIPs

	out Output
}

type ownership struct {
	gen           uint32
	since         time.Time
	links         []string
	nextSelfProbe time.Time
	lastDefend    time.Time
	contested     bool // another live claimant lost to us: re-announce once
	doubtful      bool // held without a quorum since it was last certain
}

type probing struct {
	deadline     time.Time
	again        time.Time // when to send the second probe (zero once sent)
	blocked      bool
	blockedUntil time.Time
	// answeredBy holds the members whose MAC answered, with when; a member's answer counts as
	// its kernel's (not obeyed) only once a heartbeat it sent after answering still does not
	// claim the VIP.
	answeredBy map[string]time.Time
	// stranger: a MAC no member has answered, or a member with a better score probes too.
	stranger bool
}

// New returns the core of a node in run incarnation (random, so that a restart is recognised
// whatever the clock says), joining at now.
func New(cfg Config, incarnation uint64, now time.Time) (*Core, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Core{
		cfg: cfg, det: membership.NewDetector(cfg.Self, incarnation, cfg.FailureTimeout),
		state: membership.Joining, joinUntil: now.Add(cfg.JoinGrace),
		members: map[string]Member{}, byAddr: map[netip.Addr]int{}, cannot: map[string]bool{}, macs: map[string]net.HardwareAddr{},
		owned: map[netip.Addr]*ownership{}, probes: map[netip.Addr]*probing{}, maxGen: map[netip.Addr]uint32{},
		holder: map[netip.Addr]string{}, ceded: map[netip.Addr]time.Time{}, wants: map[netip.Addr]bool{}, lostTo: map[netip.Addr]time.Time{}, peerMACs: map[string]string{}, macsOf: map[string][]string{}, oneWaySince: map[string]time.Time{},
	}, nil
}

// SetView replaces what the API says: the member nodes (self included), the VIPs to announce at
// layer 2, and whether this view is current (false while the API server is unreachable).
func (c *Core) SetView(members []Member, vips []VIP, apiFresh bool) {
	c.members = make(map[string]Member, len(members))
	addrs := make(map[string][]netip.Addr, len(members))
	for _, m := range members {
		c.members[m.Node.Name] = m
		addrs[m.Node.Name] = m.Addrs
	}
	c.det.SetMembers(addrs)
	c.vips = slices.Clone(vips)
	slices.SortFunc(c.vips, func(a, b VIP) int { return a.Addr.Compare(b.Addr) })
	c.byAddr = make(map[netip.Addr]int, len(vips))
	for i, v := range c.vips {
		c.byAddr[v.Addr] = i
	}
	c.apiFresh = apiFresh
	for mac, node := range c.peerMACs {
		if _, ok := c.members[node]; !ok {
			delete(c.peerMACs, mac)
			delete(c.macsOf, node)
		}
	}
}

// SetLinks records the links this node cannot answer on now and its MAC on each link it can.
func (c *Core) SetLinks(cannot []string, macs map[string]net.HardwareAddr) {
	c.cannot = make(map[string]bool, len(cannot))
	for _, l := range cannot {
		c.cannot[l] = true
	}
	c.macs = make(map[string]net.HardwareAddr, len(macs))
	for l, m := range macs {
		c.macs[l] = slices.Clone(m)
	}
}

// SetPrimaryLink records the carrier of the interface heartbeats and default announcements use.
// Losing it withdraws every VIP at once (the node is cut off; another takes over) and makes the
// node join again when it returns, so it hears who owns what before it answers for anything.
func (c *Core) SetPrimaryLink(now time.Time, up bool) {
	if up == c.primaryUp {
		return
	}
	c.primaryUp = up
	if c.state == membership.Leaving {
		return
	}
	c.state = membership.Joining
	if !up {
		for addr := range c.owned {
			c.yield(addr, "", "link down")
		}
		return
	}
	c.joinUntil = now.Add(c.cfg.JoinGrace)
}

// Leave stops answering for everything; the following heartbeats say so, naming what they
// release, so successors take over without waiting for the failure timeout or a probe.
func (c *Core) Leave() {
	c.released = c.released[:0]
	for addr, o := range c.owned {
		c.released = append(c.released, membership.Claim{Addr: addr, Gen: o.gen})
		c.yield(addr, "", "leaving")
	}
	slices.SortFunc(c.released, func(a, b membership.Claim) int { return a.Addr.Compare(b.Addr) })
	c.state = membership.Leaving
}

// State is the node's membership state.
func (c *Core) State() membership.State { return c.state }

// Owned returns what this node answers for now, by VIP.
func (c *Core) Owned() map[netip.Addr]Owned {
	out := make(map[netip.Addr]Owned, len(c.owned))
	for a, o := range c.owned {
		out[a] = Owned{Gen: o.gen, Links: slices.Clone(o.links)}
	}
	return out
}

// Watching returns the VIPs being probed for a takeover, with the links to watch them on.
func (c *Core) Watching() map[netip.Addr][]string {
	out := make(map[netip.Addr][]string, len(c.probes))
	for a, p := range c.probes {
		if i, ok := c.byAddr[a]; ok && !p.blocked {
			out[a] = c.servable(c.vips[i].Links, c.cannot)
		}
	}
	return out
}

// NextDeadline is when Step must run again at the latest for a pending probe or join to
// complete (zero: nothing pending besides the heartbeat rhythm).
func (c *Core) NextDeadline() time.Time {
	var next time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if c.state == membership.Joining && c.primaryUp {
		earliest(c.joinUntil)
	}
	for _, p := range c.probes {
		if p.blocked {
			earliest(p.blockedUntil)
		} else {
			earliest(p.again)
			earliest(p.deadline)
		}
	}
	return next
}

// Peers lists the member peers with whether each is alive and connected, for metrics.
func (c *Core) Peers(now time.Time) (alive, connected int) {
	for _, name := range c.det.Members() {
		if c.det.Alive(now, name) {
			alive++
		}
		if c.det.Connected(now, name) {
			connected++
		}
	}
	return alive, connected
}

// servable returns the links of a VIP not in cannot.
func (c *Core) servable(links []string, cannot map[string]bool) []string {
	var out []string
	for _, l := range links {
		if !cannot[l] {
			out = append(out, l)
		}
	}
	return out
}

func (c *Core) emit(e Event) { c.out.Events = append(c.out.Events, e) }

func (c *Core) yield(addr netip.Addr, to, reason string) {
	if _, ok := c.owned[addr]; !ok {
		return
	}
	delete(c.owned, addr)
	c.emit(Event{Kind: Yielded, VIP: addr, Peer: to, Reason: reason})
}
