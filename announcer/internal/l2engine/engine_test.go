package l2engine

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/internal/packettest"
)

var testMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}

const testEtherType = 0x88b5 // IEEE local experimental

// toyCodec returns whatever Message it is told to, and as a Tender records the unions it is
// given.
type toyCodec struct {
	msg Message

	mu      sync.Mutex
	unions  [][]netip.Addr
	tends   int
	retryIn time.Duration // Tend asks to be called again this long after its first call
}

func (c *toyCodec) Usable(a netip.Addr) (netip.Addr, bool) { return a, a.Is4() }
func (c *toyCodec) Parse([]byte) Message                   { return c.msg }
func (c *toyCodec) Answer(*Message) []byte                 { return nil }
func (c *toyCodec) Announcement(netip.Addr) []byte         { return c.frame() }
func (c *toyCodec) Probe(netip.Addr) []byte                { return nil }
func (c *toyCodec) frame() []byte {
	return append(append(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, testMAC...), 0x88, 0xb5)
}

func (c *toyCodec) Changed(addrs []netip.Addr, _ time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	slices.SortFunc(addrs, netip.Addr.Compare)
	c.unions = append(c.unions, addrs)
}

func (c *toyCodec) Tend(now time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tends++
	if c.tends == 1 && c.retryIn > 0 {
		return now.Add(c.retryIn)
	}
	return time.Time{}
}

func newToy(t *testing.T, c *toyCodec) (*Engine, *packettest.Conn) {
	t.Helper()
	conn := packettest.NewConn()
	e, err := New(Config{Name: "toy", Interface: &net.Interface{HardwareAddr: testMAC}, BurstCount: 1}, conn, testEtherType, c)
	if err != nil {
		t.Fatal(err)
	}
	return e, conn
}

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

// TestForgottenKindIsMalformed: a codec that returns the zero Message drops the frame.
func TestForgottenKindIsMalformed(t *testing.T) {
	e, _ := newToy(t, &toyCodec{})
	frame := append(append(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0x02, 0, 0, 0, 0, 0x02), 0x88, 0xb5)
	e.Handle(frame)
	if st := e.Stats(); st.Received != 1 || st.Malformed != 1 {
		t.Errorf("stats = %+v", st)
	}
	if err := e.Probe(netip.MustParseAddr("198.18.0.1")); err == nil {
		t.Error("Probe without a frame succeeded")
	}
	if st := e.Stats(); st.SendErrors != 1 || st.ProbesSent != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// TestTenderSeesChanges: the tender gets the union of owned and watched addresses after every
// change, and nothing for a change that changes nothing.
func TestTenderSeesChanges(t *testing.T) {
	c := &toyCodec{}
	e, _ := newToy(t, c)
	e.Set(addrs("198.18.0.1", "2001:db8::1"))
	e.Watch(addrs("198.18.0.2", "198.18.0.1"))
	e.Watch(addrs("198.18.0.1", "198.18.0.2")) // the same set
	e.Set(addrs("198.18.0.1"))                 // the same set
	e.Set(nil)
	want := [][]netip.Addr{addrs("198.18.0.1"), addrs("198.18.0.1", "198.18.0.2"), addrs("198.18.0.1", "198.18.0.2")}
	if !slices.EqualFunc(c.unions, want, slices.Equal) {
		t.Errorf("unions = %v, want %v", c.unions, want)
	}
}

// TestTenderOrder: concurrent Set and Watch leave the tender with the final union.
func TestTenderOrder(t *testing.T) {
	c := &toyCodec{}
	e, _ := newToy(t, c)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { e.Set(addrs("198.18.0.1", netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}).String())) })
		wg.Go(func() { e.Watch(addrs(netip.AddrFrom4([4]byte{198, 18, 2, byte(i)}).String())) })
	}
	wg.Wait()
	e.Watch(addrs("198.18.3.1"))
	union := append(e.Owned(), netip.MustParseAddr("198.18.3.1"))
	slices.SortFunc(union, netip.Addr.Compare)
	if last := c.unions[len(c.unions)-1]; !slices.Equal(last, union) {
		t.Errorf("last union %v, want %v", last, union)
	}
}

// TestRunTends: Run calls Tend again when it asked to be.
func TestRunTends(t *testing.T) {
	c := &toyCodec{retryIn: 10 * time.Millisecond}
	e, _ := newToy(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		n := c.tends
		c.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Tend called %d times, want 2", n)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestEarliest(t *testing.T) {
	now := time.Now()
	later := now.Add(time.Second)
	for _, c := range []struct{ a, b, want time.Time }{
		{time.Time{}, time.Time{}, time.Time{}},
		{now, time.Time{}, now},
		{time.Time{}, now, now},
		{later, now, now},
		{now, later, now},
	} {
		if got := earliest(c.a, c.b); !got.Equal(c.want) {
			t.Errorf("earliest(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// TestForeignAnnounce: a claim's report carries the codec's Announces; a probe's report never
// announces, even in a frame whose claim does; ReportTo hands Announce to the speaker's type.
func TestForeignAnnounce(t *testing.T) {
	type speakerForeign struct {
		Addr     netip.Addr
		MAC      net.HardwareAddr
		Probe    bool
		Announce bool
	}
	var got []speakerForeign
	peer := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	c := &toyCodec{}
	e, err := New(Config{Name: "toy", Interface: &net.Interface{HardwareAddr: testMAC}, BurstCount: 1,
		OnForeign: ReportTo(func(f speakerForeign) { got = append(got, f) })}, packettest.NewConn(), testEtherType, c)
	if err != nil {
		t.Fatal(err)
	}
	owned, watched := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	e.Set([]netip.Addr{owned})
	e.Watch([]netip.Addr{watched})
	frame := append(append(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, peer...), 0x88, 0xb5)
	for _, tc := range []struct {
		name string
		msg  Message
		want []speakerForeign
	}{
		{"announcement of the watched address", Message{Kind: Valid, MAC: peer, Claims: watched, Announces: true},
			[]speakerForeign{{Addr: watched, MAC: peer, Announce: true}}},
		{"claim of the watched address", Message{Kind: Valid, MAC: peer, Claims: watched},
			[]speakerForeign{{Addr: watched, MAC: peer}}},
		{"announcement of the owned address", Message{Kind: Valid, MAC: peer, Claims: owned, Announces: true},
			[]speakerForeign{{Addr: owned, MAC: peer, Announce: true}}},
		{"probe of the watched address", Message{Kind: Valid, Request: true, MAC: peer, Probes: watched},
			[]speakerForeign{{Addr: watched, MAC: peer, Probe: true}}},
		{"announcement of one address and probe of another", Message{Kind: Valid, MAC: peer, Claims: owned, Probes: watched, Announces: true},
			[]speakerForeign{{Addr: owned, MAC: peer, Announce: true}}}, // a conflict: nothing else is done
		{"claim of one and probe of the other", Message{Kind: Valid, MAC: peer, Claims: watched, Probes: owned, Announces: true},
			[]speakerForeign{{Addr: watched, MAC: peer, Announce: true}, {Addr: owned, MAC: peer, Probe: true}}},
		{"announcement of an address neither owned nor watched", Message{Kind: Valid, MAC: peer, Claims: netip.MustParseAddr("198.18.0.3"), Announces: true},
			nil},
	} {
		got = nil
		c.msg = tc.msg
		e.Handle(frame)
		if !slices.EqualFunc(got, tc.want, func(a, b speakerForeign) bool {
			return a.Addr == b.Addr && a.MAC.String() == b.MAC.String() && a.Probe == b.Probe && a.Announce == b.Announce
		}) {
			t.Errorf("%s: reports %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
