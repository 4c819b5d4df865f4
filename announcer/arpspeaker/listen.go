package arpspeaker

import (
	"fmt"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/internal/l2engine"
)

// Listen opens the real connection and returns a Speaker on it: an AF_PACKET SOCK_RAW socket
// bound to EtherType ARP on cfg.Interface (Linux only, CAP_NET_RAW is required; elsewhere the
// error wraps errors.ErrUnsupported). The interface needs no IPv4 address. Frames the host itself
// sends are not delivered to the socket where the kernel supports PACKET_IGNORE_OUTGOING (Linux
// 4.20); elsewhere the speaker drops them by their source MAC. Close the Speaker to close the
// socket.
func Listen(cfg Config) (*Speaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	conn, err := l2engine.Listen(cfg.Interface, etherTypeARP, nil)
	if err != nil {
		return nil, fmt.Errorf("arpspeaker: opening an ARP socket on interface %q: %w", cfg.Interface.Name, err)
	}
	s, err := New(cfg, conn)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return s, nil
}
