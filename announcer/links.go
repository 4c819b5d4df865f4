package announcer

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"k8s.io/klog/v2"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/l2"
)

// speaker makes the LAN deliver a set of VIPs of one family to this node on one interface, and
// is the node's eye on the wire: it probes and reports other MACs speaking for VIPs.
type speaker interface {
	Set(vips []netip.Addr)
	Watch(vips []netip.Addr)
	Probe(addr netip.Addr) error
	Run(ctx context.Context) error
	Close() error
	Stats() speakerStats
}

type speakerStats struct {
	Requests, Replies, Gratuitous, Probes, Foreign uint64
}

// speakerFactory opens the speaker of one protocol ("ARP" or "NDP") on an interface; onForeign
// receives what it sees of other MACs.
type speakerFactory func(protocol string, ifi *net.Interface, cfg Config, onForeign func(l2.Foreign)) (speaker, error)

// link is one announce link: a protocol on an interface, with its speaker while it works.
type link struct {
	name     string // "ARP/eth1"; "ARP/" is the interface holding the node's IP
	protocol string
	iface    string // the resolved interface name
	sp       speaker
	cancel   context.CancelFunc
	index    int
	mac      net.HardwareAddr
	problem  string // why the link cannot be used now ("" when it can)
	owned    []netip.Addr
	watched  []netip.Addr
}

// links keeps one speaker per link the VIPs need: open while the interface is up, reopened when
// its index or MAC changes (a re-created interface, a bond failing over with
// fail_over_mac=active), closed when no VIP needs it. Only the layer-2 loop calls it.
type links struct {
	cfg       Config
	open      speakerFactory
	defaultIf string
	foreign   func(l2.Foreign)
	metrics   *metrics
	byName    map[string]*link
	// interfaces reads the host's interfaces; a seam for tests.
	interfaces func() ([]net.Interface, error)
}

func newLinks(cfg Config, open speakerFactory, defaultIf string, foreign func(l2.Foreign), m *metrics) *links {
	return &links{cfg: cfg, open: open, defaultIf: defaultIf, foreign: foreign, metrics: m, byName: map[string]*link{}, interfaces: net.Interfaces}
}

// sync brings the speakers in line with the links wanted and the interfaces as they are now.
// It returns the links this node cannot answer on (with why), its MAC on the others, and whether
// the default interface has carrier.
func (ls *links) sync(ctx context.Context, want []string) (cannot []string, macs map[string]net.HardwareAddr, primaryUp bool) {
	logger := klog.FromContext(ctx)
	ifaces, err := ls.interfaces()
	if err != nil {
		logger.Error(err, "Listing network interfaces")
	}
	byName := map[string]*net.Interface{}
	for i := range ifaces {
		byName[ifaces[i].Name] = &ifaces[i]
	}
	running := func(ifi *net.Interface) bool {
		return ifi != nil && ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagRunning != 0
	}
	primaryUp = running(byName[ls.defaultIf])

	wanted := map[string]bool{}
	for _, name := range want {
		wanted[name] = true
	}
	for name, l := range ls.byName {
		if !wanted[name] {
			ls.close(l)
			delete(ls.byName, name)
		}
	}
	macs = map[string]net.HardwareAddr{}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range wanted {
			if !yield(n) {
				return
			}
		}
	}) {
		l := ls.byName[name]
		if l == nil {
			protocol, iface, _ := strings.Cut(name, "/")
			if iface == "" {
				iface = ls.defaultIf
			}
			l = &link{name: name, protocol: protocol, iface: iface}
			ls.byName[name] = l
		}
		problem := ""
		ifi := byName[l.iface]
		switch {
		case ifi == nil:
			problem = fmt.Sprintf("interface %s does not exist on this node", l.iface)
		case !running(ifi):
			problem = fmt.Sprintf("interface %s has no carrier", l.iface)
		case l.protocol == "NDP" && ipv6Disabled(l.iface):
			problem = fmt.Sprintf("IPv6 is disabled on interface %s", l.iface)
		}
		if problem == "" && l.sp != nil && (ifi.Index != l.index || !bytes.Equal(ifi.HardwareAddr, l.mac)) {
			logger.Info("Interface changed: reopening its speaker", "link", name, "index", ifi.Index, "mac", ifi.HardwareAddr.String(), "oldMAC", l.mac.String())
			ls.close(l)
		}
		if problem == "" && l.sp == nil {
			if err := ls.start(ctx, l, ifi); err != nil {
				problem = err.Error()
			}
		}
		if problem != l.problem {
			if problem != "" {
				logger.Info("Cannot announce on this link: other nodes take its VIPs", "link", name, "reason", problem)
			} else if l.problem != "" {
				logger.Info("Link usable again", "link", name)
			}
			l.problem = problem
		}
		if problem != "" {
			cannot = append(cannot, name)
			continue
		}
		macs[name] = l.mac
	}
	return cannot, macs, primaryUp
}

func (ls *links) start(ctx context.Context, l *link, ifi *net.Interface) error {
	sp, err := ls.open(l.protocol, ifi, ls.cfg, func(f l2.Foreign) {
		f.Link = l.name
		ls.foreign(f)
	})
	if err != nil {
		return fmt.Errorf("opening the %s speaker on %s: %w", l.protocol, ifi.Name, err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	l.sp, l.cancel, l.index, l.mac = sp, cancel, ifi.Index, slices.Clone(ifi.HardwareAddr)
	l.owned, l.watched = nil, nil
	go func() {
		defer sp.Close()
		if err := sp.Run(runCtx); err != nil && runCtx.Err() == nil {
			klog.FromContext(ctx).Error(err, "Speaker stopped", "link", l.name)
		}
	}()
	ls.metrics.watch(l.protocol, ifi.Name, sp)
	return nil
}

func (ls *links) close(l *link) {
	if l.sp != nil {
		l.sp.Set(nil)
		l.cancel()
		l.sp = nil
	}
}

// closeAll stops every speaker.
func (ls *links) closeAll() {
	for _, l := range ls.byName {
		ls.close(l)
	}
}

// apply hands each speaker its owned and watched VIPs.
func (ls *links) apply(owned map[netip.Addr]l2.Owned, watching map[netip.Addr][]string) {
	perLink := map[string][]netip.Addr{}
	for addr, o := range owned {
		for _, name := range o.Links {
			perLink[name] = append(perLink[name], addr)
		}
	}
	watchPerLink := map[string][]netip.Addr{}
	for addr, names := range watching {
		for _, name := range names {
			watchPerLink[name] = append(watchPerLink[name], addr)
		}
	}
	for name, l := range ls.byName {
		if l.sp == nil {
			continue
		}
		o := perLink[name]
		slices.SortFunc(o, netip.Addr.Compare)
		if !slices.Equal(o, l.owned) {
			l.sp.Set(o)
			l.owned = o
		}
		w := watchPerLink[name]
		slices.SortFunc(w, netip.Addr.Compare)
		if !slices.Equal(w, l.watched) {
			l.sp.Watch(w)
			l.watched = w
		}
	}
}

// probe sends one probe for addr on a link.
func (ls *links) probe(ctx context.Context, p l2.Probe) {
	if l := ls.byName[p.Link]; l != nil && l.sp != nil {
		if err := l.sp.Probe(p.Addr); err != nil {
			klog.FromContext(ctx).V(2).Info("Probe not sent", "link", p.Link, "vip", p.Addr, "err", err)
		}
	}
}

// reannounce sends a fresh gratuitous burst for an owned VIP: the speaker sends one for every
// VIP its set gains, so the VIP leaves the set and comes back at once.
func (ls *links) reannounce(p l2.Probe) {
	l := ls.byName[p.Link]
	if l == nil || l.sp == nil || !slices.Contains(l.owned, p.Addr) {
		return
	}
	l.sp.Set(slices.DeleteFunc(slices.Clone(l.owned), func(a netip.Addr) bool { return a == p.Addr }))
	l.sp.Set(l.owned)
}

// ipv6Disabled reports whether the kernel has IPv6 off on an interface (NDP cannot work there).
func ipv6Disabled(iface string) bool {
	b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + iface + "/disable_ipv6")
	if err != nil {
		return os.IsNotExist(err) // no IPv6 at all on this kernel
	}
	return strings.TrimSpace(string(b)) == "1"
}
