package ndpspeaker

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

const (
	// dadAnswerWindow is how long after a duplicate address detection probe an advertisement
	// with the Solicited flag clear is taken for its answer: RFC 4861's RetransTimer default
	// (RETRANS_TIMER), which is how long the prober itself waits for one (RFC 4862 section
	// 5.4). Hosts answer at once.
	dadAnswerWindow = time.Second
	// maxDADTargets bounds the probed targets remembered at once; a probe of another target is
	// then forgotten (its answers are reported as announcements, as if it had not been seen).
	maxDADTargets = 256
	// maxDADProbers bounds the probers remembered per target.
	maxDADProbers = 4
)

// dadProbes remembers the duplicate address detection probes of the last dadAnswerWindow, ours
// and other hosts', so that Parse can tell their answers from announcements.
//
// RFC 4861 section 7.2.4 makes the answer to a probe (a solicitation from ::) an advertisement
// to all nodes with the Solicited flag clear: on the wire the same as the unsolicited
// advertisement of an announcer taking the address over, but sent as well by a kernel that
// merely holds the address. So an advertisement with the Solicited flag clear for a target
// probed in the last dadAnswerWindow, from a MAC that did not probe it, answers the probe; the
// advertisements of a prober (which probed, then took the address over) and all others announce.
type dadProbes struct {
	mu      sync.Mutex
	targets map[netip.Addr]*dadProbe
}

// dadProbe is the last probe of a target and the MACs that probed it.
type dadProbe struct {
	at      time.Time
	probers []net.HardwareAddr
}

// probed records a probe of target by the MAC prober at now.
func (d *dadProbes) probed(target netip.Addr, prober net.HardwareAddr, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.targets[target]
	if p != nil && !p.live(now) {
		p.probers = p.probers[:0]
	}
	if p == nil {
		if d.targets == nil {
			d.targets = map[netip.Addr]*dadProbe{}
		}
		if len(d.targets) >= maxDADTargets {
			for a, q := range d.targets {
				if !q.live(now) {
					delete(d.targets, a)
				}
			}
			if len(d.targets) >= maxDADTargets {
				return
			}
		}
		p = &dadProbe{}
		d.targets[target] = p
	}
	p.at = now
	if !slices.ContainsFunc(p.probers, func(m net.HardwareAddr) bool { return bytes.Equal(m, prober) }) &&
		len(p.probers) < maxDADProbers {
		p.probers = append(p.probers, bytes.Clone(prober))
	}
}

// answers reports whether an advertisement for target with the Solicited flag clear from mac,
// seen at now, answers a probe recorded by probed.
func (d *dadProbes) answers(target netip.Addr, mac net.HardwareAddr, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.targets[target]
	if p == nil {
		return false
	}
	if !p.live(now) {
		delete(d.targets, target)
		return false
	}
	return !slices.ContainsFunc(p.probers, func(m net.HardwareAddr) bool { return bytes.Equal(m, mac) })
}

// live reports whether the probe may still be answered at now. A now before the probe (a probe
// recorded by another goroutine while Parse read the clock) counts as live.
func (p *dadProbe) live(now time.Time) bool { return now.Sub(p.at) <= dadAnswerWindow }
