//go:build linux

package ndpspeaker_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/internal/l2engine/labnet"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/ndpspeaker"
)

// TestLabProbe probes from a speaker in the client namespace: an address owned by the node's
// speaker, an address nobody uses and an address configured on the node's kernel.
func TestLabProbe(t *testing.T) {
	requirePrivileges(t)
	l := newLab(t)
	owner := l.startSpeaker(t)
	ownerMAC := owner.HardwareAddr().String()
	owner.Set([]netip.Addr{labVIP})
	waitGratuitous(t, owner, ndpspeaker.DefaultBurstCount)

	reports, onForeign := labnet.Reports[ndpspeaker.Foreign]()
	prober := startSpeakerIn(t, l.Client, clientIf, ndpspeaker.Config{OnForeign: onForeign})
	kernelAddr, nobody := netip.MustParseAddr("2001:db8::150"), netip.MustParseAddr("2001:db8::200")
	l.AddAddr(t, l.Node, nodeIf, netip.PrefixFrom(kernelAddr, 128))
	prober.Watch([]netip.Addr{labVIP, kernelAddr, nobody})

	probe := func(t *testing.T, addr netip.Addr, wantMAC string) {
		t.Helper()
		labnet.CheckProbe(t, prober.Probe, reports, addr, wantMAC)
	}
	t.Run("owned by a speaker", func(t *testing.T) { probe(t, labVIP, ownerMAC) })
	t.Run("owned by nobody", func(t *testing.T) { probe(t, nobody, "") })
	// The node's kernel defends its own address (ndisc_recv_ns: a solicitation from :: for a
	// non-tentative address gets an advertisement to ff02::1), with the same MAC, since it is the
	// same interface.
	t.Run("configured on the kernel", func(t *testing.T) { probe(t, kernelAddr, ownerMAC) })

	if st := prober.Stats(); st.ProbesSent != 3 || st.SendErrors != 0 || st.RepliesSent != 0 || st.GratuitousSent != 0 || st.GroupErrors != 0 {
		t.Errorf("prober stats = %+v", st)
	}
	// The owner saw one probe of its VIP (reported, defended) and no conflict: a probe claims
	// nothing.
	if st := owner.Stats(); st.ForeignSeen != 1 || st.Conflicts != 0 || st.RepliesSent != 1 {
		t.Errorf("owner stats = %+v, want one foreign probe, one defence and no conflict", st)
	}
}

const (
	optmemMax = "/proc/sys/net/core/optmem_max"
	// oldOptmemMax is the default net.core.optmem_max before Linux 6.9 (raised to 128 KiB then),
	// which holds about 365 IPv6 memberships per socket.
	oldOptmemMax = "20480"
	manyVIPs     = 2000
)

// TestLabManyGroups owns 2,000 IPv6 VIPs on one speaker under the old default
// net.core.optmem_max and checks that the kernel lists the solicited-node group of every one.
// The sysctl is per network namespace since Linux 6.9: there, the test lowers it inside the node
// namespace only, and first shows that one socket cannot hold the groups. On an older kernel it
// is global; the test does not touch the host's value and relies on the fake sockets of the unit
// tests (TestOneSocketIsNotEnough, TestShardedGroupsScale) for the limit itself.
func TestLabManyGroups(t *testing.T) {
	requirePrivileges(t)
	l := newLab(t)
	host, err := os.ReadFile(optmemMax)
	if err != nil {
		t.Fatal(err)
	}
	// A sysctl that is not per namespace is not visible inside one.
	perNetns := exec.Command("ip", "netns", "exec", l.Node, "test", "-e", optmemMax).Run() == nil
	if perNetns {
		run(t, "ip", "netns", "exec", l.Node, "sysctl", "-q", "-w", "net.core.optmem_max="+oldOptmemMax)
		if now, _ := os.ReadFile(optmemMax); string(now) != string(host) {
			_ = os.WriteFile(optmemMax, host, 0o644)
			t.Fatalf("setting optmem_max in a namespace changed the host's value from %s to %s", host, now)
		}
		if n := joinsOnOneSocket(t, l.Node, manyVIPs); n >= manyVIPs {
			t.Fatalf("one socket joined all %d groups: the limit is not in force", n)
		} else {
			t.Logf("with optmem_max %s, one socket holds %d groups", oldOptmemMax, n)
		}
	} else {
		t.Logf("net.core.optmem_max is global on this kernel; testing with the host's value %s", strings.TrimSpace(string(host)))
	}

	s := startSpeakerIn(t, l.Node, nodeIf, ndpspeaker.Config{BurstCount: 1})
	vips := make([]netip.Addr, manyVIPs)
	want := map[string]bool{}
	a := netip.MustParseAddr("2001:db8::1:0")
	for i := range vips {
		vips[i] = a
		b := a.As16()
		want[netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 11: 1, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]}).String()] = true
		a = a.Next()
	}
	s.Set(vips)
	if st := s.Stats(); st.GroupErrors != 0 || len(s.Groups()) != manyVIPs {
		t.Fatalf("stats = %+v, %d groups joined", st, len(s.Groups()))
	}
	got := 0
	for _, g := range l.nodeGroups(t) {
		if want[g] {
			got++
		}
	}
	if got != manyVIPs {
		t.Errorf("the kernel lists %d of the %d solicited-node groups", got, manyVIPs)
	}

	// Shrinking leaves the groups, and closes the sockets that held them.
	s.Set(vips[:1])
	groups := l.nodeGroups(t)
	got = 0
	for _, g := range groups {
		if want[g] {
			got++
		}
	}
	if st := s.Stats(); got != 1 || st.GroupErrors != 0 {
		t.Errorf("after shrinking to one VIP: the kernel lists %d of its groups, stats %+v", got, st)
	}
}

// joinsOnOneSocket joins up to n solicited-node groups on one socket in ns and returns how many
// it could join before ENOMEM.
func joinsOnOneSocket(t *testing.T, ns string, n int) int {
	t.Helper()
	joined := 0
	err := inNetns(ns, func() error {
		ifi, err := net.InterfaceByName(nodeIf)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for ; joined < n; joined++ {
			g := [16]byte{0: 0xff, 1: 0x02, 11: 1, 12: 0xff, 13: 0x0f, 14: byte(joined >> 8), 15: byte(joined)}
			err := unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, &unix.IPv6Mreq{Multiaddr: g, Interface: uint32(ifi.Index)})
			if errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.ENOBUFS) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("joining group %d: %w", joined, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return joined
}

// TestLabTakeoverSeen: a speaker in the client namespace that watches a VIP sees each unsolicited
// advertisement of the node speaker's takeover burst as an announcement of the VIP by the node's
// MAC.
func TestLabTakeoverSeen(t *testing.T) {
	requirePrivileges(t)
	l := newLab(t)
	owner := l.startSpeaker(t)
	ownerMAC := owner.HardwareAddr().String()
	reports, onForeign := labnet.Reports[ndpspeaker.Foreign]()
	watcher := startSpeakerIn(t, l.Client, clientIf, ndpspeaker.Config{OnForeign: onForeign})
	watcher.Watch([]netip.Addr{labVIP})

	owner.Set([]netip.Addr{labVIP})
	waitGratuitous(t, owner, ndpspeaker.DefaultBurstCount)
	got := 0
	timeout := time.After(2 * time.Second)
	for got < ndpspeaker.DefaultBurstCount {
		select {
		case r := <-reports:
			got++
			if r.Addr != labVIP || r.MAC.String() != ownerMAC || r.Probe || !r.Announce {
				t.Errorf("report %d: %+v, want an announcement of %s by %s", got, r, labVIP, ownerMAC)
			}
		case <-timeout:
			t.Fatalf("%d reports of the takeover burst within 2 s, want %d", got, ndpspeaker.DefaultBurstCount)
		}
	}
	select {
	case r := <-reports:
		t.Errorf("report beyond the burst: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
	if st := watcher.Stats(); st.ForeignSeen != ndpspeaker.DefaultBurstCount || st.Conflicts != 0 || st.RepliesSent != 0 || st.GratuitousSent != 0 {
		t.Errorf("watcher stats = %+v, want %d foreign claims and nothing sent", st, ndpspeaker.DefaultBurstCount)
	}
}
