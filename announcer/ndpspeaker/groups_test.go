package ndpspeaker

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeSockets opens fake membership sockets that, like a Linux socket under net.core.optmem_max,
// fail with ENOMEM beyond limit groups.
type fakeSockets struct {
	limit   int
	openErr error

	mu     sync.Mutex
	opened []*fakeSocket
}

type fakeSocket struct {
	f      *fakeSockets
	joined map[netip.Addr]bool
	closed bool
}

func (f *fakeSockets) open() (groupSocket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.openErr != nil {
		return nil, f.openErr
	}
	s := &fakeSocket{f: f, joined: map[netip.Addr]bool{}}
	f.opened = append(f.opened, s)
	return s, nil
}

func (s *fakeSocket) JoinGroup(g netip.Addr) error {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	switch {
	case s.closed:
		return net.ErrClosed
	case s.joined[g]:
		return syscall.EADDRINUSE
	case len(s.joined) >= s.f.limit:
		return fmt.Errorf("IPV6_JOIN_GROUP %s: %w", g, syscall.ENOMEM)
	}
	s.joined[g] = true
	return nil
}

func (s *fakeSocket) LeaveGroup(g netip.Addr) error {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if s.closed || !s.joined[g] {
		return syscall.EADDRNOTAVAIL
	}
	delete(s.joined, g)
	return nil
}

func (s *fakeSocket) Close() error {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	s.closed = true
	return nil
}

// open returns the sockets not closed and the groups they hold, checking that no group is
// held twice.
func (f *fakeSockets) state(t *testing.T) (open []int, groups map[netip.Addr]bool) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	groups = map[netip.Addr]bool{}
	for _, s := range f.opened {
		if s.closed {
			continue
		}
		open = append(open, len(s.joined))
		for g := range s.joined {
			if groups[g] {
				t.Errorf("group %s joined on two sockets", g)
			}
			groups[g] = true
		}
	}
	return open, groups
}

// manyVIPs returns n VIPs whose solicited-node groups all differ.
func manyVIPs(n int) []netip.Addr {
	out := make([]netip.Addr, n)
	a := netip.MustParseAddr("2001:db8::1:0")
	for i := range out {
		out[i] = a
		a = a.Next()
	}
	return out
}

// TestOneSocketIsNotEnough shows the fault sharding removes: with the limit of Linux before 6.9
// (about 365 groups a socket), a single socket cannot hold the groups of 2,000 VIPs.
func TestOneSocketIsNotEnough(t *testing.T) {
	f := &fakeSockets{limit: 365}
	sock, _ := f.open()
	h := start(t, quiet())
	h.s.keeper.groups = sock // before any Set: nothing joined yet
	h.s.Set(manyVIPs(2000))
	if st := h.s.Stats(); st.GroupErrors != 2000-365 || len(h.s.Groups()) != 365 {
		t.Errorf("stats = %+v, %d groups", st, len(h.s.Groups()))
	}
}

func TestShardedGroupsScale(t *testing.T) {
	f := &fakeSockets{limit: 365}
	g := newShardedGroups(f.open, nil)
	s, err := New(Config{Interface: &net.Interface{HardwareAddr: ourMAC}}, newFakeConn(), g)
	if err != nil {
		t.Fatal(err)
	}
	vips := manyVIPs(2000)
	s.Set(vips)
	open, groups := f.state(t)
	if st := s.Stats(); st.GroupErrors != 0 || len(s.Groups()) != 2000 || len(groups) != 2000 {
		t.Fatalf("stats = %+v, %d groups, %d on sockets", st, len(s.Groups()), len(groups))
	}
	if len(open) != 10 || g.sockets() != 10 {
		t.Errorf("%d sockets (%d by count) hold %v groups, want 10 of %d", len(open), g.sockets(), open, maxGroupsPerSocket)
	}
	for _, n := range open {
		if n > maxGroupsPerSocket {
			t.Errorf("a socket holds %d groups", n)
		}
	}
	// Shrinking leaves no socket open without a group (the groups are joined and left in map
	// order, so those that stay are spread over the sockets); growing fills the holes before it
	// opens a socket.
	s.Set(vips[:150])
	open, groups = f.state(t)
	if len(groups) != 150 || slices.Contains(open, 0) {
		t.Errorf("after shrinking to 150: sockets %v, %d groups", open, len(groups))
	}
	opened := len(f.opened)
	s.Set(vips[:1000])
	if open, groups := f.state(t); len(groups) != 1000 || len(f.opened) != opened || len(open) > 10 {
		t.Errorf("after growing to 1000: sockets %v, %d groups, %d opened in all", open, len(groups), len(f.opened))
	}
	s.Set(nil)
	if open, _ := f.state(t); len(open) != 0 {
		t.Errorf("sockets %v still open with no VIP", open)
	}
	if st := s.Stats(); st.GroupErrors != 0 {
		t.Errorf("stats = %+v", st)
	}
	s.Set(vips[:10])
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if open, _ := f.state(t); len(open) != 0 {
		t.Errorf("sockets %v open after Close", open)
	}
}

// TestShardedGroupsLearnLowerLimit runs with a kernel limit below maxGroupsPerSocket (a lower
// net.core.optmem_max): a join that fails with ENOMEM moves on to another socket.
func TestShardedGroupsLearnLowerLimit(t *testing.T) {
	f := &fakeSockets{limit: 150}
	g := newShardedGroups(f.open, nil)
	for _, v := range manyVIPs(2000) {
		if err := g.JoinGroup(solicitedNode(v)); err != nil {
			t.Fatal(err)
		}
	}
	if open, groups := f.state(t); len(groups) != 2000 || len(open) != 14 {
		t.Errorf("sockets %v, %d groups; want 14 sockets, 2000 groups", open, len(groups))
	}
}

func TestShardedGroupsErrors(t *testing.T) {
	// No socket can be opened: the join fails, and the speaker retries it.
	f := &fakeSockets{limit: 10, openErr: syscall.EAFNOSUPPORT}
	g := newShardedGroups(f.open, nil)
	if err := g.JoinGroup(vipGroup); !errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Errorf("JoinGroup = %v, want EAFNOSUPPORT", err)
	}
	// A socket that cannot hold even one group is not taken for a full one: no endless opening.
	f = &fakeSockets{limit: 0}
	g = newShardedGroups(f.open, nil)
	if err := g.JoinGroup(vipGroup); !errors.Is(err, syscall.ENOMEM) {
		t.Errorf("JoinGroup = %v, want ENOMEM", err)
	}
	if open, _ := f.state(t); len(open) != 0 || len(f.opened) != 1 {
		t.Errorf("%d sockets opened, %v open; want 1 opened and closed", len(f.opened), open)
	}
	if err := g.LeaveGroup(vipGroup); err == nil {
		t.Error("leaving a group never joined succeeded")
	}
	released := false
	g = newShardedGroups(f.open, func() error { released = true; return nil })
	if err := g.Close(); err != nil || !released {
		t.Errorf("Close = %v, released %v", err, released)
	}
}

// fakeGroups records joins and leaves; fail makes them fail.
type fakeGroups struct {
	mu     sync.Mutex
	joined map[netip.Addr]int
	log    []string
	fail   error
	closed bool
}

func newFakeGroups() *fakeGroups { return &fakeGroups{joined: map[netip.Addr]int{}} }

func (g *fakeGroups) JoinGroup(a netip.Addr) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fail != nil {
		return g.fail
	}
	g.joined[a]++
	g.log = append(g.log, "join "+a.String())
	return nil
}

func (g *fakeGroups) LeaveGroup(a netip.Addr) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fail != nil {
		return g.fail
	}
	if g.joined[a] == 0 {
		return errors.New("not joined")
	}
	g.joined[a]--
	if g.joined[a] == 0 {
		delete(g.joined, a)
	}
	g.log = append(g.log, "leave "+a.String())
	return nil
}

func (g *fakeGroups) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	return nil
}

func (g *fakeGroups) state() map[netip.Addr]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[netip.Addr]int{}
	for k, v := range g.joined {
		out[k] = v
	}
	return out
}

func (g *fakeGroups) setFail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fail = err
}

func TestGroups(t *testing.T) {
	h := start(t, quiet())
	// 2001:db8::100 and 2001:db8:1::100 share a solicited-node group.
	shared := netip.MustParseAddr("2001:db8:1::100")
	otherGroup, _ := group(otherVIP)

	h.s.Set([]netip.Addr{vip, shared, otherVIP})
	want := map[netip.Addr]int{vipGroup: 1, otherGroup: 1}
	if diff := cmp.Diff(want, h.groups.state(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
	h.s.Set([]netip.Addr{shared})
	want = map[netip.Addr]int{vipGroup: 1}
	if diff := cmp.Diff(want, h.groups.state(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("groups after removing two (-want +got):\n%s", diff)
	}
	h.s.Set(nil)
	if got := h.groups.state(); len(got) != 0 {
		t.Errorf("groups after removing all = %v", got)
	}
	if st := h.s.Stats(); st.GroupErrors != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestGroupFailuresAreRetried(t *testing.T) {
	h := start(t, quiet())
	h.groups.setFail(syscall.ENOBUFS)
	h.s.Set([]netip.Addr{vip})
	h.Expect(goldenUnsolicited)
	// Answered although the join failed (a unicast solicitation still arrives).
	h.conn.In <- ipv6Frame(ourMAC, peerMAC, peerLL, vip, 255, nsBody(vip, peerMAC))
	h.Expect(goldenReply)
	if st := h.s.Stats(); st.GroupErrors != 1 || len(h.s.Groups()) != 0 {
		t.Fatalf("stats = %+v, groups %v", st, h.s.Groups())
	}
	h.groups.setFail(nil)
	deadline := time.Now().Add(3 * groupRetry)
	for len(h.groups.state()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the failed join was not retried")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := h.s.Groups(); !slices.Equal(got, []netip.Addr{vipGroup}) {
		t.Errorf("Groups() = %v", got)
	}
}
