//go:build linux

package l2engine

import (
	"net"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Listen opens the real connection of a speaker: an AF_PACKET SOCK_RAW socket bound to
// etherType on ifi, with the classic BPF filter if one is given (CAP_NET_RAW is required). Frames
// the host itself sends are not delivered to the socket where the kernel supports
// PACKET_IGNORE_OUTGOING (Linux 4.20); elsewhere the engine drops them by their source MAC.
func Listen(ifi *net.Interface, etherType uint16, filter []bpf.RawInstruction) (net.PacketConn, error) {
	var cfg *packet.Config
	if filter != nil {
		cfg = &packet.Config{Filter: filter}
	}
	conn, err := packet.Listen(ifi, packet.Raw, int(etherType), cfg)
	if err != nil {
		return nil, err
	}
	ignoreOutgoing(conn)
	return conn, nil
}

// ignoreOutgoing asks the kernel not to loop the host's own frames back to conn. It is an
// optimisation only: the engine ignores them anyway.
func ignoreOutgoing(conn *packet.Conn) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	})
}
