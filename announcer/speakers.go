package announcer

import (
	"errors"
	"fmt"
	"net"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/arpspeaker"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/l2"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/ndpspeaker"
)

var errNoSpeaker = errors.New("no speaker for this protocol on this platform")

// openSpeaker opens the real speaker of a protocol ("ARP" or "NDP") on an interface.
func openSpeaker(protocol string, ifi *net.Interface, cfg Config, onForeign func(l2.Foreign)) (speaker, error) {
	switch protocol {
	case "ARP":
		sp, err := arpspeaker.Listen(arpspeaker.Config{
			Interface: ifi, BurstCount: cfg.BurstCount, BurstInterval: cfg.BurstInterval, Refresh: cfg.Refresh,
			OnForeign: func(f arpspeaker.Foreign) {
				onForeign(l2.Foreign{Addr: f.Addr, MAC: f.MAC, Probe: f.Probe, Announce: f.Announce})
			},
		})
		if err != nil {
			return nil, err
		}
		return arpAdapter{sp}, nil
	case "NDP":
		sp, err := ndpspeaker.Listen(ndpspeaker.Config{
			Interface: ifi, BurstCount: cfg.BurstCount, BurstInterval: cfg.BurstInterval, Refresh: cfg.Refresh,
			OnForeign: func(f ndpspeaker.Foreign) {
				onForeign(l2.Foreign{Addr: f.Addr, MAC: f.MAC, Probe: f.Probe, Announce: f.Announce})
			},
		})
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
	return speakerStats{Requests: s.RequestsSeen, Replies: s.RepliesSent, Gratuitous: s.GratuitousSent, Probes: s.ProbesSent, Foreign: s.ForeignSeen}
}

type ndpAdapter struct{ *ndpspeaker.Speaker }

func (a ndpAdapter) Stats() speakerStats {
	s := a.Speaker.Stats()
	return speakerStats{Requests: s.RequestsSeen, Replies: s.RepliesSent, Gratuitous: s.GratuitousSent, Probes: s.ProbesSent, Foreign: s.ForeignSeen}
}
