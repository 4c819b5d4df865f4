package announcer

import (
	"context"
	"fmt"
	"net"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/arpspeaker"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/ndpspeaker"
)

// openSpeaker opens the real speaker of a protocol ("ARP" or "NDP") on an interface.
func openSpeaker(protocol string, ifi *net.Interface, cfg Config) (speaker, error) {
	switch protocol {
	case "ARP":
		sp, err := arpspeaker.Listen(arpspeaker.Config{Interface: ifi, BurstCount: cfg.BurstCount, BurstInterval: cfg.BurstInterval, Refresh: cfg.Refresh})
		if err != nil {
			return nil, err
		}
		return arpAdapter{sp}, nil
	case "NDP":
		sp, err := ndpspeaker.Listen(ndpspeaker.Config{Interface: ifi, BurstCount: cfg.BurstCount, BurstInterval: cfg.BurstInterval, Refresh: cfg.Refresh})
		if err != nil {
			return nil, err
		}
		return ndpAdapter{sp}, nil
	}
	return nil, fmt.Errorf("%w: %q", errNoSpeaker, protocol)
}

type arpAdapter struct{ *arpspeaker.Speaker }

func (a arpAdapter) Stats() speakerStats {
	s := a.Speaker.Stats()
	return speakerStats{Requests: s.RequestsSeen, Replies: s.RepliesSent, Gratuitous: s.GratuitousSent}
}

func (a arpAdapter) Run(ctx context.Context) error {
	defer a.Close()
	return a.Speaker.Run(ctx)
}

type ndpAdapter struct{ *ndpspeaker.Speaker }

func (a ndpAdapter) Stats() speakerStats {
	s := a.Speaker.Stats()
	return speakerStats{Requests: s.RequestsSeen, Replies: s.RepliesSent, Gratuitous: s.GratuitousSent}
}

func (a ndpAdapter) Run(ctx context.Context) error {
	defer a.Close()
	return a.Speaker.Run(ctx)
}
