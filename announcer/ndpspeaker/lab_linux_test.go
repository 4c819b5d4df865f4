//go:build linux

package ndpspeaker_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/internal/l2engine/labnet"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/ndpspeaker"
)

// The privileged tests build a two-host LAN out of network namespaces (labnet): "node" runs the
// speaker on real sockets, "client" uses the real ndisc6 and the real kernel neighbour cache, or
// a second speaker that probes. Addresses come only from 2001:db8::/32 and exist only inside
// these namespaces, which the test creates and deletes (with their veth pair) itself. DAD is off
// in both, so that addresses are usable at once.

const (
	nodeIf   = labnet.NodeIf
	clientIf = labnet.ClientIf
)

var (
	nodeAddr   = netip.MustParsePrefix("2001:db8::1/64")
	clientAddr = netip.MustParsePrefix("2001:db8::2/64")
	labVIP     = netip.MustParseAddr("2001:db8::100")
	labOther   = netip.MustParseAddr("2001:db8::101")
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
func (l *lab) startSpeaker(t *testing.T) *ndpspeaker.Speaker {
	t.Helper()
	return startSpeakerIn(t, l.Node, nodeIf, ndpspeaker.Config{BurstInterval: 20 * time.Millisecond})
}

// startSpeakerIn opens a real speaker on ifname in namespace ns and runs it until the test ends.
func startSpeakerIn(t *testing.T, ns, ifname string, cfg ndpspeaker.Config) *ndpspeaker.Speaker {
	t.Helper()
	return labnet.Listen(t, ns, ifname, func(ifi *net.Interface) (*ndpspeaker.Speaker, error) {
		cfg.Interface = ifi
		return ndpspeaker.Listen(cfg)
	})
}

var ndiscReply = regexp.MustCompile(`(?m)^Target link-layer address: ([0-9A-Fa-f:]{17})`)

// ndisc6 runs the real ndisc6 in the client namespace and returns the MACs that answered. With
// multiple, it waits for and prints every answer to one solicitation, instead of the first.
func (l *lab) ndisc6(t *testing.T, target netip.Addr, multiple bool) (macs []string, exit int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := []string{"netns", "exec", l.Client, "ndisc6", "-n", "-1", "-r", "3", "-w", "300", target.String(), clientIf}
	if multiple {
		args = []string{"netns", "exec", l.Client, "ndisc6", "-n", "-m", "-r", "1", "-w", "500", target.String(), clientIf}
	}
	cmd := exec.CommandContext(ctx, "ip", args...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("ndisc6 %s did not finish: %s", target, out)
	}
	if err != nil {
		if exitErr := (*exec.ExitError)(nil); !errors.As(err, &exitErr) {
			t.Fatalf("ndisc6 %s: %v", target, err)
		}
	}
	for _, m := range ndiscReply.FindAllStringSubmatch(string(out), -1) {
		macs = append(macs, strings.ToLower(m[1]))
	}
	t.Logf("ndisc6 %s (exit %d):\n%s", target, cmd.ProcessState.ExitCode(), out)
	return macs, cmd.ProcessState.ExitCode()
}

// nodeGroups returns the IPv6 multicast groups of the node's interface, as the kernel reports
// them.
func (l *lab) nodeGroups(t *testing.T) []string {
	t.Helper()
	var groups []string
	for _, line := range strings.Split(run(t, "ip", "-n", l.Node, "-6", "maddr", "show", "dev", nodeIf), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "inet6" {
			groups = append(groups, f[1])
		}
	}
	return groups
}

func TestLabNDP(t *testing.T) {
	requirePrivileges(t, "ndisc6")
	l := newLab(t)
	s := l.startSpeaker(t)
	mac := s.HardwareAddr().String()
	s.Set([]netip.Addr{labVIP})
	// Let the takeover burst end, so that the tools see answers only.
	waitGratuitous(t, s, ndpspeaker.DefaultBurstCount)

	t.Run("solicited-node group joined", func(t *testing.T) {
		if groups := l.nodeGroups(t); !slices.Contains(groups, "ff02::1:ff00:100") {
			t.Errorf("node's groups %v lack ff02::1:ff00:100", groups)
		}
	})

	t.Run("ndisc6 gets exactly our MAC", func(t *testing.T) {
		macs, exit := l.ndisc6(t, labVIP, false)
		if exit != 0 || len(macs) != 1 || macs[0] != mac {
			t.Fatalf("ndisc6 %s: exit %d, answers from %v, want exit 0 and %s", labVIP, exit, macs, mac)
		}
		// Every answer to one solicitation: ours only.
		macs, _ = l.ndisc6(t, labVIP, true)
		if len(macs) != 1 || macs[0] != mac {
			t.Fatalf("ndisc6 -m %s: answers from %v, want only %s", labVIP, macs, mac)
		}
	})

	t.Run("no answer for an address not owned", func(t *testing.T) {
		for _, addr := range []netip.Addr{labOther, netip.MustParseAddr("2001:db8::200")} {
			if macs, exit := l.ndisc6(t, addr, false); exit == 0 || len(macs) != 0 {
				t.Errorf("ndisc6 %s: exit %d, answers from %v, want none", addr, exit, macs)
			}
		}
	})

	t.Run("kernel resolution", func(t *testing.T) {
		// The client's own kernel resolves the VIP through our solicited advertisement (sent from
		// the VIP) in answer to a solicitation from the kernel, not from a tool.
		run(t, "ip", "-n", l.Client, "-6", "neigh", "flush", "dev", clientIf)
		err := inNetns(l.Client, func() error {
			c, err := net.Dial("udp6", netip.AddrPortFrom(labVIP, 9).String())
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

	t.Run("unsolicited advertisement on takeover updates the client's cache", func(t *testing.T) {
		s.Set(nil)
		run(t, "ip", "-n", l.Client, "-6", "neigh", "replace", labVIP.String(), "lladdr", staleMAC, "dev", clientIf, "nud", "stale")
		if entry := l.Neighbour(t, labVIP); !strings.Contains(entry, staleMAC) {
			t.Fatalf("seeded entry = %q", entry)
		}
		before := s.Stats().GratuitousSent
		s.Set([]netip.Addr{labVIP})
		t.Logf("after takeover: %s", l.WaitNeighbour(t, labVIP, mac))
		if got := s.Stats().GratuitousSent; got == before {
			t.Error("no unsolicited advertisement counted")
		}
	})

	t.Run("removed VIP is not answered and its group is left", func(t *testing.T) {
		s.Set([]netip.Addr{labOther})
		if macs, exit := l.ndisc6(t, labVIP, false); exit == 0 || len(macs) != 0 {
			t.Errorf("ndisc6 %s after removal: exit %d, answers from %v, want none", labVIP, exit, macs)
		}
		if macs, exit := l.ndisc6(t, labOther, false); exit != 0 || len(macs) != 1 || macs[0] != mac {
			t.Errorf("ndisc6 %s: exit %d, answers from %v, want %s", labOther, exit, macs, mac)
		}
		groups := l.nodeGroups(t)
		if slices.Contains(groups, "ff02::1:ff00:100") || !slices.Contains(groups, "ff02::1:ff00:101") {
			t.Errorf("node's groups = %v, want ff02::1:ff00:101 and not ff02::1:ff00:100", groups)
		}
	})

	st := s.Stats()
	t.Logf("stats: %+v", st)
	if st.Malformed != 0 || st.SendErrors != 0 || st.ReadErrors != 0 || st.GroupErrors != 0 {
		t.Errorf("stats = %+v, want no malformed frames or errors", st)
	}
}

// waitGratuitous waits until the speaker has sent n unsolicited advertisements in all.
func waitGratuitous(t *testing.T, s *ndpspeaker.Speaker, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().GratuitousSent < n {
		if time.Now().After(deadline) {
			t.Fatalf("stats = %+v, want %d unsolicited advertisements", s.Stats(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
