package ndpspeaker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/internal/l2engine"
)

// Defaults: the zero BurstCount and BurstInterval of a Config select the first two;
// DefaultRefresh is the recommended Refresh (a zero Refresh disables it).
const (
	DefaultBurstCount    = l2engine.DefaultBurstCount
	DefaultBurstInterval = l2engine.DefaultBurstInterval
	DefaultRefresh       = l2engine.DefaultRefresh
)

// ErrRunning is returned by Run when another Run of the same Speaker has not returned yet.
var ErrRunning = errors.New("ndpspeaker: Run is already running")

// Config configures a Speaker. A zero BurstCount or BurstInterval selects its default; a zero
// Refresh disables the refresh.
type Config struct {
	// Interface is the link the speaker works on. Its HardwareAddr, a 6-byte unicast Ethernet
	// MAC, is the address every advertisement carries; Listen also uses its Index. The speaker
	// keeps a copy and does not follow later changes of the interface. Required.
	Interface *net.Interface

	// BurstCount is how many unsolicited advertisements a VIP gets when Set adds it (takeover),
	// the first at once and the others BurstInterval apart. Zero means DefaultBurstCount;
	// negative is invalid.
	BurstCount int
	// BurstInterval is the time between two advertisements of a burst. Zero means
	// DefaultBurstInterval; negative is invalid.
	BurstInterval time.Duration

	// Refresh is how often, after its burst, each owned VIP gets one more unsolicited
	// advertisement, so that switches keep the MAC in their forwarding tables and neighbours that
	// missed the burst catch up. Zero (or negative) disables the refresh; DefaultRefresh suits
	// most switches, whose forwarding entries age out after 300 s.
	Refresh time.Duration

	// OnForeign, if not nil, is called for every Neighbor Discovery message from another MAC
	// that speaks for an owned or watched address (see Foreign), so that the caller can use the
	// wire as a witness before it takes a VIP over (duplicate address detection, RFC 4862
	// section 5.4) and notice another host answering for a VIP it owns. It is called from the
	// reading goroutine of Run, after the message has been answered and without locks held: it
	// must be cheap and must not block (hand the report to a channel with a default case), but it
	// may call the Speaker's methods.
	OnForeign func(Foreign)
}

// Foreign is a Neighbor Discovery message from a MAC other than ours that speaks for an owned or
// watched address.
type Foreign struct {
	// Addr is the owned or watched address.
	Addr netip.Addr
	// MAC is the other host: the Target Link-Layer Address option of an advertisement, the
	// Source Link-Layer Address option of a solicitation, or else the frame's Ethernet source.
	MAC net.HardwareAddr
	// Probe is false when the message claims Addr: an advertisement for Addr, or a solicitation
	// sent from Addr. It is true for a duplicate address detection solicitation (source ::) for
	// Addr: the other host wants Addr and does not use it yet (RFC 4862 section 5.4.3: a
	// duplicate for a host that probes Addr itself).
	Probe bool
	// Announce is true for a message that announces Addr unasked: an unsolicited Neighbor
	// Advertisement (Solicited flag clear), what an announcer sends on takeover and a kernel
	// holding the address does not. The answer to a duplicate address detection probe has the
	// Solicited flag clear too (RFC 4861 section 7.2.4), whether a kernel or an announcer sends
	// it, so an advertisement for an address probed in the last second (by Probe or by another
	// host), from a MAC that did not probe it, is taken for that answer: Announce is false.
	Announce bool
}

func (c Config) engine() l2engine.Config {
	return l2engine.Config{Name: "ndpspeaker", Interface: c.Interface, BurstCount: c.BurstCount, BurstInterval: c.BurstInterval,
		Refresh: c.Refresh, OnForeign: l2engine.ReportTo(c.OnForeign), ErrRunning: ErrRunning}
}

// Validate reports whether the Config can be used: an Interface with a unicast 6-byte MAC and
// no negative burst settings.
func (c Config) Validate() error { return c.engine().Validate() }

// Groups joins and leaves IPv6 multicast groups on the speaker's interface. The speaker calls it
// for the solicited-node groups of its owned and watched addresses, at most once per group until
// it leaves it again, from Set and Watch and (to retry a failure) from Run, never concurrently.
// If it implements io.Closer, Close closes it.
type Groups interface {
	JoinGroup(group netip.Addr) error
	LeaveGroup(group netip.Addr) error
}

// Stats are the counters of a Speaker since New. Every frame read is counted once in Received
// and once in exactly one of Malformed, Ignored, RepliesSent or (for a failed reply) SendErrors.
type Stats struct {
	// Received counts frames read from the connection and handled.
	Received uint64
	// RequestsSeen counts valid Neighbor Solicitations from other hosts, for any target.
	RequestsSeen uint64
	// RepliesSent counts advertisements written in answer to a solicitation for an owned VIP.
	RepliesSent uint64
	// GratuitousSent counts unsolicited advertisements written (takeover bursts and refreshes).
	GratuitousSent uint64
	// Ignored counts well-formed frames that needed no answer: solicitations for addresses not
	// owned, advertisements, other IPv6 traffic, frames from our own MAC or to another host's MAC.
	Ignored uint64
	// Malformed counts frames dropped because they fail the checks of RFC 4861 section 7.1.1 or
	// cannot be parsed.
	Malformed uint64
	// Conflicts counts advertisements for an owned VIP, or solicitations from one, sent by another
	// MAC: another host claims the VIP.
	Conflicts uint64
	// SendErrors counts advertisements and probes the connection failed to write.
	SendErrors uint64
	// ReadErrors counts failed reads (other than the end of Run).
	ReadErrors uint64
	// GroupErrors counts failed joins and leaves of solicited-node groups (each is retried).
	GroupErrors uint64
	// ProbesSent counts duplicate address detection solicitations written by Probe.
	ProbesSent uint64
	// ForeignSeen counts foreign claims and probes of owned or watched addresses (the reports
	// to Config.OnForeign, counted also when it is nil).
	ForeignSeen uint64
}

// Speaker answers Neighbor Solicitations for a set of owned IPv6 VIPs on one interface, and
// probes and watches addresses it may take over. Its methods are safe for concurrent use.
type Speaker struct {
	e      *l2engine.Engine
	keeper *groupKeeper
}

// New returns a Speaker that reads and writes whole Ethernet II frames on conn and joins
// solicited-node groups through groups. The Speaker takes ownership of both: Close closes them.
// Addresses passed to conn.WriteTo are link-layer addresses (the frame's destination MAC) of the
// type the AF_PACKET connection of Listen expects; other connections may ignore them. New starts
// nothing: call Run.
func New(cfg Config, conn net.PacketConn, groups Groups) (*Speaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if groups == nil {
		return nil, errors.New("ndpspeaker: New needs a Groups")
	}
	keeper := &groupKeeper{groups: groups, joined: map[netip.Addr]bool{}}
	c := &codec{mac: bytes.Clone(cfg.Interface.HardwareAddr), groupKeeper: keeper}
	e, err := l2engine.New(cfg.engine(), conn, etherTypeIPv6, c)
	if err != nil {
		return nil, err
	}
	return &Speaker{e: e, keeper: keeper}, nil
}

// HardwareAddr returns the MAC address the speaker answers with.
func (s *Speaker) HardwareAddr() net.HardwareAddr { return s.e.HardwareAddr() }

// Set replaces the set of VIPs the speaker owns. Only unicast IPv6 addresses count (a zone is
// dropped); every other address (IPv4, IPv4-mapped IPv6, the zero Addr, ::, multicast, ::1) is
// ignored. Duplicates are harmless.
//
// A VIP not owned before gets its takeover burst: Run sends the first unsolicited advertisement
// at once. A VIP that leaves the set is not answered or announced any more once Set returns.
// Before returning, Set also joins the solicited-node group of every new VIP and leaves the
// groups no owned or watched address needs any more; a failure is counted in Stats.GroupErrors
// and retried by Run every second (the VIP is answered meanwhile, but the NIC may drop multicast
// solicitations for it). Set may be called before Run and concurrently with it.
func (s *Speaker) Set(vips []netip.Addr) { s.e.Set(vips) }

// Watch replaces the set of addresses, beyond the owned ones, whose foreign claims and probes
// are reported to Config.OnForeign: the addresses the caller is probing before it takes them
// over. The addresses are filtered as by Set. Watching answers and announces nothing, but joins
// the solicited-node group of each address, as RFC 4862 section 5.4.2 asks of a host that
// probes: the duplicate address detection of another host arrives there. Watch may be called
// before Run and concurrently with everything else.
func (s *Speaker) Watch(addrs []netip.Addr) { s.e.Watch(addrs) }

// Probe sends one duplicate address detection solicitation (RFC 4862 section 5.4.2) for addr
// now: a Neighbor Solicitation for target addr from the unspecified address ::, to the
// solicited-node group of addr, hop limit 255, without a Source Link-Layer Address option. A
// host that uses addr answers with an advertisement to all nodes, a host that probes addr too
// sends the same, and no neighbour cache changes. Watch addr first to hear the answers. Probe
// works with or without Run; it returns an error for an address Set would ignore and for a
// failed write (also counted in Stats.SendErrors).
func (s *Speaker) Probe(addr netip.Addr) error { return s.e.Probe(addr) }

// Groups returns the solicited-node groups the speaker has joined, in no particular order.
func (s *Speaker) Groups() []netip.Addr { return s.keeper.joinedGroups() }

// Owned returns the owned VIPs, in no particular order.
func (s *Speaker) Owned() []netip.Addr { return s.e.Owned() }

// Stats returns a snapshot of the speaker's counters.
func (s *Speaker) Stats() Stats {
	c := s.e.Stats()
	return Stats{
		Received:       c.Received,
		RequestsSeen:   c.RequestsSeen,
		RepliesSent:    c.RepliesSent,
		GratuitousSent: c.GratuitousSent,
		Ignored:        c.Ignored,
		Malformed:      c.Malformed,
		Conflicts:      c.Conflicts,
		SendErrors:     c.SendErrors,
		ReadErrors:     c.ReadErrors,
		GroupErrors:    s.keeper.errors.Load(),
		ProbesSent:     c.ProbesSent,
		ForeignSeen:    c.ForeignSeen,
	}
}

// Close closes the connection and, if it is an io.Closer, the Groups (which drops its
// memberships). Run then returns.
func (s *Speaker) Close() error {
	err := s.e.Close()
	if c, ok := s.keeper.groups.(io.Closer); ok {
		err = errors.Join(err, c.Close())
	}
	return err
}

// Run answers solicitations for owned VIPs, sends the unsolicited advertisements of takeovers
// and refreshes and retries failed group joins and leaves until ctx ends; it then returns nil.
// It returns an error if the connection is closed or fails for good, or ErrRunning if another
// Run is in progress. Read errors that may pass (for example while the interface is down) are
// counted and retried with a backoff; write errors are counted.
func (s *Speaker) Run(ctx context.Context) error { return s.e.Run(ctx) }
