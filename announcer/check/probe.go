package check

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/arpspeaker"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/ndpspeaker"
)

// probeRounds is how many probes each address gets, probeGap apart: one lost frame must not
// hide an answer.
const (
	probeRounds = 2
	probeGap    = 100 * time.Millisecond
)

// prober is what the check needs of a speaker: it never calls Set, so it answers for nothing.
type prober interface {
	Watch(addrs []netip.Addr)
	Probe(addr netip.Addr) error
	Run(ctx context.Context) error
	Close() error
}

// probeLAN opens the speakers' raw sockets on every link the VIPs need (and ARP and NDP on the
// default interface, to test the capability), records how that went in f.Sockets, then, unless
// wait is negative, probes the VIPs and the other nodes' on-link addresses and records the other
// MACs that answer in f.Answers.
func probeLAN(ctx context.Context, f *Facts, wait time.Duration) {
	links := f.Links()
	if def := f.DefaultInterface(); def != "" {
		for _, p := range []string{"ARP", "NDP"} {
			l := Link{Protocol: p, Interface: def}
			if _, ok := links[l]; !ok {
				links[l] = nil
			}
		}
	}
	var (
		mu      sync.Mutex
		answers = map[Answer]bool{}
	)
	type open struct {
		link    Link
		sp      prober
		targets []netip.Addr
	}
	var opened []open
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		for _, o := range opened {
			_ = o.sp.Close()
		}
		wg.Wait()
	}()
	for _, l := range sortedLinks(links) {
		i := f.iface(l.Interface)
		if i == nil || (l.Protocol == "NDP" && (f.NoIPv6 || i.IPv6Disabled)) {
			continue // reported by interfaceFindings
		}
		ifi, err := net.InterfaceByName(l.Interface)
		if err != nil {
			continue // gone since gatherHost
		}
		report := func(addr netip.Addr, mac net.HardwareAddr, probe bool) {
			if probe {
				return // another host probing, not answering
			}
			mu.Lock()
			answers[Answer{Link: l, Addr: addr.Unmap(), MAC: mac.String()}] = true
			mu.Unlock()
		}
		sp, err := openProber(l.Protocol, ifi, report)
		res := SocketResult{Link: l, Needed: len(links[l]) > 0}
		if err != nil {
			res.Err, res.Denied = err.Error(), denied(err)
			f.Sockets = append(f.Sockets, res)
			continue
		}
		f.Sockets = append(f.Sockets, res)
		o := open{link: l, sp: sp, targets: slices.Clone(links[l])}
		o.targets = append(o.targets, peerTargets(f, i, l.Protocol)...)
		opened = append(opened, o)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = sp.Run(runCtx)
		}()
	}
	if len(f.Sockets) == 0 {
		// No interface to open a speaker on: still find out whether the capability is there.
		res := SocketResult{Link: Link{Protocol: "AF_PACKET"}}
		if err := rawSocketAllowed(); err != nil {
			res.Err, res.Denied = err.Error(), denied(err)
		}
		f.Sockets = append(f.Sockets, res)
	}
	if wait < 0 {
		return
	}
	probing := false
	for _, o := range opened {
		if len(o.targets) > 0 {
			o.sp.Watch(o.targets)
			probing = true
		}
	}
	if !probing {
		return
	}
	f.Probed = map[Link][]netip.Addr{}
	for round := range probeRounds {
		if round > 0 && sleep(ctx, probeGap) != nil {
			return
		}
		for _, o := range opened {
			for _, t := range o.targets {
				if err := o.sp.Probe(t); err != nil {
					if round == 0 {
						f.ProbeErrors = append(f.ProbeErrors, fmt.Sprintf("probing %s on %s: %v", t, o.link, err))
					}
					break // the rest of this link fails the same way
				}
				if round == 0 {
					f.Probed[o.link] = append(f.Probed[o.link], t)
				}
			}
		}
	}
	if sleep(ctx, wait) != nil {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	for a := range answers {
		f.Answers = append(f.Answers, a)
	}
	slices.SortFunc(f.Answers, func(a, b Answer) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		if a.MAC != b.MAC {
			if a.MAC < b.MAC {
				return -1
			}
			return 1
		}
		if a.Link.String() < b.Link.String() {
			return -1
		}
		return 0
	})
}

// openProber opens the speaker of protocol on ifi, reporting the other MACs that speak for
// watched addresses.
func openProber(protocol string, ifi *net.Interface, report func(netip.Addr, net.HardwareAddr, bool)) (prober, error) {
	if protocol == "NDP" {
		return ndpspeaker.Listen(ndpspeaker.Config{Interface: ifi, OnForeign: func(fr ndpspeaker.Foreign) { report(fr.Addr, fr.MAC, fr.Probe) }})
	}
	return arpspeaker.Listen(arpspeaker.Config{Interface: ifi, OnForeign: func(fr arpspeaker.Foreign) { report(fr.Addr, fr.MAC, fr.Probe) }})
}

// peerTargets are the other nodes' addresses of the link's family that are on-link on i: their
// answers name the MACs of the nodes, so that a VIP answered by a node is told from one answered
// by a stranger.
func peerTargets(f *Facts, i *Interface, protocol string) []netip.Addr {
	var out []netip.Addr
	for _, p := range f.API.Peers {
		for _, a := range p.Addrs {
			a = a.Unmap()
			if a.Is4() != (protocol == "ARP") {
				continue
			}
			if slices.ContainsFunc(i.Addrs, func(pfx netip.Prefix) bool { return pfx.Contains(a) && pfx.Addr() != a }) {
				out = append(out, a)
			}
			if len(out) == maxPeerProbes {
				return out
			}
		}
	}
	return out
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
