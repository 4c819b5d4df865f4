package arpspeaker

import (
	"bytes"
	"context"
	"errors"
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
var ErrRunning = errors.New("arpspeaker: Run is already running")

// Config configures a Speaker. A zero BurstCount or BurstInterval selects its default; a zero
// Refresh disables the refresh.
type Config struct {
	// Interface is the link the speaker works on. Its HardwareAddr, a 6-byte unicast Ethernet
	// MAC, is the address every reply and announcement carries; Listen also uses its Index. The
	// speaker keeps a copy and does not follow later changes of the interface. Required.
	Interface *net.Interface

	// BurstCount is how many gratuitous ARPs a VIP gets when Set adds it (takeover), the first at
	// once and the others BurstInterval apart. Zero means DefaultBurstCount; negative is invalid.
	BurstCount int
	// BurstInterval is the time between two gratuitous ARPs of a burst. Zero means
	// DefaultBurstInterval; negative is invalid.
	BurstInterval time.Duration

	// Refresh is how often, after its burst, each owned VIP gets one more gratuitous ARP, so
	// that switches keep the MAC in their forwarding tables and neighbours that missed the
	// burst catch up. Zero (or negative) disables the refresh; DefaultRefresh suits most
	// switches, whose forwarding entries age out after 300 s.
	Refresh time.Duration

	// OnForeign, if not nil, is called for every ARP packet from another MAC that speaks for an
	// owned or watched address (see Foreign), so that the caller can use the wire as a witness
	// before it takes a VIP over (RFC 5227 section 2.1.1) and notice another host answering for
	// a VIP it owns. It is called from the reading goroutine of Run, after the packet has been
	// answered and without locks held: it must be cheap and must not block (hand the report to
	// a channel with a default case), but it may call the Speaker's methods.
	OnForeign func(Foreign)
}

// Foreign is an ARP packet from a MAC other than ours that speaks for an owned or watched
// address.
type Foreign struct {
	// Addr is the owned or watched address.
	Addr netip.Addr
	// MAC is the sender hardware address of the packet: the other host.
	MAC net.HardwareAddr
	// Probe is false when the packet claims Addr: a reply or an announcement from Addr, or a
	// request sent from Addr. It is true for an ARP probe (sender 0.0.0.0) for Addr: the other
	// host wants Addr and does not use it yet (RFC 5227 section 2.1.1: a conflict for a host
	// that probes Addr itself).
	Probe bool
	// Announce is true for a frame that announces Addr unasked: a gratuitous ARP (sender and target address both Addr), what an announcer sends on takeover and a kernel holding the address does not.
	Announce bool
}

func (c Config) engine() l2engine.Config {
	return l2engine.Config{Name: "arpspeaker", Interface: c.Interface, BurstCount: c.BurstCount, BurstInterval: c.BurstInterval,
		Refresh: c.Refresh, OnForeign: l2engine.ReportTo(c.OnForeign), ErrRunning: ErrRunning}
}

// Validate reports whether the Config can be used: an Interface with a unicast 6-byte MAC and
// no negative burst settings.
func (c Config) Validate() error { return c.engine().Validate() }

// Stats are the counters of a Speaker since New. Every frame read is counted once in Received
// and once in exactly one of Malformed, Ignored, RepliesSent or (for a failed reply) SendErrors.
type Stats struct {
	// Received counts frames read from the connection and handled.
	Received uint64
	// RequestsSeen counts well-formed ARP requests from other hosts, for any target.
	RequestsSeen uint64
	// RepliesSent counts replies written for owned VIPs.
	RepliesSent uint64
	// GratuitousSent counts gratuitous ARPs written (takeover bursts and refreshes).
	GratuitousSent uint64
	// Ignored counts well-formed frames that needed no answer: requests for addresses not owned,
	// replies, frames from our own MAC or to another host's MAC.
	Ignored uint64
	// Malformed counts frames dropped because they are truncated, not Ethernet/IPv4 ARP, or carry
	// impossible addresses.
	Malformed uint64
	// Conflicts counts ARP frames from another MAC whose sender address is an owned VIP: another
	// host claims it.
	Conflicts uint64
	// SendErrors counts replies, gratuitous ARPs and probes the connection failed to write.
	SendErrors uint64
	// ReadErrors counts failed reads (other than the end of Run).
	ReadErrors uint64
	// ProbesSent counts ARP probes written by Probe.
	ProbesSent uint64
	// ForeignSeen counts foreign claims and probes of owned or watched addresses (the reports
	// to Config.OnForeign, counted also when it is nil).
	ForeignSeen uint64
}

// Speaker answers ARP for a set of owned IPv4 VIPs on one interface, and probes and watches
// addresses it may take over. Its methods are safe for concurrent use.
type Speaker struct {
	e *l2engine.Engine
}

// New returns a Speaker that reads and writes whole Ethernet II frames on conn. The Speaker
// takes ownership of conn: Close closes it. Addresses passed to conn.WriteTo are link-layer
// addresses (the frame's destination MAC) of the type the AF_PACKET connection of Listen expects;
// other connections may ignore them. New starts nothing: call Run.
func New(cfg Config, conn net.PacketConn) (*Speaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e, err := l2engine.New(cfg.engine(), conn, etherTypeARP, &codec{mac: bytes.Clone(cfg.Interface.HardwareAddr)})
	if err != nil {
		return nil, err
	}
	return &Speaker{e: e}, nil
}

// HardwareAddr returns the MAC address the speaker answers with.
func (s *Speaker) HardwareAddr() net.HardwareAddr { return s.e.HardwareAddr() }

// Set replaces the set of VIPs the speaker owns. Only unicast IPv4 addresses count
// (IPv4-mapped IPv6 addresses are unmapped); every other address (IPv6, the zero Addr,
// 0.0.0.0, broadcast, multicast, loopback) is ignored. Duplicates are harmless.
//
// A VIP not owned before gets its takeover burst: Run sends the first gratuitous ARP at once. A
// VIP that leaves the set is not answered or announced any more once Set returns. Set may be
// called before Run and concurrently with it.
func (s *Speaker) Set(vips []netip.Addr) { s.e.Set(vips) }

// Watch replaces the set of addresses, beyond the owned ones, whose foreign claims and probes
// are reported to Config.OnForeign: the addresses the caller is probing before it takes them
// over. The addresses are filtered as by Set. Watching sends nothing and answers nothing. Watch
// may be called before Run and concurrently with everything else.
func (s *Speaker) Watch(addrs []netip.Addr) { s.e.Watch(addrs) }

// Probe sends one RFC 5227 ARP probe for addr now: a broadcast request with our MAC as sender
// hardware address, 0.0.0.0 as sender protocol address, a zero target hardware address and
// addr as target protocol address. A host that uses addr answers it, a host that probes addr
// too sends the same, and neither updates any ARP cache. Watch addr first to hear the answers.
// Probe works with or without Run; it returns an error for an address Set would ignore and
// for a failed write (also counted in Stats.SendErrors).
func (s *Speaker) Probe(addr netip.Addr) error { return s.e.Probe(addr) }

// Owned returns the owned VIPs, in no particular order.
func (s *Speaker) Owned() []netip.Addr { return s.e.Owned() }

// Stats returns a snapshot of the speaker's counters.
func (s *Speaker) Stats() Stats { return Stats(s.e.Stats()) }

// Close closes the connection. Run then returns.
func (s *Speaker) Close() error { return s.e.Close() }

// Run answers requests for owned VIPs and sends the gratuitous ARPs of takeovers and refreshes
// until ctx ends; it then returns nil. It returns an error if the connection is closed or fails
// for good, or ErrRunning if another Run is in progress. Read errors that may pass (for example
// while the interface is down) are counted and retried with a backoff; write errors are counted.
func (s *Speaker) Run(ctx context.Context) error { return s.e.Run(ctx) }
