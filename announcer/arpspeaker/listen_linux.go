//go:build linux

package arpspeaker

import (
	"fmt"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// Listen opens the real connection and returns a Speaker on it: an AF_PACKET SOCK_RAW socket
// bound to EtherType ARP on cfg.Interface (CAP_NET_RAW is required). The interface needs no IPv4
// address. Frames the host itself sends are not delivered to the socket where the kernel supports
// PACKET_IGNORE_OUTGOING (Linux 4.20); elsewhere the speaker drops them by their source MAC.
// Close the Speaker to close the socket.
func Listen(cfg Config) (*Speaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	conn, err := packet.Listen(cfg.Interface, packet.Raw, unix.ETH_P_ARP, nil)
	if err != nil {
		return nil, fmt.Errorf("arpspeaker: opening an ARP socket on interface %q: %w", cfg.Interface.Name, err)
	}
	ignoreOutgoing(conn)
	s, err := New(cfg, conn)
	if err != nil {
		_ = conn.Close()
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
