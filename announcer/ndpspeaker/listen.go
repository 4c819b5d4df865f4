package ndpspeaker

import (
	"fmt"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/internal/l2engine"
)

// Listen opens the real seams on cfg.Interface and returns a Speaker on them (Linux only,
// CAP_NET_RAW is required; elsewhere the error wraps errors.ErrUnsupported):
//
//   - the connection is an AF_PACKET SOCK_RAW socket bound to EtherType IPv6, with a BPF filter
//     that passes only ICMPv6 Neighbor Solicitations and Advertisements, and that does not see
//     the host's own frames where the kernel supports PACKET_IGNORE_OUTGOING (Linux 4.20);
//   - the Groups holds the memberships in unbound AF_INET6 UDP sockets (they receive nothing),
//     at most 200 groups each, opened as the groups grow and closed as they shrink: the kernel
//     limits the memberships of one socket by net.core.optmem_max (about 365 with the 20480
//     bytes that were the default before Linux 6.9), and a node may own thousands of VIPs.
//
// IPv6 must be enabled on the interface; the VIPs need not be configured on it, and neither
// ip_nonlocal_bind nor a link-local address is needed. Close the Speaker to close all sockets;
// closing drops the memberships.
func Listen(cfg Config) (*Speaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	conn, err := l2engine.Listen(cfg.Interface, etherTypeIPv6, filter)
	if err != nil {
		return nil, fmt.Errorf("ndpspeaker: opening an IPv6 packet socket on interface %q: %w", cfg.Interface.Name, err)
	}
	// Membership sockets are opened lazily; open one now only to fail here, with a clear
	// error, where the host cannot open any (IPv6 disabled).
	sock, err := newMembership(cfg.Interface.Index)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("ndpspeaker: opening a multicast membership socket for interface %q: %w", cfg.Interface.Name, err)
	}
	_ = sock.Close()
	opener := newNSOpener(cfg.Interface.Index)
	s, err := New(cfg, conn, newShardedGroups(opener.open, opener.close))
	if err != nil {
		_ = conn.Close()
		_ = opener.close()
		return nil, err
	}
	return s, nil
}
