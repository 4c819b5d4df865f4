//go:build linux

package labnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The interface names inside the namespaces.
const (
	NodeIf   = "bm0"
	ClientIf = "bm1"
)

var seq atomic.Int64

// Lab is two namespaces, "node" and "client", joined by a veth pair (NodeIf in node, ClientIf in
// client).
type Lab struct {
	Node, Client string
}

// RequirePrivileges fails (never skips) a test that cannot run: CI runs as root with the tools
// that hack/install-deps.sh installs.
func RequirePrivileges(t *testing.T, tools ...string) {
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

// Run runs a command and returns its output, failing the test if it fails.
func Run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// New creates the two namespaces with DAD off, joins them, gives NodeIf nodeAddr and ClientIf
// clientAddr (IPv6 ones without DAD, usable at once) and waits until the link carries traffic:
// for IPv6, until the kernel has set up the addresses and routes. The test's end deletes the
// namespaces, which deletes the pair.
func New(t *testing.T, nodeAddr, clientAddr netip.Prefix) *Lab {
	t.Helper()
	prefix := fmt.Sprintf("bmtest-%d-%d", os.Getpid(), seq.Add(1))
	l := &Lab{Node: prefix + "-node", Client: prefix + "-client"}
	for _, ns := range []string{l.Node, l.Client} {
		Run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("deleting namespace %s: %v\n%s", ns, err, out)
			}
		})
		for _, key := range []string{"net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"} {
			Run(t, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", key+"=0")
		}
		Run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	// Created inside the node namespace, the pair never exists in the host's.
	Run(t, "ip", "-n", l.Node, "link", "add", NodeIf, "type", "veth", "peer", "name", ClientIf, "netns", l.Client)
	l.AddAddr(t, l.Node, NodeIf, nodeAddr)
	l.AddAddr(t, l.Client, ClientIf, clientAddr)
	Run(t, "ip", "-n", l.Node, "link", "set", NodeIf, "up")
	Run(t, "ip", "-n", l.Client, "link", "set", ClientIf, "up")
	waitReady(t, l.Node, NodeIf, nodeAddr)
	waitReady(t, l.Client, ClientIf, clientAddr)
	return l
}

// AddAddr configures p on the kernel's interface in ns; an IPv6 address skips DAD.
func (l *Lab) AddAddr(t *testing.T, ns, ifname string, p netip.Prefix) {
	t.Helper()
	args := []string{"-n", ns, "addr", "add", p.String(), "dev", ifname}
	if p.Addr().Is6() {
		args = append(args, "nodad")
	}
	Run(t, "ip", args...)
}

// waitReady waits until the interface has carrier and, for IPv6, its link-local address, the
// on-link route of prefix and the multicast route. A veth gets carrier asynchronously after
// both ends are up, and the kernel sets up IPv6 after that; until then frames are lost, sending
// fails with "Network is unreachable" and multicast advertisements are dropped (Ip6InNoRoutes).
func waitReady(t *testing.T, ns, ifname string, prefix netip.Prefix) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		link := Run(t, "ip", "-n", ns, "link", "show", "dev", ifname)
		ready := strings.Contains(link, "state UP") && !strings.Contains(link, "NO-CARRIER")
		var addrs, routes string
		if ready && prefix.Addr().Is6() {
			addrs = Run(t, "ip", "-n", ns, "-6", "addr", "show", "dev", ifname)
			routes = Run(t, "ip", "-n", ns, "-6", "route", "show", "table", "all", "dev", ifname)
			ready = strings.Contains(addrs, "inet6 fe80:") && !strings.Contains(addrs, "tentative") &&
				strings.Contains(routes, prefix.Masked().String()) && strings.Contains(routes, "multicast ff00::/8")
		}
		if ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s in %s not ready:\n%s\n%s\n%s", ifname, ns, link, addrs, routes)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// InNetns runs fn on an OS thread that has entered the named namespace. Sockets fn creates stay
// in that namespace after the thread leaves it.
func InNetns(ns string, fn func() error) error {
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

// Runner is a speaker: Run until the context ends, then Close.
type Runner interface {
	Run(ctx context.Context) error
	Close() error
}

// Start runs s until the test ends, then checks that Run returned nil and closes s.
func Start(t *testing.T, s Runner) {
	t.Helper()
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
}

// Listen opens a speaker with open on ifname in namespace ns and runs it until the test ends.
func Listen[S Runner](t *testing.T, ns, ifname string, open func(*net.Interface) (S, error)) S {
	t.Helper()
	var s S
	err := InNetns(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		s, err = open(ifi)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	Start(t, s)
	return s
}

// Neighbour returns the client's neighbour entry for addr, as `ip neigh` prints it.
func (l *Lab) Neighbour(t *testing.T, addr netip.Addr) string {
	t.Helper()
	return strings.TrimSpace(Run(t, "ip", "-n", l.Client, "neigh", "show", addr.String(), "dev", ClientIf))
}

// WaitNeighbour waits until the client's entry for addr has lladdr mac.
func (l *Lab) WaitNeighbour(t *testing.T, addr netip.Addr, mac string) string {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		entry := l.Neighbour(t, addr)
		if strings.Contains(entry, "lladdr "+mac+" ") {
			return entry
		}
		if time.Now().After(deadline) {
			t.Fatalf("client's neighbour entry for %s is %q, want lladdr %s", addr, entry, mac)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Report is the shape of the speakers' Foreign types.
type Report interface {
	~struct {
		Addr     netip.Addr
		MAC      net.HardwareAddr
		Probe    bool
		Announce bool
	}
}

// report is Report's underlying struct.
type report = struct {
	Addr     netip.Addr
	MAC      net.HardwareAddr
	Probe    bool
	Announce bool
}

// Reports returns a channel of reports and the OnForeign callback that fills it without ever
// blocking.
func Reports[T Report]() (<-chan T, func(T)) {
	c := make(chan T, 64)
	return c, func(v T) {
		select {
		case c <- v:
		default:
		}
	}
}

// CheckProbe sends one probe for addr and checks the first report that follows: a claim of
// addr by wantMAC within 2 s that answers the probe (Announce false), or, with wantMAC "",
// nothing within 100 ms (RFC 5227 and RFC 4862 wait a second or more; a host on the same veth
// answers within microseconds).
func CheckProbe[T Report](t *testing.T, probe func(netip.Addr) error, reports <-chan T, addr netip.Addr, wantMAC string) {
	t.Helper()
	for len(reports) > 0 {
		<-reports
	}
	if err := probe(addr); err != nil {
		t.Fatal(err)
	}
	timeout := 2 * time.Second
	if wantMAC == "" {
		timeout = 100 * time.Millisecond
	}
	select {
	case v := <-reports:
		got := report(v)
		if wantMAC == "" || got.Addr != addr || got.MAC.String() != wantMAC || got.Probe || got.Announce {
			t.Errorf("probe of %s: report %+v, want an answer (a claim, not an announcement) from %q", addr, got, wantMAC)
		}
	case <-time.After(timeout):
		if wantMAC != "" {
			t.Errorf("probe of %s: no report within %s, want a claim from %s", addr, timeout, wantMAC)
		}
	}
}
