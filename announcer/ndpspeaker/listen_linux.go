//go:build linux

package ndpspeaker

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// Listen opens the real seams on cfg.Interface and returns a Speaker on them (CAP_NET_RAW is
// required):
//
//   - the connection is an AF_PACKET SOCK_RAW socket bound to EtherType IPv6, with a BPF filter
//     that passes only ICMPv6 Neighbor Solicitations and Advertisements, and that does not see
//     the host's own frames where the kernel supports PACKET_IGNORE_OUTGOING (Linux 4.20);
//   - the Groups is an unbound AF_INET6 UDP socket (it receives nothing) whose IPV6_JOIN_GROUP
//     memberships make the kernel accept the solicited-node multicast MACs on the NIC and send
//     MLD reports, so that switches with MLD snooping forward the solicitations to this port.
//
// IPv6 must be enabled on the interface; the VIPs need not be configured on it, and neither
// ip_nonlocal_bind nor a link-local address is needed. Close the Speaker to close both sockets;
// closing drops the memberships.
func Listen(cfg Config) (*Speaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	conn, err := packet.Listen(cfg.Interface, packet.Raw, unix.ETH_P_IPV6, &packet.Config{Filter: filter})
	if err != nil {
		return nil, fmt.Errorf("ndpspeaker: opening an IPv6 packet socket on interface %q: %w", cfg.Interface.Name, err)
	}
	ignoreOutgoing(conn)
	groups, err := newMembership(cfg.Interface.Index)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("ndpspeaker: opening a multicast membership socket for interface %q: %w", cfg.Interface.Name, err)
	}
	s, err := New(cfg, conn, groups)
	if err != nil {
		_ = conn.Close()
		_ = groups.Close()
		return nil, err
	}
	return s, nil
}

// ignoreOutgoing asks the kernel not to loop the host's own frames back to conn. It is an
// optimisation only: the speaker ignores them anyway.
func ignoreOutgoing(conn *packet.Conn) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	})
}

// membership holds IPv6 multicast memberships on one interface with an unbound UDP socket.
type membership struct {
	ifindex int
	mu      sync.Mutex
	fd      int // -1 once closed
}

func newMembership(ifindex int) (*membership, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	return &membership{ifindex: ifindex, fd: fd}, nil
}

// JoinGroup joins group on the interface.
func (m *membership) JoinGroup(group netip.Addr) error {
	return m.setsockopt(unix.IPV6_JOIN_GROUP, "IPV6_JOIN_GROUP", group)
}

// LeaveGroup leaves group on the interface.
func (m *membership) LeaveGroup(group netip.Addr) error {
	return m.setsockopt(unix.IPV6_LEAVE_GROUP, "IPV6_LEAVE_GROUP", group)
}

func (m *membership) setsockopt(opt int, name string, group netip.Addr) error {
	if !group.Is6() || !group.IsMulticast() {
		return fmt.Errorf("%s: %s is not an IPv6 multicast group", name, group)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fd < 0 {
		return os.ErrClosed
	}
	mreq := &unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(m.ifindex)}
	if err := unix.SetsockoptIPv6Mreq(m.fd, unix.IPPROTO_IPV6, opt, mreq); err != nil {
		return fmt.Errorf("%s %s: %w", name, group, os.NewSyscallError("setsockopt", err))
	}
	return nil
}

// Close closes the socket, which drops its memberships.
func (m *membership) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fd < 0 {
		return errors.New("membership socket already closed")
	}
	err := unix.Close(m.fd)
	m.fd = -1
	return os.NewSyscallError("close", err)
}
