package announcer

import (
	"net"
)

// openSpeaker opens the real speaker of a protocol on an interface.
func openSpeaker(protocol string, ifi *net.Interface, cfg Config) (speaker, error) {
	return nil, errNoSpeaker
}
