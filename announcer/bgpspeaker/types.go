package bgpspeaker

import (
	"fmt"
	"net/netip"
	"time"
)

// Config is what a Speaker needs before it knows any peer.
type Config struct {
	// RouterID is the BGP identifier, normally the node's IPv4 address.
	RouterID netip.Addr
	// ASN is the local ASN of peers without a LocalASN, and the server's own ASN (when 0, the
	// first valid peer's LocalASN is used).
	ASN uint32
	// ListenPort is where the speaker accepts sessions: 0 opens no listening socket unless the
	// first Set has a Passive peer, in which case 179 is used. GoBGP v3 opens it only at start:
	// a passive peer that comes later, or a port that cannot be opened, is a Problem on each
	// passive peer, and the speaker runs without it.
	ListenPort int
	// Restarting says that the previous speaker of this node exited without Stop, so that the
	// routers still hold its routes as stale (RFC 4724): each session announces the restart (R
	// bit) until a session to that router has reached Established, and the speaker waits for the
	// routers' End-of-RIB (at most DeferralTime) before sending its routes. See the package
	// documentation for how the caller knows.
	Restarting bool
	// Log receives GoBGP's informational messages and warnings, and the speaker's own; nil
	// drops them. Libraries don't log: the caller adapts this to its logger.
	Log func(msg string, keysAndValues ...any)
}

// Peer is one BGP neighbor.
type Peer struct {
	Name     string // the BGPPeer object's name; the key of Status and Problems
	Address  netip.Addr
	Port     uint16 // 0 means 179
	ASN      uint32 // the peer's
	LocalASN uint32 // ours towards this peer; 0 means Config.ASN
	// SourceAddress is the local address of the session; unset lets the kernel choose.
	SourceAddress netip.Addr
	// HoldTime, KeepaliveTime and ConnectTime: 0 means DefaultHoldTime, DefaultKeepaliveTime and
	// DefaultConnectTime. GoBGP counts whole seconds; ConnectTime is rounded up to 1 s.
	HoldTime, KeepaliveTime, ConnectTime time.Duration
	Password                             string // TCP MD5 signature (RFC 2385); "" for none
	EBGPMultihop                         uint8  // TTL for eBGP sessions to routers not on the link; 0 off
	// GracefulRestart enables RFC 4724 with the notification bit (RFC 8538): the router keeps
	// our routes while we restart, and a Stop (Cease) still flushes them at once.
	GracefulRestart bool
	RestartTime     time.Duration // how long the router keeps our routes; 0 means DefaultRestartTime
	Passive         bool          // wait for the router to connect
}

// Route is one prefix to advertise.
type Route struct {
	// Prefix is a host route (/32, /128) for a VIP, or a pool's covering prefix (198.18.2.0/24)
	// for an aggregate. Its address must be masked (198.18.2.0/24, not 198.18.2.1/24); a
	// default route (/0) is refused.
	Prefix netip.Prefix
	// NextHop is this node's address of the prefix's family. Unset means "the session's local
	// address", which exists only on sessions of the prefix's family: an IPv6 route is then not
	// sent over IPv4 sessions (a :: next hop would reach the router as ::ffff:<v4>, which zebra
	// fails to install, taking the prefix's other paths down with it).
	NextHop          netip.Addr
	Peers            []string // names of the peers that get it
	Communities      []string // "65000:100" or well-known names: "no-export", "no-advertise", ...
	LargeCommunities []string // "a:b:c"
	LocalPref        *uint32  // sent to iBGP peers only (BGP has no LOCAL_PREF on eBGP sessions)
	MED              *uint32
	// GracefulShutdown adds the GRACEFUL_SHUTDOWN community 65535:0 (RFC 8326), and
	// LOCAL_PREF 0 towards iBGP peers: routers de-prefer the path before it is withdrawn.
	GracefulShutdown bool
}

// Desired is everything the speaker should do now.
type Desired struct {
	Peers  []Peer
	Routes []Route
}

// Problem is a part of the desired state that the speaker could not apply as asked.
type Problem struct {
	// Peer is the peer concerned. A problem with a route as a whole (its prefix, next hop or
	// communities) is listed once for each peer the route names, or for every peer of the
	// Desired when it names none; Peer is "" only when there is no peer at all.
	Peer   string
	Prefix netip.Prefix // the route concerned, if any
	Reason string       // in words, with the values involved
}

func (p Problem) String() string { return p.Reason }

// Problems lists what Set could not apply; the rest was applied.
type Problems []Problem

// Session states, as RFC 4271 names them.
const (
	StateIdle        = "Idle"
	StateConnect     = "Connect"
	StateActive      = "Active"
	StateOpenSent    = "OpenSent"
	StateOpenConfirm = "OpenConfirm"
	StateEstablished = "Established"
)

// PeerStatus is what the speaker knows about one session.
type PeerStatus struct {
	Name       string
	Address    netip.Addr
	State      string    // one of the State constants
	Since      time.Time // last state change
	Advertised int       // prefixes sent and not withdrawn
	// Received counts the prefixes the router sends us. The speaker imports none, but GoBGP
	// keeps them (Adj-RIB-In, before the import policy): they cost memory, and the router is
	// best configured to send nothing to the nodes. There is no limit (see docs/bgp-notes.md).
	Received    int
	UpdatesSent uint64
	// LastError says in words why the session is not established, or why it last went down.
	LastError string
}

func (s PeerStatus) String() string {
	return fmt.Sprintf("%s (%s): %s since %s, %d advertised, %d received, %d updates sent, last error %q",
		s.Name, s.Address, s.State, s.Since.Format(time.RFC3339Nano), s.Advertised, s.Received, s.UpdatesSent, s.LastError)
}
