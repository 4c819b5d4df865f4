package ndpspeaker

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/internal/packettest"
)

var (
	ourMAC    = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	peerMAC   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	peerLL    = netip.MustParseAddr("fe80::2")
	vip       = netip.MustParseAddr("2001:db8::100")
	otherVIP  = netip.MustParseAddr("2001:db8::101")
	vipGroup  = netip.MustParseAddr("ff02::1:ff00:100")
	vipGroupM = net.HardwareAddr{0x33, 0x33, 0xff, 0, 0x01, 0}
)

// The bytes on the wire, checked once with tcpdump -vv ("icmp6 sum ok").
var (
	goldenReply = mustHex(`
		020000000002 020000000001 86dd
		60000000 0020 3a ff
		20010db8000000000000000000000100
		fe800000000000000000000000000002
		88 00 b7ad 60000000 20010db8000000000000000000000100
		02 01 020000000001`)
	goldenUnsolicited = mustHex(`
		333300000001 020000000001 86dd
		60000000 0020 3a ff
		20010db8000000000000000000000100
		ff020000000000000000000000000001
		88 00 f72c 20000000 20010db8000000000000000000000100
		02 01 020000000001`)
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// testChecksum computes the ICMPv6 checksum independently of the code under test.
func testChecksum(src, dst netip.Addr, icmp []byte) uint16 {
	ph := make([]byte, 0, 40+len(icmp)+1)
	s, d := src.As16(), dst.As16()
	ph = append(ph, s[:]...)
	ph = append(ph, d[:]...)
	ph = binary.BigEndian.AppendUint32(ph, uint32(len(icmp)))
	ph = append(ph, 0, 0, 0, 58)
	ph = append(ph, icmp...)
	if len(ph)%2 == 1 {
		ph = append(ph, 0)
	}
	var sum uint64
	for i := 0; i < len(ph); i += 2 {
		sum += uint64(binary.BigEndian.Uint16(ph[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// ipv6Frame assembles Ethernet + IPv6 (hop limit hop) + icmp by hand, filling in the checksum.
func ipv6Frame(ethDst, ethSrc net.HardwareAddr, src, dst netip.Addr, hop byte, icmp []byte) []byte {
	icmp = slices.Clone(icmp)
	binary.BigEndian.PutUint16(icmp[2:], 0)
	binary.BigEndian.PutUint16(icmp[2:], testChecksum(src, dst, icmp))
	b := slices.Concat(ethDst, ethSrc, []byte{0x86, 0xdd, 0x60, 0, 0, 0})
	b = binary.BigEndian.AppendUint16(b, uint16(len(icmp)))
	b = append(b, 58, hop)
	s, d := src.As16(), dst.As16()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	return append(b, icmp...)
}

// nsBody is a Neighbor Solicitation for target, with a Source Link-Layer Address option when
// slla is not nil.
func nsBody(target netip.Addr, slla net.HardwareAddr) []byte {
	t16 := target.As16()
	b := append([]byte{135, 0, 0, 0, 0, 0, 0, 0}, t16[:]...)
	if slla != nil {
		b = append(append(b, 1, 1), slla...)
	}
	return b
}

// naBody is a Neighbor Advertisement for target with flags (R 0x80, S 0x40, O 0x20) and a Target
// Link-Layer Address option.
func naBody(target netip.Addr, flags byte, tlla net.HardwareAddr) []byte {
	t16 := target.As16()
	b := append([]byte{136, 0, 0, 0, flags, 0, 0, 0}, t16[:]...)
	return append(append(b, 2, 1), tlla...)
}

func group(a netip.Addr) (netip.Addr, net.HardwareAddr) {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]}),
		net.HardwareAddr{0x33, 0x33, 0xff, b[13], b[14], b[15]}
}

// solicit is the solicitation a neighbour multicasts to resolve target.
func solicit(target netip.Addr) []byte {
	g, gm := group(target)
	return ipv6Frame(gm, peerMAC, peerLL, g, 255, nsBody(target, peerMAC))
}

type harness struct {
	*packettest.Harness
	s      *Speaker
	conn   *fakeConn
	groups *fakeGroups
}

// counts are the counters the harness follows.
func counts(s *Speaker) packettest.Counts {
	return func() (uint64, uint64) {
		st := s.Stats()
		return st.RepliesSent + st.GratuitousSent + st.ProbesSent + st.SendErrors, st.Received
	}
}

// start returns a running Speaker on fakes; the test's end stops it and checks that Run returned
// nil.
func start(t *testing.T, cfg Config) *harness {
	t.Helper()
	if cfg.Interface == nil {
		cfg.Interface = &net.Interface{Index: 7, Name: "eth-test", HardwareAddr: ourMAC}
	}
	conn, groups := newFakeConn(), newFakeGroups()
	s, err := New(cfg, conn, groups)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{Harness: packettest.Start(t, conn, counts(s), s.Run), s: s, conn: conn, groups: groups}
}

// quiet is a Config whose only unsolicited advertisement per VIP is the first one of the burst.
func quiet() Config { return Config{BurstCount: 1, Refresh: -1} }

func TestGolden(t *testing.T) {
	s := &codec{mac: ourMAC}
	if diff := cmp.Diff(goldenReply, s.advertisement(vip, peerMAC, peerLL, true)); diff != "" {
		t.Errorf("solicited advertisement (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(goldenUnsolicited, s.unsolicited(vip)); diff != "" {
		t.Errorf("unsolicited advertisement (-want +got):\n%s", diff)
	}
	// The hand assembler agrees with the golden bytes.
	if diff := cmp.Diff(goldenReply, ipv6Frame(peerMAC, ourMAC, vip, peerLL, 255, naBody(vip, 0x60, ourMAC))); diff != "" {
		t.Errorf("ipv6Frame (-want +got):\n%s", diff)
	}
	if got := solicitedNode(vip); got != vipGroup {
		t.Errorf("solicitedNode(%s) = %s, want %s", vip, got, vipGroup)
	}
	// The checksum of the code under test agrees with the test's.
	for _, f := range [][]byte{goldenReply, goldenUnsolicited, solicit(vip)} {
		src, dst := netip.AddrFrom16([16]byte(f[22:38])), netip.AddrFrom16([16]byte(f[38:54]))
		if c := checksum(src, dst, f[54:]); c != 0 {
			t.Errorf("checksum over a valid message = %#04x, want 0", c)
		}
	}
}

func TestReplyForOwnedVIP(t *testing.T) {
	h := start(t, quiet())
	h.s.Set([]netip.Addr{vip})
	h.Expect(goldenUnsolicited)

	h.conn.In <- solicit(vip)
	got := h.Next()
	if diff := cmp.Diff(goldenReply, got.Frame); diff != "" {
		t.Fatalf("advertisement (-want +got):\n%s", diff)
	}
	if got.Addr == nil || got.Addr.String() != peerMAC.String() {
		t.Errorf("advertisement written to %v, want %s", got.Addr, peerMAC)
	}
	// Neighbour unreachability detection: unicast to the VIP, to our MAC.
	h.conn.In <- ipv6Frame(ourMAC, peerMAC, peerLL, vip, 255, nsBody(vip, peerMAC))
	h.Expect(goldenReply)
	// Without a source link-layer address option, the reply goes to the Ethernet source.
	h.conn.In <- ipv6Frame(ourMAC, peerMAC, peerLL, vip, 255, nsBody(vip, nil))
	h.Expect(goldenReply)
	// From a global address, to that address.
	peerGlobal := netip.MustParseAddr("2001:db8::2")
	h.conn.In <- ipv6Frame(vipGroupM, peerMAC, peerGlobal, vipGroup, 255, nsBody(vip, peerMAC))
	h.Expect(ipv6Frame(peerMAC, ourMAC, vip, peerGlobal, 255, naBody(vip, 0x60, ourMAC)))
	// Ethernet padding after the IPv6 payload is ignored.
	h.conn.In <- append(solicit(vip), 0, 0, 0, 0)
	h.Expect(goldenReply)

	st := h.s.Stats()
	if st.RequestsSeen != 5 || st.RepliesSent != 5 || st.GratuitousSent != 1 || st.Ignored != 0 || st.Malformed != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestDuplicateAddressDetectionIsDefended(t *testing.T) {
	h := start(t, quiet())
	h.s.Set([]netip.Addr{vip})
	h.Expect(goldenUnsolicited)
	h.conn.In <- ipv6Frame(vipGroupM, peerMAC, netip.IPv6Unspecified(), vipGroup, 255, nsBody(vip, nil))
	got := h.Next()
	if diff := cmp.Diff(goldenUnsolicited, got.Frame); diff != "" {
		t.Fatalf("defence (-want +got):\n%s", diff)
	}
	if st := h.s.Stats(); st.RepliesSent != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestNoReplyForNotOwned(t *testing.T) {
	h := start(t, quiet())
	h.s.Set([]netip.Addr{vip})
	h.Expect(goldenUnsolicited)
	h.Feed(
		solicit(otherVIP),
		solicit(netip.MustParseAddr("2001:db8::1")),
		solicit(netip.MustParseAddr("fe80::1")),
		// For the VIP, but sent to another address: not a valid way to ask.
		ipv6Frame(vipGroupM, peerMAC, peerLL, netip.MustParseAddr("ff02::1"), 255, nsBody(vip, peerMAC)),
		ipv6Frame(ourMAC, peerMAC, peerLL, otherVIP, 255, nsBody(vip, peerMAC)),
	)
	h.ExpectNothing(50 * time.Millisecond)
	if st := h.s.Stats(); st.RequestsSeen != 5 || st.Ignored != 5 || st.RepliesSent != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestNoReplyAfterRemoval(t *testing.T) {
	h := start(t, quiet())
	h.s.Set([]netip.Addr{vip, otherVIP})
	for range 2 {
		h.Next()
	}
	h.conn.In <- solicit(vip)
	h.Expect(goldenReply)

	h.s.Set([]netip.Addr{otherVIP})
	h.Feed(solicit(vip))
	h.ExpectNothing(50 * time.Millisecond)

	h.s.Set(nil)
	h.Feed(solicit(vip), solicit(otherVIP))
	h.ExpectNothing(50 * time.Millisecond)
	if st := h.s.Stats(); st.RepliesSent != 1 || st.Ignored != 3 {
		t.Errorf("stats = %+v", st)
	}
}

// TestRemovalIsImmediate floods the speaker with solicitations while the VIP is removed: once Set
// returns, not one more advertisement may be written.
func TestRemovalIsImmediate(t *testing.T) {
	h := start(t, quiet())
	h.s.Set([]netip.Addr{vip})
	h.Expect(goldenUnsolicited)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case h.conn.In <- solicit(vip):
			}
		}
	})
	for h.s.Stats().RepliesSent < 50 {
		time.Sleep(time.Millisecond)
	}
	h.s.Set(nil)
	writesAtRemoval := h.conn.Writes.Load()
	before := h.s.Stats().Received
	for h.s.Stats().Received < before+50 {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if got := h.conn.Writes.Load(); got != writesAtRemoval {
		t.Errorf("%d frames written after Set removed the VIP", got-writesAtRemoval)
	}
}

func TestBurst(t *testing.T) {
	const n, interval = 4, 30 * time.Millisecond
	h := start(t, Config{BurstCount: n, BurstInterval: interval, Refresh: -1})
	h.s.Set([]netip.Addr{vip})
	var times []time.Time
	for range n {
		w := h.Next()
		if diff := cmp.Diff(goldenUnsolicited, w.Frame); diff != "" {
			t.Fatalf("unsolicited advertisement (-want +got):\n%s", diff)
		}
		if w.Addr.String() != allNodesMAC.String() {
			t.Errorf("written to %v, want %s", w.Addr, allNodesMAC)
		}
		times = append(times, w.At)
	}
	h.ExpectNothing(4 * interval)
	if span := times[n-1].Sub(times[0]); span < (n-1)*interval*9/10 {
		t.Errorf("burst of %d took %s, want at least %s", n, span, (n-1)*interval)
	}
	h.s.Set([]netip.Addr{vip, vip})
	h.ExpectNothing(3 * interval)
	h.s.Set(nil)
	h.s.Set([]netip.Addr{vip})
	for range n {
		h.Expect(goldenUnsolicited)
	}
	if st := h.s.Stats(); st.GratuitousSent != 2*n {
		t.Errorf("GratuitousSent = %d, want %d", st.GratuitousSent, 2*n)
	}
}

func TestRefresh(t *testing.T) {
	h := start(t, Config{BurstCount: 1, Refresh: 20 * time.Millisecond})
	h.s.Set([]netip.Addr{vip})
	for range 4 {
		h.Expect(goldenUnsolicited)
	}
	h.s.Set(nil)
	time.Sleep(5 * time.Millisecond)
	for len(h.conn.Out) > 0 {
		<-h.conn.Out
	}
	h.ExpectNothing(100 * time.Millisecond)
}

func TestMalformedFramesAreCountedAndIgnored(t *testing.T) {
	good := solicit(vip)
	mutate := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	longOpt := append(nsBody(vip, nil), 1, 2, 0, 0, 0, 0, 0, 0) // claims 16 bytes, has 8
	malformed := map[string][]byte{
		"empty":                               {},
		"short ethernet header":               good[:13],
		"short IPv6 header":                   good[:14+39],
		"IPv4 version":                        mutate(func(b []byte) []byte { b[14] = 0x45; return b }),
		"payload beyond frame":                good[:len(good)-1],
		"short ICMPv6":                        ipv6Frame(vipGroupM, peerMAC, peerLL, vipGroup, 255, []byte{135, 0, 0, 0, 0, 0, 0, 0})[:14+40+3],
		"hop limit 64":                        ipv6Frame(vipGroupM, peerMAC, peerLL, vipGroup, 64, nsBody(vip, peerMAC)),
		"bad checksum":                        mutate(func(b []byte) []byte { b[56] ^= 0xff; return b }),
		"code 1":                              ipv6Frame(vipGroupM, peerMAC, peerLL, vipGroup, 255, func() []byte { m := nsBody(vip, peerMAC); m[1] = 1; return m }()),
		"truncated solicitation":              ipv6Frame(vipGroupM, peerMAC, peerLL, vipGroup, 255, nsBody(vip, nil)[:23]),
		"option of length 0":                  ipv6Frame(vipGroupM, peerMAC, peerLL, vipGroup, 255, append(nsBody(vip, nil), 1, 0, 0, 0, 0, 0, 0, 0)),
		"option beyond message":               ipv6Frame(vipGroupM, peerMAC, peerLL, vipGroup, 255, longOpt),
		"multicast target":                    ipv6Frame(vipGroupM, peerMAC, peerLL, vipGroup, 255, nsBody(netip.MustParseAddr("ff02::1"), peerMAC)),
		"IPv4-mapped target":                  ipv6Frame(vipGroupM, peerMAC, peerLL, vipGroup, 255, nsBody(netip.MustParseAddr("::ffff:198.18.0.1"), peerMAC)),
		"multicast source":                    ipv6Frame(vipGroupM, peerMAC, netip.MustParseAddr("ff02::2"), vipGroup, 255, nsBody(vip, peerMAC)),
		"multicast source MAC":                ipv6Frame(vipGroupM, vipGroupM, peerLL, vipGroup, 255, nsBody(vip, peerMAC)),
		"multicast source link-layer option":  ipv6Frame(vipGroupM, peerMAC, peerLL, vipGroup, 255, nsBody(vip, vipGroupM)),
		"DAD with a source link-layer option": ipv6Frame(vipGroupM, peerMAC, netip.IPv6Unspecified(), vipGroup, 255, nsBody(vip, peerMAC)),
		"DAD to the VIP itself":               ipv6Frame(ourMAC, peerMAC, netip.IPv6Unspecified(), vip, 255, nsBody(vip, nil)),
		"advertisement hop 1":                 ipv6Frame(ourMAC, peerMAC, otherVIP, peerLL, 1, naBody(otherVIP, 0x60, peerMAC)),
	}
	h := start(t, quiet())
	h.s.Set([]netip.Addr{vip})
	h.Expect(goldenUnsolicited)
	for name, f := range malformed {
		before := h.s.Stats().Malformed
		h.Feed(f)
		if got := h.s.Stats().Malformed; got != before+1 {
			t.Errorf("%s: Malformed went from %d to %d, want +1", name, before, got)
		}
	}
	h.ExpectNothing(50 * time.Millisecond)
	h.conn.In <- good
	h.Expect(goldenReply)
}

func TestIgnored(t *testing.T) {
	other := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x03}
	echo := []byte{128, 0, 0, 0, 0, 1, 0, 1}
	ignored := map[string][]byte{
		"our own solicitation (Ethernet source)":   ipv6Frame(vipGroupM, ourMAC, peerLL, vipGroup, 255, nsBody(vip, peerMAC)),
		"our own solicitation (link-layer option)": ipv6Frame(vipGroupM, peerMAC, peerLL, vipGroup, 255, nsBody(vip, ourMAC)),
		"our own advertisement":                    goldenUnsolicited,
		"unicast to another host":                  ipv6Frame(other, peerMAC, peerLL, vip, 255, nsBody(vip, peerMAC)),
		"echo request":                             ipv6Frame(ourMAC, peerMAC, peerLL, vip, 64, echo),
		"UDP":                                      mutate(solicit(vip), func(b []byte) { b[20] = 17 }),
		"ARP":                                      append(slices.Clone(goldenReply[:12]), 0x08, 0x06, 0, 1),
		"another host's advertisement":             ipv6Frame(allNodesMAC, peerMAC, otherVIP, allNodes, 255, naBody(otherVIP, 0x20, peerMAC)),
	}
	h := start(t, quiet())
	h.s.Set([]netip.Addr{vip})
	h.Expect(goldenUnsolicited)
	for name, f := range ignored {
		before := h.s.Stats().Ignored
		h.Feed(f)
		if got := h.s.Stats().Ignored; got != before+1 {
			t.Errorf("%s: Ignored went from %d to %d, want +1", name, before, got)
		}
	}
	h.ExpectNothing(50 * time.Millisecond)
	if st := h.s.Stats(); st.Malformed != 0 || st.RepliesSent != 0 || st.Conflicts != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func mutate(b []byte, f func([]byte)) []byte {
	b = slices.Clone(b)
	f(b)
	return b
}

func TestConflictIsCountedNotAnswered(t *testing.T) {
	h := start(t, quiet())
	h.s.Set([]netip.Addr{vip})
	h.Expect(goldenUnsolicited)
	h.Feed(
		ipv6Frame(allNodesMAC, peerMAC, vip, allNodes, 255, naBody(vip, 0x20, peerMAC)),    // unsolicited NA
		ipv6Frame(allNodesMAC, peerMAC, peerLL, allNodes, 255, naBody(vip, 0x20, peerMAC)), // from link-local
		ipv6Frame(vipGroupM, peerMAC, vip, vipGroup, 255, nsBody(vip, peerMAC)),            // NS from the VIP
		ipv6Frame(ourMAC, peerMAC, vip, otherVIP, 255, nsBody(otherVIP, peerMAC)),          // NS from the VIP
	)
	h.ExpectNothing(50 * time.Millisecond)
	if st := h.s.Stats(); st.Conflicts != 4 || st.Ignored != 4 {
		t.Errorf("stats = %+v", st)
	}
}

func TestSetKeepsOnlyUnicastIPv6(t *testing.T) {
	h := start(t, Config{BurstCount: 1, Refresh: -1})
	h.s.Set([]netip.Addr{
		{},
		netip.MustParseAddr("198.18.0.1"),
		netip.MustParseAddr("::ffff:198.18.0.1"),
		netip.MustParseAddr("::"),
		netip.MustParseAddr("::1"),
		netip.MustParseAddr("ff02::1"),
		netip.MustParseAddr("2001:db8::100%eth0"), // zone dropped
	})
	h.Expect(goldenUnsolicited)
	h.ExpectNothing(30 * time.Millisecond)
	if got := h.s.Owned(); !slices.Equal(got, []netip.Addr{vip}) {
		t.Errorf("Owned() = %v, want [%s]", got, vip)
	}
}

func TestConfig(t *testing.T) {
	ifi := func(mac string) *net.Interface {
		m, _ := net.ParseMAC(mac)
		return &net.Interface{Name: "x", HardwareAddr: m}
	}
	bad := map[string]Config{
		"no interface":      {},
		"no MAC":            {Interface: &net.Interface{Name: "lo"}},
		"group MAC":         {Interface: ifi("33:33:00:00:00:01")},
		"zero MAC":          {Interface: ifi("00:00:00:00:00:00")},
		"negative burst":    {Interface: ifi("02:00:00:00:00:01"), BurstCount: -1},
		"negative interval": {Interface: ifi("02:00:00:00:00:01"), BurstInterval: -1},
	}
	for name, cfg := range bad {
		if _, err := New(cfg, newFakeConn(), newFakeGroups()); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	good := Config{Interface: ifi("02:00:00:00:00:01")}
	s, err := New(good, newFakeConn(), newFakeGroups())
	if err != nil {
		t.Fatal(err)
	}
	if c := s.e.Config(); c.BurstCount != DefaultBurstCount || c.BurstInterval != DefaultBurstInterval || c.Refresh != 0 {
		t.Errorf("zero Config: burst %d, interval %s, refresh %s; want the default burst and no refresh", c.BurstCount, c.BurstInterval, c.Refresh)
	}
	if _, err := New(good, nil, newFakeGroups()); err == nil {
		t.Error("New accepted a nil connection")
	}
	if _, err := New(good, newFakeConn(), nil); err == nil {
		t.Error("New accepted nil Groups")
	}
}

func TestRunLifecycle(t *testing.T) {
	conn, groups := newFakeConn(), newFakeGroups()
	s, err := New(Config{Interface: &net.Interface{HardwareAddr: ourMAC}, BurstCount: 1, Refresh: -1}, conn, groups)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	s.Set([]netip.Addr{vip})
	<-conn.Out
	if err := s.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- s.Run(ctx) }()
	conn.In <- solicit(vip)
	h := &harness{Harness: packettest.NewHarness(t, conn, counts(s)), s: s, conn: conn, groups: groups}
	h.Expect(goldenReply)

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !groups.closed {
		t.Error("Close did not close the Groups")
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Run after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
}

func TestSendErrorsAreCounted(t *testing.T) {
	h := start(t, Config{BurstCount: 2, BurstInterval: time.Millisecond, Refresh: -1})
	werr := error(syscall.ENETDOWN)
	h.conn.WriteErr.Store(&werr)
	h.s.Set([]netip.Addr{vip})
	h.Feed(solicit(vip))
	deadline := time.Now().Add(5 * time.Second)
	for h.s.Stats().SendErrors < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("stats = %+v, want 3 send errors", h.s.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if st := h.s.Stats(); st.RepliesSent != 0 || st.GratuitousSent != 0 {
		t.Errorf("stats = %+v", st)
	}
}
