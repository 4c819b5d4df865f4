package arpspeaker

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
	ourMAC   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	peerMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	peerIP   = netip.MustParseAddr("198.18.0.2")
	vip      = netip.MustParseAddr("198.18.0.100")
	otherVIP = netip.MustParseAddr("198.18.0.101")
)

// arpFrame assembles an Ethernet/IPv4 ARP frame by hand, padded to 60 bytes, independently of
// the code under test.
func arpFrame(dst, src net.HardwareAddr, op uint16, sha net.HardwareAddr, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr) []byte {
	b := make([]byte, 60)
	copy(b[0:], dst)
	copy(b[6:], src)
	binary.BigEndian.PutUint16(b[12:], 0x0806)
	binary.BigEndian.PutUint16(b[14:], 1)      // Ethernet
	binary.BigEndian.PutUint16(b[16:], 0x0800) // IPv4
	b[18], b[19] = 6, 4
	binary.BigEndian.PutUint16(b[20:], op)
	copy(b[22:], sha)
	s4, t4 := spa.As4(), tpa.As4()
	copy(b[28:], s4[:])
	copy(b[32:], tha)
	copy(b[38:], t4[:])
	return b
}

func request(target netip.Addr) []byte {
	return arpFrame(broadcast, peerMAC, 1, peerMAC, peerIP, zeroMAC, target)
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// The bytes on the wire, written out once by hand.
var (
	goldenReply = mustHex(`
		020000000002 020000000001 0806
		0001 0800 06 04 0002
		020000000001 c6120064
		020000000002 c6120002
		000000000000000000000000000000000000`)
	goldenGratuitous = mustHex(`
		ffffffffffff 020000000001 0806
		0001 0800 06 04 0001
		020000000001 c6120064
		000000000000 c6120064
		000000000000000000000000000000000000`)
)

type harness struct {
	*packettest.Harness
	s    *Speaker
	conn *fakeConn
}

// counts are the counters the harness follows.
func counts(s *Speaker) packettest.Counts {
	return func() (uint64, uint64) {
		st := s.Stats()
		return st.RepliesSent + st.GratuitousSent + st.ProbesSent + st.SendErrors, st.Received
	}
}

// start returns a running Speaker on a fake connection; the test's end stops it and checks that
// Run returned nil.
func start(t *testing.T, cfg Config) *harness {
	t.Helper()
	if cfg.Interface == nil {
		cfg.Interface = &net.Interface{Index: 7, Name: "eth-test", HardwareAddr: ourMAC}
	}
	conn := newFakeConn()
	s, err := New(cfg, conn)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{Harness: packettest.Start(t, conn, counts(s), s.Run), s: s, conn: conn}
}

// quiet is a Config whose only gratuitous ARP per VIP is the first one of the burst.
func quiet() Config { return Config{BurstCount: 1, Refresh: -1} }

func TestGolden(t *testing.T) {
	c := &codec{mac: ourMAC}
	if diff := cmp.Diff(goldenReply, c.reply(vip, peerMAC, peerIP)); diff != "" {
		t.Errorf("reply (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(goldenGratuitous, c.gratuitous(vip)); diff != "" {
		t.Errorf("gratuitous (-want +got):\n%s", diff)
	}
	// The hand assembler agrees with the golden bytes.
	if diff := cmp.Diff(goldenReply, arpFrame(peerMAC, ourMAC, 2, ourMAC, vip, peerMAC, peerIP)); diff != "" {
		t.Errorf("arpFrame (-want +got):\n%s", diff)
	}
}

func TestReplyForOwnedVIP(t *testing.T) {
	h := start(t, quiet())
	h.s.Set([]netip.Addr{vip})
	h.Expect(goldenGratuitous)

	h.conn.In <- request(vip)
	got := h.Next()
	if diff := cmp.Diff(goldenReply, got.Frame); diff != "" {
		t.Fatalf("reply (-want +got):\n%s", diff)
	}
	if got.Addr == nil || got.Addr.String() != peerMAC.String() {
		t.Errorf("reply written to %v, want the requester's MAC %s", got.Addr, peerMAC)
	}
	// A unicast request to our MAC (a neighbour refreshing its entry) is answered too.
	h.conn.In <- arpFrame(ourMAC, peerMAC, 1, peerMAC, peerIP, zeroMAC, vip)
	h.Expect(goldenReply)

	st := h.s.Stats()
	if st.RequestsSeen != 2 || st.RepliesSent != 2 || st.GratuitousSent != 1 || st.Ignored != 0 || st.Malformed != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestProbeIsAnswered(t *testing.T) {
	// RFC 5227: a probe (sender 0.0.0.0) for an address in use gets a reply, so that the prober
	// does not take the VIP.
	h := start(t, quiet())
	h.s.Set([]netip.Addr{vip})
	h.Expect(goldenGratuitous)
	unspecified := netip.IPv4Unspecified()
	h.conn.In <- arpFrame(broadcast, peerMAC, 1, peerMAC, unspecified, zeroMAC, vip)
	h.Expect(arpFrame(peerMAC, ourMAC, 2, ourMAC, vip, peerMAC, unspecified))
}

func TestNoReplyForNotOwned(t *testing.T) {
	h := start(t, quiet())
	h.s.Set([]netip.Addr{vip})
	h.Expect(goldenGratuitous)
	h.Feed(
		request(otherVIP),
		request(peerIP),
		request(netip.MustParseAddr("198.18.0.1")),
	)
	h.ExpectNothing(50 * time.Millisecond)
	if st := h.s.Stats(); st.RequestsSeen != 3 || st.Ignored != 3 || st.RepliesSent != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestNoReplyAfterRemoval(t *testing.T) {
	h := start(t, quiet())
	h.s.Set([]netip.Addr{vip, otherVIP})
	for range 2 {
		h.Next()
	}
	h.conn.In <- request(vip)
	h.Expect(goldenReply)

	h.s.Set([]netip.Addr{otherVIP})
	h.Feed(request(vip))
	h.ExpectNothing(50 * time.Millisecond)

	h.s.Set(nil)
	h.Feed(request(vip), request(otherVIP))
	h.ExpectNothing(50 * time.Millisecond)
	if st := h.s.Stats(); st.RepliesSent != 1 || st.Ignored != 3 {
		t.Errorf("stats = %+v", st)
	}
	if got := h.s.Owned(); len(got) != 0 {
		t.Errorf("Owned() = %v, want none", got)
	}
}

// TestRemovalIsImmediate floods the speaker with requests while the VIP is removed: once Set
// returns, not one more reply may be written.
func TestRemovalIsImmediate(t *testing.T) {
	h := start(t, quiet())
	h.s.Set([]netip.Addr{vip})
	h.Expect(goldenGratuitous)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case h.conn.In <- request(vip):
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
		if diff := cmp.Diff(goldenGratuitous, w.Frame); diff != "" {
			t.Fatalf("gratuitous ARP (-want +got):\n%s", diff)
		}
		if w.Addr.String() != broadcast.String() {
			t.Errorf("gratuitous ARP written to %v, want broadcast", w.Addr)
		}
		times = append(times, w.At)
	}
	h.ExpectNothing(4 * interval)
	// Timers never fire early; allow for the capture side's own scheduling.
	if span := times[n-1].Sub(times[0]); span < (n-1)*interval*9/10 {
		t.Errorf("burst of %d took %s, want at least %s", n, span, (n-1)*interval)
	}
	// Setting the same set again is not a takeover: no new burst.
	h.s.Set([]netip.Addr{vip, vip})
	h.ExpectNothing(3 * interval)
	// Removed and added back is.
	h.s.Set(nil)
	h.s.Set([]netip.Addr{vip})
	for range n {
		h.Expect(goldenGratuitous)
	}
	if st := h.s.Stats(); st.GratuitousSent != 2*n {
		t.Errorf("GratuitousSent = %d, want %d", st.GratuitousSent, 2*n)
	}
}

func TestBurstBeforeRun(t *testing.T) {
	conn := newFakeConn()
	s, err := New(Config{Interface: &net.Interface{HardwareAddr: ourMAC}, BurstCount: 2, BurstInterval: time.Millisecond, Refresh: -1}, conn)
	if err != nil {
		t.Fatal(err)
	}
	s.Set([]netip.Addr{vip})
	select {
	case w := <-conn.Out:
		t.Fatalf("frame written before Run: % x", w.Frame)
	case <-time.After(20 * time.Millisecond):
	}
	h := &harness{Harness: packettest.NewHarness(t, conn, counts(s)), s: s, conn: conn}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	h.Expect(goldenGratuitous, goldenGratuitous)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRefresh(t *testing.T) {
	h := start(t, Config{BurstCount: 1, Refresh: 20 * time.Millisecond})
	h.s.Set([]netip.Addr{vip})
	for range 4 {
		h.Expect(goldenGratuitous)
	}
	h.s.Set(nil)
	// A refresh may have been written while Set was waiting for the lock; none after.
	time.Sleep(5 * time.Millisecond)
	for len(h.conn.Out) > 0 {
		<-h.conn.Out
	}
	h.ExpectNothing(100 * time.Millisecond)
}

func TestMalformedFramesAreCountedAndIgnored(t *testing.T) {
	good := request(vip)
	mutate := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	malformed := map[string][]byte{
		"empty":                   {},
		"short ethernet header":   good[:13],
		"truncated ARP":           good[:14+27],
		"hardware type 6":         mutate(func(b []byte) []byte { b[15] = 6; return b }),
		"protocol type IPv6":      mutate(func(b []byte) []byte { b[16], b[17] = 0x86, 0xdd; return b }),
		"hardware length 8":       mutate(func(b []byte) []byte { b[18] = 8; return b }),
		"protocol length 16":      mutate(func(b []byte) []byte { b[19] = 16; return b }),
		"operation 3":             mutate(func(b []byte) []byte { b[21] = 3; return b }),
		"operation 0":             mutate(func(b []byte) []byte { b[21] = 0; return b }),
		"multicast sender MAC":    mutate(func(b []byte) []byte { b[22] = 0x01; return b }),
		"zero sender MAC":         mutate(func(b []byte) []byte { copy(b[22:28], zeroMAC); return b }),
		"broadcast sender IP":     mutate(func(b []byte) []byte { copy(b[28:32], []byte{255, 255, 255, 255}); return b }),
		"multicast sender IP":     mutate(func(b []byte) []byte { copy(b[28:32], []byte{224, 0, 0, 1}); return b }),
		"jumbo garbage after ARP": append(mutate(func(b []byte) []byte { b[18] = 0xff; return b }), make([]byte, 9000)...),
	}
	h := start(t, quiet())
	h.s.Set([]netip.Addr{vip})
	h.Expect(goldenGratuitous)
	for name, f := range malformed {
		before := h.s.Stats().Malformed
		h.Feed(f)
		if got := h.s.Stats().Malformed; got != before+1 {
			t.Errorf("%s: Malformed went from %d to %d, want +1", name, before, got)
		}
	}
	h.ExpectNothing(50 * time.Millisecond)
	// Still answering.
	h.conn.In <- good
	h.Expect(goldenReply)
}

func TestIgnored(t *testing.T) {
	other := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x03}
	ignored := map[string][]byte{
		"our own request (Ethernet source)": arpFrame(broadcast, ourMAC, 1, peerMAC, peerIP, zeroMAC, vip),
		"our own request (ARP sender)":      arpFrame(broadcast, peerMAC, 1, ourMAC, peerIP, zeroMAC, vip),
		"our own gratuitous ARP":            goldenGratuitous,
		"a reply for the VIP":               arpFrame(ourMAC, peerMAC, 2, peerMAC, peerIP, ourMAC, vip),
		"unicast to another host":           arpFrame(other, peerMAC, 1, peerMAC, peerIP, zeroMAC, vip),
		"IPv4 frame":                        append(slices.Clone(goldenReply[:12]), 0x08, 0x00, 0x45),
	}
	h := start(t, quiet())
	h.s.Set([]netip.Addr{vip})
	h.Expect(goldenGratuitous)
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

func TestConflictIsCountedNotAnswered(t *testing.T) {
	h := start(t, quiet())
	h.s.Set([]netip.Addr{vip})
	h.Expect(goldenGratuitous)
	h.Feed(
		arpFrame(broadcast, peerMAC, 1, peerMAC, vip, zeroMAC, vip), // gratuitous request
		arpFrame(broadcast, peerMAC, 2, peerMAC, vip, peerMAC, vip), // gratuitous reply
		arpFrame(broadcast, peerMAC, 1, peerMAC, vip, zeroMAC, otherVIP),
	)
	h.ExpectNothing(50 * time.Millisecond)
	if st := h.s.Stats(); st.Conflicts != 3 || st.Ignored != 3 {
		t.Errorf("stats = %+v", st)
	}
}

func TestSetKeepsOnlyUnicastIPv4(t *testing.T) {
	h := start(t, Config{BurstCount: 1, Refresh: -1})
	h.s.Set([]netip.Addr{
		{},
		netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("0.0.0.0"),
		netip.MustParseAddr("255.255.255.255"),
		netip.MustParseAddr("224.0.0.1"),
		netip.MustParseAddr("127.0.0.1"),
		netip.MustParseAddr("::ffff:198.18.0.100"), // unmapped to vip
	})
	h.Expect(goldenGratuitous)
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
		"InfiniBand MAC":    {Interface: ifi("00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01")},
		"group MAC":         {Interface: ifi("01:00:5e:00:00:01")},
		"zero MAC":          {Interface: ifi("00:00:00:00:00:00")},
		"negative burst":    {Interface: ifi("02:00:00:00:00:01"), BurstCount: -1},
		"negative interval": {Interface: ifi("02:00:00:00:00:01"), BurstInterval: -1},
	}
	for name, cfg := range bad {
		if _, err := New(cfg, newFakeConn()); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	s, err := New(Config{Interface: ifi("02:00:00:00:00:01")}, newFakeConn())
	if err != nil {
		t.Fatal(err)
	}
	if c := s.e.Config(); c.BurstCount != DefaultBurstCount || c.BurstInterval != DefaultBurstInterval || c.Refresh != 0 {
		t.Errorf("zero Config: burst %d, interval %s, refresh %s; want the default burst and no refresh", c.BurstCount, c.BurstInterval, c.Refresh)
	}
	if _, err := New(Config{Interface: ifi("02:00:00:00:00:01")}, nil); err == nil {
		t.Error("New accepted a nil connection")
	}
}

func TestRunLifecycle(t *testing.T) {
	conn := newFakeConn()
	s, err := New(Config{Interface: &net.Interface{HardwareAddr: ourMAC}, BurstCount: 1, Refresh: -1}, conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	s.Set([]netip.Addr{vip})
	<-conn.Out // Run is up
	if err := s.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}

	// Run again on the same connection: still answers.
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- s.Run(ctx) }()
	conn.In <- request(vip)
	h := &harness{Harness: packettest.NewHarness(t, conn, counts(s)), s: s, conn: conn}
	h.Expect(goldenReply)

	// Closing the connection ends Run with an error.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Run after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	cancel()
}

func TestSendErrorsAreCounted(t *testing.T) {
	h := start(t, Config{BurstCount: 2, BurstInterval: time.Millisecond, Refresh: -1})
	werr := error(syscall.ENETDOWN)
	h.conn.WriteErr.Store(&werr)
	h.s.Set([]netip.Addr{vip})
	h.Feed(request(vip))
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
