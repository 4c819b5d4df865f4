//go:build !linux

package arpspeaker

import (
	"errors"
	"fmt"
	"runtime"
)

// Listen opens the real connection: an AF_PACKET socket, which exists only on Linux. Elsewhere it
// returns an error wrapping errors.ErrUnsupported; New still works with any net.PacketConn.
func Listen(cfg Config) (*Speaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("arpspeaker: raw ARP sockets on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
