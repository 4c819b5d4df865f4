package announcer

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/l2"
)

// recordingSpeaker is a speaker that records what it was told.
type recordingSpeaker struct {
	fakeSpeaker
	ifindex int
	mac     string
	sets    [][]netip.Addr
	closed  atomic.Bool // Close runs on the speaker's goroutine when its context ends
}

func (r *recordingSpeaker) Set(v []netip.Addr) { r.sets = append(r.sets, slices.Clone(v)) }
func (r *recordingSpeaker) Close() error       { r.closed.Store(true); return nil }

// wasClosed waits a little for the speaker's goroutine to close it.
func (r *recordingSpeaker) wasClosed() bool {
	for range 200 {
		if r.closed.Load() {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

func TestLinksFollowInterfaces(t *testing.T) {
	up := net.FlagUp | net.FlagRunning
	mac1 := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	mac2 := net.HardwareAddr{2, 0, 0, 0, 0, 2}
	ifaces := []net.Interface{
		{Index: 2, Name: "eth0", HardwareAddr: mac1, Flags: up},
		{Index: 3, Name: "eth1", HardwareAddr: mac1, Flags: up},
	}
	var opened []*recordingSpeaker
	failOpen := map[string]bool{}
	open := func(protocol string, ifi *net.Interface, _ Config, _ func(l2.Foreign)) (speaker, error) {
		if failOpen[ifi.Name] {
			return nil, errors.New("no IPv6 here")
		}
		sp := &recordingSpeaker{ifindex: ifi.Index, mac: ifi.HardwareAddr.String()}
		opened = append(opened, sp)
		return sp, nil
	}
	ls := newLinks(DefaultConfig(), open, "eth0", func(l2.Foreign) {}, newMetrics())
	ls.interfaces = func() ([]net.Interface, error) { return slices.Clone(ifaces), nil }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer ls.closeAll()

	cannot, macs, primary := ls.sync(ctx, []string{"ARP/", "ARP/eth1", "ARP/eth9"})
	if !primary || !slices.Equal(cannot, []string{"ARP/eth9"}) || len(opened) != 2 || macs["ARP/eth1"].String() != mac1.String() {
		t.Fatalf("first sync: cannot %v, primary %v, %d speakers, macs %v; want eth9 unusable, two speakers", cannot, primary, len(opened), macs)
	}

	// Owned VIPs reach the speaker of their link.
	vip := netip.MustParseAddr("198.18.0.240")
	ls.apply(map[netip.Addr]l2.Owned{vip: {Gen: 1, Links: []string{"ARP/eth1"}}}, nil)
	eth1 := opened[1]
	if got := eth1.sets[len(eth1.sets)-1]; !slices.Equal(got, []netip.Addr{vip}) {
		t.Fatalf("eth1's speaker was told %v", got)
	}

	// A bond failing over with fail_over_mac=active: eth1's MAC changes; its speaker is reopened
	// and told the VIP again (so the new MAC is announced).
	ifaces[1].HardwareAddr = mac2
	_, macs, _ = ls.sync(ctx, []string{"ARP/", "ARP/eth1"})
	if !eth1.wasClosed() || len(opened) != 3 || opened[2].mac != mac2.String() || macs["ARP/eth1"].String() != mac2.String() {
		t.Fatalf("after a MAC change: old closed %v, %d speakers, macs %v", eth1.closed.Load(), len(opened), macs)
	}
	ls.apply(map[netip.Addr]l2.Owned{vip: {Gen: 1, Links: []string{"ARP/eth1"}}}, nil)
	if got := opened[2].sets; len(got) == 0 || !slices.Equal(got[len(got)-1], []netip.Addr{vip}) {
		t.Fatalf("the reopened speaker was told %v", got)
	}

	// Deleted and re-created: a new index.
	ifaces[1].Index = 7
	ls.sync(ctx, []string{"ARP/", "ARP/eth1"})
	if !opened[2].wasClosed() || len(opened) != 4 || opened[3].ifindex != 7 {
		t.Fatalf("after re-creation: %d speakers, last on index %d", len(opened), opened[len(opened)-1].ifindex)
	}

	// Carrier lost on eth1: it cannot be used; on eth0 (the primary): the node is cut off.
	ifaces[1].Flags = net.FlagUp
	if cannot, _, primary := ls.sync(ctx, []string{"ARP/", "ARP/eth1"}); !slices.Equal(cannot, []string{"ARP/eth1"}) || !primary {
		t.Fatalf("eth1 without carrier: cannot %v, primary %v", cannot, primary)
	}
	ifaces[0].Flags = 0
	if _, _, primary := ls.sync(ctx, []string{"ARP/"}); primary {
		t.Fatal("eth0 down, yet the primary link is up")
	}

	// A speaker that cannot open makes its link unusable, and the link is no longer wanted:
	// its speaker is closed.
	ifaces[0].Flags = up
	failOpen["eth0"] = true
	ls.closeAll()
	ls.byName = map[string]*link{}
	if cannot, _, _ := ls.sync(ctx, []string{"NDP/"}); !slices.Equal(cannot, []string{"NDP/"}) {
		t.Fatalf("a speaker that cannot open: cannot %v", cannot)
	}
}
