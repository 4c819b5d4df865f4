//go:build !linux

package ndpspeaker

import (
	"errors"
	"fmt"
	"runtime"
)

// Listen opens the real seams: an AF_PACKET socket, which exists only on Linux. Elsewhere it
// returns an error wrapping errors.ErrUnsupported; New still works with any net.PacketConn and
// Groups.
func Listen(cfg Config) (*Speaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("ndpspeaker: raw IPv6 sockets on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
