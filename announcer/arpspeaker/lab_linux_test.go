//go:build linux

package arpspeaker_test

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
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/arpspeaker"
)

// The privileged tests build a two-host LAN out of network namespaces: "node" runs the speaker
// on a real AF_PACKET socket, "client" uses the real arping and the real kernel neighbour cache.
// Addresses come only from 198.18.0.0/15 and exist only inside these namespaces, which the test
// creates and deletes (with their veth pair) itself.

const (
	nodeIf   = "bm0"
	clientIf = "bm1"
)

var (
	nodeAddr   = netip.MustParsePrefix("198.18.0.1/24")
	clientAddr = netip.MustParsePrefix("198.18.0.2/24")
	labVIP     = netip.MustParseAddr("198.18.0.100")
	labOther   = netip.MustParseAddr("198.18.0.101")
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
	run(t, "ip", "-n", l.node, "addr", "add", nodeAddr.String(), "dev", nodeIf)
	run(t, "ip", "-n", l.client, "addr", "add", clientAddr.String(), "dev", clientIf)
	run(t, "ip", "-n", l.node, "link", "set", nodeIf, "up")
	run(t, "ip", "-n", l.client, "link", "set", clientIf, "up")
	waitCarrier(t, l.node, nodeIf)
	waitCarrier(t, l.client, clientIf)
	return l
}

// waitCarrier waits until the interface has carrier: a veth gets it asynchronously after both
// ends are up, and frames sent before are lost.
func waitCarrier(t *testing.T, ns, ifname string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		link := run(t, "ip", "-n", ns, "link", "show", "dev", ifname)
		if strings.Contains(link, "state UP") && !strings.Contains(link, "NO-CARRIER") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no carrier on %s in %s:\n%s", ifname, ns, link)
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
func (l *lab) startSpeaker(t *testing.T) *arpspeaker.Speaker {
	t.Helper()
	var s *arpspeaker.Speaker
	err := inNetns(l.node, func() error {
		ifi, err := net.InterfaceByName(nodeIf)
		if err != nil {
			return err
		}
		s, err = arpspeaker.Listen(arpspeaker.Config{Interface: ifi, BurstInterval: 20 * time.Millisecond})
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

var arpingReply = regexp.MustCompile(`bytes from ([0-9a-fA-F:]{17}) \(([0-9.]+)\)`)

// arping runs the real arping in the client namespace and returns the MACs that answered.
func (l *lab) arping(t *testing.T, target netip.Addr) (macs []string, exit int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.client,
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

// neighbour returns the client's neighbour entry for addr, as `ip neigh` prints it.
func (l *lab) neighbour(t *testing.T, addr netip.Addr) string {
	t.Helper()
	return strings.TrimSpace(run(t, "ip", "-n", l.client, "neigh", "show", addr.String(), "dev", clientIf))
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
		run(t, "ip", "-n", l.client, "neigh", "flush", "dev", clientIf)
		err := inNetns(l.client, func() error {
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
		entry := l.waitNeighbour(t, labVIP, mac)
		if !strings.Contains(entry, "REACHABLE") {
			t.Errorf("neighbour entry %q, want REACHABLE", entry)
		}
	})

	t.Run("gratuitous ARP on takeover updates the client's cache", func(t *testing.T) {
		s.Set(nil)
		run(t, "ip", "-n", l.client, "neigh", "replace", labVIP.String(), "lladdr", staleMAC, "dev", clientIf, "nud", "stale")
		if entry := l.neighbour(t, labVIP); !strings.Contains(entry, staleMAC) {
			t.Fatalf("seeded entry = %q", entry)
		}
		before := s.Stats().GratuitousSent
		s.Set([]netip.Addr{labVIP})
		t.Logf("after takeover: %s", l.waitNeighbour(t, labVIP, mac))
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
