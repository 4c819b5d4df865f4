//go:build linux

package ndpspeaker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/ndpspeaker"
)

// The privileged tests build a two-host LAN out of network namespaces: "node" runs the speaker
// on real sockets, "client" uses the real ndisc6 and the real kernel neighbour cache. Addresses
// come only from 2001:db8::/32 and exist only inside these namespaces, which the test creates and
// deletes (with their veth pair) itself. DAD is off in both, so that addresses are usable at once.

const (
	nodeIf   = "bm0"
	clientIf = "bm1"
)

var (
	nodeAddr   = netip.MustParsePrefix("2001:db8::1/64")
	clientAddr = netip.MustParsePrefix("2001:db8::2/64")
	labVIP     = netip.MustParseAddr("2001:db8::100")
	labOther   = netip.MustParseAddr("2001:db8::101")
	staleMAC   = "02:00:00:00:00:99"
)

var labSeq atomic.Int64

type lab struct {
	node, client string
}

// requirePrivileges fails (never skips) a test that cannot run: CI runs as root with the tools
// that hack/install-deps.sh installs.
func requirePrivileges(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test creates network namespaces and raw sockets: run it as root (CI does)")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run hack/install-deps.sh", tool)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newLab creates the two namespaces joined by a veth pair, with DAD off, and deletes them at the
// end of the test.
func newLab(t *testing.T) *lab {
	t.Helper()
	prefix := fmt.Sprintf("bmtest-%d-%d", os.Getpid(), labSeq.Add(1))
	l := &lab{node: prefix + "-node", client: prefix + "-client"}
	for _, ns := range []string{l.node, l.client} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("deleting namespace %s: %v\n%s", ns, err, out)
			}
		})
		for _, key := range []string{"net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"} {
			run(t, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", key+"=0")
		}
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	// Created inside the node namespace, the pair never exists in the host's.
	run(t, "ip", "-n", l.node, "link", "add", nodeIf, "type", "veth", "peer", "name", clientIf, "netns", l.client)
	run(t, "ip", "-n", l.node, "addr", "add", nodeAddr.String(), "dev", nodeIf, "nodad")
	run(t, "ip", "-n", l.client, "addr", "add", clientAddr.String(), "dev", clientIf, "nodad")
	run(t, "ip", "-n", l.node, "link", "set", nodeIf, "up")
	run(t, "ip", "-n", l.client, "link", "set", clientIf, "up")
	l.waitIPv6(t, l.node, nodeIf, nodeAddr)
	l.waitIPv6(t, l.client, clientIf, clientAddr)
	return l
}

// waitIPv6 waits until IPv6 is usable on the interface: it has carrier, its link-local address,
// the on-link route of prefix and the multicast route. The kernel sets these up asynchronously
// after the link comes up; until then sending fails with "Network is unreachable" and multicast
// advertisements are dropped (Ip6InNoRoutes).
func (l *lab) waitIPv6(t *testing.T, ns, ifname string, prefix netip.Prefix) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		addrs := run(t, "ip", "-n", ns, "-6", "addr", "show", "dev", ifname)
		routes := run(t, "ip", "-n", ns, "-6", "route", "show", "table", "all", "dev", ifname)
		if !strings.Contains(addrs, "NO-CARRIER") && strings.Contains(addrs, "inet6 fe80:") &&
			!strings.Contains(addrs, "tentative") && strings.Contains(routes, prefix.Masked().String()) &&
			strings.Contains(routes, "multicast ff00::/8") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("IPv6 not ready on %s in %s:\n%s\n%s", ifname, ns, addrs, routes)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// inNetns runs fn on an OS thread that has entered the named namespace. Sockets fn creates stay
// in that namespace after the thread leaves it.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering namespace %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it ends with this goroutine instead of serving others.
			errc <- fmt.Errorf("leaving namespace %s: %w", ns, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// startSpeaker opens a real speaker on the node's interface and runs it until the test ends.
func (l *lab) startSpeaker(t *testing.T) *ndpspeaker.Speaker {
	t.Helper()
	var s *ndpspeaker.Speaker
	err := inNetns(l.node, func() error {
		ifi, err := net.InterfaceByName(nodeIf)
		if err != nil {
			return err
		}
		s, err = ndpspeaker.Listen(ndpspeaker.Config{Interface: ifi, BurstInterval: 20 * time.Millisecond})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

var ndiscReply = regexp.MustCompile(`(?m)^Target link-layer address: ([0-9A-Fa-f:]{17})`)

// ndisc6 runs the real ndisc6 in the client namespace and returns the MACs that answered. With
// multiple, it waits for and prints every answer to one solicitation, instead of the first.
func (l *lab) ndisc6(t *testing.T, target netip.Addr, multiple bool) (macs []string, exit int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := []string{"netns", "exec", l.client, "ndisc6", "-n", "-1", "-r", "3", "-w", "300", target.String(), clientIf}
	if multiple {
		args = []string{"netns", "exec", l.client, "ndisc6", "-n", "-m", "-r", "1", "-w", "500", target.String(), clientIf}
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

// neighbour returns the client's neighbour entry for addr, as `ip neigh` prints it.
func (l *lab) neighbour(t *testing.T, addr netip.Addr) string {
	t.Helper()
	return strings.TrimSpace(run(t, "ip", "-n", l.client, "-6", "neigh", "show", addr.String(), "dev", clientIf))
}

// waitNeighbour waits until the client's entry for addr has lladdr mac.
func (l *lab) waitNeighbour(t *testing.T, addr netip.Addr, mac string) string {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		entry := l.neighbour(t, addr)
		if strings.Contains(entry, "lladdr "+mac+" ") {
			return entry
		}
		if time.Now().After(deadline) {
			t.Fatalf("client's neighbour entry for %s is %q, want lladdr %s", addr, entry, mac)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// nodeGroups returns the IPv6 multicast groups of the node's interface, as the kernel reports
// them.
func (l *lab) nodeGroups(t *testing.T) []string {
	t.Helper()
	var groups []string
	for _, line := range strings.Split(run(t, "ip", "-n", l.node, "-6", "maddr", "show", "dev", nodeIf), "\n") {
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
		run(t, "ip", "-n", l.client, "-6", "neigh", "flush", "dev", clientIf)
		err := inNetns(l.client, func() error {
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
		entry := l.waitNeighbour(t, labVIP, mac)
		if !strings.Contains(entry, "REACHABLE") {
			t.Errorf("neighbour entry %q, want REACHABLE", entry)
		}
	})

	t.Run("unsolicited advertisement on takeover updates the client's cache", func(t *testing.T) {
		s.Set(nil)
		run(t, "ip", "-n", l.client, "-6", "neigh", "replace", labVIP.String(), "lladdr", staleMAC, "dev", clientIf, "nud", "stale")
		if entry := l.neighbour(t, labVIP); !strings.Contains(entry, staleMAC) {
			t.Fatalf("seeded entry = %q", entry)
		}
		before := s.Stats().GratuitousSent
		s.Set([]netip.Addr{labVIP})
		t.Logf("after takeover: %s", l.waitNeighbour(t, labVIP, mac))
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
