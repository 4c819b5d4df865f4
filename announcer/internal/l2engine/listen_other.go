//go:build !linux

package l2engine

import (
	"errors"
	"fmt"
	"net"
	"runtime"

	"golang.org/x/net/bpf"
)

// Listen opens the real connection of a speaker: an AF_PACKET socket, which exists only on
// Linux. Elsewhere it returns an error wrapping errors.ErrUnsupported; the speakers' New still
// works with any net.PacketConn.
func Listen(ifi *net.Interface, etherType uint16, filter []bpf.RawInstruction) (net.PacketConn, error) {
	return nil, fmt.Errorf("raw Ethernet sockets on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
