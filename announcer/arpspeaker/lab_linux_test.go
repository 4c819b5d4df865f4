//go:build linux

package arpspeaker_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/arpspeaker"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/internal/l2engine/labnet"
)

// The privileged tests build a two-host LAN out of network namespaces (labnet): "node" runs the
// speaker on a real AF_PACKET socket, "client" uses the real arping and the real kernel neighbour
// cache, or a second speaker that probes. Addresses come only from 198.18.0.0/15 and exist only
// inside these namespaces, which the test creates and deletes (with their veth pair) itself.

const (
	nodeIf   = labnet.NodeIf
	clientIf = labnet.ClientIf
)

var (
	nodeAddr   = netip.MustParsePrefix("198.18.0.1/24")
	clientAddr = netip.MustParsePrefix("198.18.0.2/24")
	labVIP     = netip.MustParseAddr("198.18.0.100")
	labOther   = netip.MustParseAddr("198.18.0.101")
	staleMAC   = "02:00:00:00:00:99"
)

type lab struct{ *labnet.Lab }

var (
	requirePrivileges = labnet.RequirePrivileges
	run               = labnet.Run
	inNetns           = labnet.InNetns
)

func newLab(t *testing.T) *lab { return &lab{labnet.New(t, nodeAddr, clientAddr)} }

// startSpeaker opens a real speaker on the node's interface and runs it until the test ends.
func (l *lab) startSpeaker(t *testing.T) *arpspeaker.Speaker {
	t.Helper()
	return startSpeakerIn(t, l.Node, nodeIf, arpspeaker.Config{BurstInterval: 20 * time.Millisecond})
}

// startSpeakerIn opens a real speaker on ifname in namespace ns and runs it until the test ends.
func startSpeakerIn(t *testing.T, ns, ifname string, cfg arpspeaker.Config) *arpspeaker.Speaker {
	t.Helper()
	return labnet.Listen(t, ns, ifname, func(ifi *net.Interface) (*arpspeaker.Speaker, error) {
		cfg.Interface = ifi
		return arpspeaker.Listen(cfg)
	})
}

var arpingReply = regexp.MustCompile(`bytes from ([0-9a-fA-F:]{17}) \(([0-9.]+)\)`)

// arping runs the real arping in the client namespace and returns the MACs that answered.
func (l *lab) arping(t *testing.T, target netip.Addr) (macs []string, exit int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.Client,
		"arping", "-c", "3", "-W", "0.2", "-i", clientIf, target.String())
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("arping %s did not finish: %s", target, out)
	}
	if err != nil {
		if exitErr := (*exec.ExitError)(nil); !errors.As(err, &exitErr) {
			t.Fatalf("arping %s: %v", target, err)
		}
	}
	for _, m := range arpingReply.FindAllStringSubmatch(string(out), -1) {
		if m[2] != target.String() {
			t.Errorf("arping %s: reply for %s:\n%s", target, m[2], out)
		}
		macs = append(macs, strings.ToLower(m[1]))
	}
	t.Logf("arping %s (exit %d):\n%s", target, cmd.ProcessState.ExitCode(), out)
	return macs, cmd.ProcessState.ExitCode()
}

func TestLabARP(t *testing.T) {
	requirePrivileges(t, "arping")
	l := newLab(t)
	s := l.startSpeaker(t)
	mac := s.HardwareAddr().String()
	s.Set([]netip.Addr{labVIP})
	// Let the takeover burst end, so that the tools see answers only.
	waitGratuitous(t, s, arpspeaker.DefaultBurstCount)

	t.Run("arping gets exactly our MAC", func(t *testing.T) {
		macs, exit := l.arping(t, labVIP)
		if exit != 0 || len(macs) != 3 {
			t.Fatalf("arping %s: exit %d, %d replies, want exit 0 and 3 replies", labVIP, exit, len(macs))
		}
		for _, m := range macs {
			if m != mac {
				t.Errorf("reply from %s, want only %s", m, mac)
			}
		}
	})

	t.Run("no answer for an address not owned", func(t *testing.T) {
		for _, addr := range []netip.Addr{labOther, netip.MustParseAddr("198.18.0.200")} {
			if macs, exit := l.arping(t, addr); exit == 0 || len(macs) != 0 {
				t.Errorf("arping %s: exit %d, replies from %v, want none", addr, exit, macs)
			}
		}
	})

	t.Run("kernel resolution", func(t *testing.T) {
		// The client's own kernel resolves the VIP through our reply (a real ARP request from the
		// kernel, not from a tool).
		run(t, "ip", "-n", l.Client, "neigh", "flush", "dev", clientIf)
		err := inNetns(l.Client, func() error {
			c, err := net.Dial("udp4", netip.AddrPortFrom(labVIP, 9).String())
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("x"))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		entry := l.WaitNeighbour(t, labVIP, mac)
		if !strings.Contains(entry, "REACHABLE") {
			t.Errorf("neighbour entry %q, want REACHABLE", entry)
		}
	})

	t.Run("gratuitous ARP on takeover updates the client's cache", func(t *testing.T) {
		s.Set(nil)
		run(t, "ip", "-n", l.Client, "neigh", "replace", labVIP.String(), "lladdr", staleMAC, "dev", clientIf, "nud", "stale")
		if entry := l.Neighbour(t, labVIP); !strings.Contains(entry, staleMAC) {
			t.Fatalf("seeded entry = %q", entry)
		}
		before := s.Stats().GratuitousSent
		s.Set([]netip.Addr{labVIP})
		t.Logf("after takeover: %s", l.WaitNeighbour(t, labVIP, mac))
		if got := s.Stats().GratuitousSent; got == before {
			t.Error("no gratuitous ARP counted")
		}
	})

	t.Run("removed VIP is not answered", func(t *testing.T) {
		s.Set([]netip.Addr{labOther})
		if macs, exit := l.arping(t, labVIP); exit == 0 || len(macs) != 0 {
			t.Errorf("arping %s after removal: exit %d, replies from %v, want none", labVIP, exit, macs)
		}
		if macs, exit := l.arping(t, labOther); exit != 0 || len(macs) == 0 || macs[0] != mac {
			t.Errorf("arping %s: exit %d, replies from %v, want %s", labOther, exit, macs, mac)
		}
	})

	st := s.Stats()
	t.Logf("stats: %+v", st)
	if st.Malformed != 0 || st.SendErrors != 0 || st.ReadErrors != 0 {
		t.Errorf("stats = %+v, want no malformed frames or errors", st)
	}
}

// waitGratuitous waits until the speaker has sent n unsolicited gratuitous ARPs in all.
func waitGratuitous(t *testing.T, s *arpspeaker.Speaker, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().GratuitousSent < n {
		if time.Now().After(deadline) {
			t.Fatalf("stats = %+v, want %d unsolicited gratuitous ARPs", s.Stats(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLabProbe probes from a speaker in the client namespace: an address owned by the node's
// speaker, an address nobody uses and an address configured on the node's kernel.
func TestLabProbe(t *testing.T) {
	requirePrivileges(t)
	l := newLab(t)
	owner := l.startSpeaker(t)
	ownerMAC := owner.HardwareAddr().String()
	owner.Set([]netip.Addr{labVIP})
	waitGratuitous(t, owner, arpspeaker.DefaultBurstCount)

	reports, onForeign := labnet.Reports[arpspeaker.Foreign]()
	prober := startSpeakerIn(t, l.Client, clientIf, arpspeaker.Config{OnForeign: onForeign})
	kernelAddr, nobody := netip.MustParseAddr("198.18.0.150"), netip.MustParseAddr("198.18.0.200")
	l.AddAddr(t, l.Node, nodeIf, netip.PrefixFrom(kernelAddr, 32))
	prober.Watch([]netip.Addr{labVIP, kernelAddr, nobody})

	probe := func(t *testing.T, addr netip.Addr, wantMAC string) {
		t.Helper()
		labnet.CheckProbe(t, prober.Probe, reports, addr, wantMAC)
	}
	t.Run("owned by a speaker", func(t *testing.T) { probe(t, labVIP, ownerMAC) })
	t.Run("owned by nobody", func(t *testing.T) { probe(t, nobody, "") })
	// The node's kernel answers a probe for its own address (arp_process: sender 0.0.0.0 and a
	// local target), with the same MAC, since it is the same interface.
	t.Run("configured on the kernel", func(t *testing.T) { probe(t, kernelAddr, ownerMAC) })

	if st := prober.Stats(); st.ProbesSent != 3 || st.SendErrors != 0 || st.RepliesSent != 0 || st.GratuitousSent != 0 {
		t.Errorf("prober stats = %+v", st)
	}
	// The owner saw one probe of its VIP (reported, answered) and no conflict: a probe claims
	// nothing.
	if st := owner.Stats(); st.ForeignSeen != 1 || st.Conflicts != 0 {
		t.Errorf("owner stats = %+v, want one foreign probe and no conflict", st)
	}
}

// TestLabTakeoverSeen: a speaker in the client namespace that watches a VIP sees each gratuitous
// ARP of the node speaker's takeover burst as an announcement of the VIP by the node's MAC.
func TestLabTakeoverSeen(t *testing.T) {
	requirePrivileges(t)
	l := newLab(t)
	owner := l.startSpeaker(t)
	ownerMAC := owner.HardwareAddr().String()
	reports, onForeign := labnet.Reports[arpspeaker.Foreign]()
	watcher := startSpeakerIn(t, l.Client, clientIf, arpspeaker.Config{OnForeign: onForeign})
	watcher.Watch([]netip.Addr{labVIP})

	owner.Set([]netip.Addr{labVIP})
	waitGratuitous(t, owner, arpspeaker.DefaultBurstCount)
	got := 0
	timeout := time.After(2 * time.Second)
	for got < arpspeaker.DefaultBurstCount {
		select {
		case r := <-reports:
			got++
			if r.Addr != labVIP || r.MAC.String() != ownerMAC || r.Probe || !r.Announce {
				t.Errorf("report %d: %+v, want an announcement of %s by %s", got, r, labVIP, ownerMAC)
			}
		case <-timeout:
			t.Fatalf("%d reports of the takeover burst within 2 s, want %d", got, arpspeaker.DefaultBurstCount)
		}
	}
	select {
	case r := <-reports:
		t.Errorf("report beyond the burst: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
	if st := watcher.Stats(); st.ForeignSeen != arpspeaker.DefaultBurstCount || st.Conflicts != 0 || st.RepliesSent != 0 || st.GratuitousSent != 0 {
		t.Errorf("watcher stats = %+v, want %d foreign claims and nothing sent", st, arpspeaker.DefaultBurstCount)
	}
}
