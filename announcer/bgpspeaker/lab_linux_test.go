//go:build linux

package bgpspeaker_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/bgpspeaker"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/internal/l2engine/labnet"
	"github.com/baremetal-dev/cloud-provider-baremetal/test/frr"
)

// The privileged tests run the real FRR in a network namespace of their own, joined to the
// host's namespace by a veth pair that the test creates: the speaker runs in the test process,
// in the host namespace (GoBGP dials from its own goroutines, so it cannot be confined to a
// namespace by one locked thread), on the pair's host end. Each test gets its own /30 of
// 198.19.0.0/16 and /64 of 2001:db8::/32, which exist only on that pair and inside the router's
// namespace, and deletes the namespace, the pair and FRR (by PID) at its end.

const (
	routerASN = 64500
	nodeASN   = 64512
)

var seq atomic.Int64

type lab struct {
	ns, hostIf       string
	hostV4, routerV4 netip.Addr
	hostV6, routerV6 netip.Addr
	router           *frr.Router
	conf             frr.LabRouter
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// newLab creates the router namespace and the pair, and starts FRR with the lab's router
// configuration, changed by edit.
func newLab(t *testing.T, edit func(*frr.LabRouter)) *lab {
	t.Helper()
	labnet.RequirePrivileges(t, frr.VTYSH, filepath.Join(frr.DaemonDir, "bgpd"))
	n := seq.Add(1)
	idx := (os.Getpid()*7 + int(n)) % 16384
	l := &lab{
		ns:       fmt.Sprintf("bgpt-%d-%d-r", os.Getpid(), n),
		hostIf:   fmt.Sprintf("bgpt%d-%d", os.Getpid()%1000000, n),
		hostV4:   netip.AddrFrom4([4]byte{198, 19, byte(idx / 64), byte(idx%64*4 + 1)}),
		routerV4: netip.AddrFrom4([4]byte{198, 19, byte(idx / 64), byte(idx%64*4 + 2)}),
		hostV6:   netip.MustParseAddr(fmt.Sprintf("2001:db8:1:%x::1", idx)),
		routerV6: netip.MustParseAddr(fmt.Sprintf("2001:db8:1:%x::2", idx)),
	}
	run(t, "ip", "netns", "add", l.ns)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", l.hostIf).Run()
		if out, err := exec.Command("ip", "netns", "del", l.ns).CombinedOutput(); err != nil {
			t.Errorf("deleting namespace %s: %v\n%s", l.ns, err, out)
		}
	})
	run(t, "ip", "netns", "exec", l.ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	run(t, "ip", "-n", l.ns, "link", "set", "lo", "up")
	run(t, "ip", "link", "add", l.hostIf, "type", "veth", "peer", "name", "r0", "netns", l.ns)
	run(t, "ip", "addr", "add", netip.PrefixFrom(l.hostV4, 30).String(), "dev", l.hostIf)
	run(t, "ip", "addr", "add", netip.PrefixFrom(l.hostV6, 64).String(), "dev", l.hostIf, "nodad")
	run(t, "ip", "-n", l.ns, "addr", "add", netip.PrefixFrom(l.routerV4, 30).String(), "dev", "r0")
	run(t, "ip", "-n", l.ns, "addr", "add", netip.PrefixFrom(l.routerV6, 64).String(), "dev", "r0", "nodad")
	run(t, "ip", "link", "set", l.hostIf, "up")
	run(t, "ip", "-n", l.ns, "link", "set", "r0", "up")
	l.conf = frr.LabRouter{
		ASN: routerASN, RouterID: l.routerV4,
		ListenRanges: []netip.Prefix{netip.PrefixFrom(l.hostV4, 30).Masked(), netip.PrefixFrom(l.hostV6, 64).Masked()},
	}
	if edit != nil {
		edit(&l.conf)
	}
	l.startRouter(t)
	return l
}

func (l *lab) startRouter(t *testing.T) {
	t.Helper()
	base, err := frr.PrivateDir("bgpt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := frr.Start(ctx, frr.Config{Namespace: l.ns, Dir: filepath.Join(base, "frr"), BGPD: frr.LabRouterConfig(l.conf)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("bgpd log:\n%s", tailFile(r.LogPath("bgpd")))
		}
	})
	l.router = r
}

func tailFile(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// peer is the router as a Peer over IPv4, or over IPv6 with v6.
func (l *lab) peer(name string, v6 bool) bgpspeaker.Peer {
	p := bgpspeaker.Peer{Name: name, Address: l.routerV4, ASN: routerASN, LocalASN: nodeASN}
	if v6 {
		p.Address = l.routerV6
	}
	return p
}

// startSpeaker runs a speaker until the test ends; logs go to the test log.
func startSpeaker(t *testing.T, cfg bgpspeaker.Config) *bgpspeaker.Speaker {
	t.Helper()
	if !cfg.RouterID.IsValid() {
		cfg.RouterID = netip.MustParseAddr("198.19.255.1")
	}
	cfg.Log = func(msg string, kv ...any) { t.Logf("%s %v", msg, kv) }
	s, err := bgpspeaker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Error(err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

func set(t *testing.T, s *bgpspeaker.Speaker, d bgpspeaker.Desired) bgpspeaker.Problems {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	probs, err := s.Set(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	return probs
}

// waitFor polls cond every 10 ms until it returns "" or timeout passes; it returns the time
// taken, and fails the test with cond's last words.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		why := cond()
		if why == "" {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s: %s", what, timeout, why)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func status(s *bgpspeaker.Speaker, name string) bgpspeaker.PeerStatus {
	for _, st := range s.Status() {
		if st.Name == name {
			return st
		}
	}
	return bgpspeaker.PeerStatus{}
}

func established(s *bgpspeaker.Speaker, name string) func() string {
	return func() string {
		if st := status(s, name); st.State != bgpspeaker.StateEstablished {
			return st.String()
		}
		return ""
	}
}

// rib returns a condition that holds when the router's BGP table has prefix from exactly the
// given next hops (none: the prefix is absent) and its kernel agrees.
func (l *lab) rib(prefix netip.Prefix, nextHops ...netip.Addr) func() string {
	return func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rt, err := l.router.Route(ctx, prefix)
		if len(nextHops) == 0 {
			if !errors.Is(err, frr.ErrNoRoute) {
				return fmt.Sprintf("BGP table has %+v, %v", rt, err)
			}
			if kr, err := frr.KernelNextHops(ctx, l.ns, prefix); !errors.Is(err, frr.ErrNoKernelRoute) {
				return fmt.Sprintf("kernel has %+v, %v", kr, err)
			}
			return ""
		}
		if err != nil {
			return err.Error()
		}
		var got []netip.Addr
		for _, p := range rt.Paths {
			got = append(got, p.NextHops()...)
		}
		if fmt.Sprint(got) != fmt.Sprint(nextHops) {
			return fmt.Sprintf("BGP next hops %v, want %v", got, nextHops)
		}
		kr, err := frr.KernelNextHops(ctx, l.ns, prefix)
		if err != nil {
			return err.Error()
		}
		if fmt.Sprint(kr.NextHops) != fmt.Sprint(nextHops) || kr.Protocol != "bgp" {
			return fmt.Sprintf("kernel route %+v, want next hops %v from bgp", kr, nextHops)
		}
		return ""
	}
}

func (l *lab) route(t *testing.T, prefix netip.Prefix) frr.RIBRoute {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rt, err := l.router.Route(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func ptr(v uint32) *uint32 { return &v }

// from returns a condition that holds when the router has prefix from exactly the sessions with
// the given local addresses of ours (none: the prefix is absent).
func (l *lab) from(prefix netip.Prefix, want ...string) func() string {
	return func() string {
		rt, err := l.router.Route(context.Background(), prefix)
		var got []string
		if err == nil {
			for _, p := range rt.Paths {
				got = append(got, p.Peer.PeerID)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Sprintf("%s from %v, want %v", prefix, got, want)
		}
		return ""
	}
}

// neighbor is what the tests read of the router's `show bgp neighbors <addr> json`.
type neighbor struct {
	State        string `json:"bgpState"`
	MessageStats struct {
		UpdatesRecv int `json:"updatesRecv"`
	} `json:"messageStats"`
	GracefulRestartInfo struct {
		RBit bool `json:"rBit"`
	} `json:"gracefulRestartInfo"`
}

// neighbor returns the router's view of our session from addr.
func (l *lab) neighbor(t *testing.T, addr netip.Addr) neighbor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var m map[string]neighbor
	if err := l.router.JSON(ctx, "show bgp neighbors "+addr.String(), &m); err != nil {
		t.Fatal(err)
	}
	n, ok := m[addr.String()]
	if !ok {
		t.Fatalf("router has no neighbor %s: %v", addr, m)
	}
	return n
}
