package membership

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// The detector tests run as node "self", incarnation selfInc, with a one-second timeout, among
// members a, b and c. Times are explicit: at(ms) is ms milliseconds after t0. Rounds are
// numbered from 1, so a step that starts a round names the sequence number it gets.

const (
	selfInc     = 0x5e1f
	testTimeout = time.Second
)

var (
	t0     = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	addrA  = netip.MustParseAddr("10.0.0.1")
	addrA6 = netip.MustParseAddr("fd00::1")
	addrB  = netip.MustParseAddr("10.0.0.2")
	addrC  = netip.MustParseAddr("10.0.0.3")
	// home is where each member's heartbeats come from unless a step says otherwise.
	home = map[string]netip.Addr{"a": addrA, "b": addrB, "c": addrC, "self": netip.MustParseAddr("10.0.0.9")}
)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func newDetector() *Detector {
	d := NewDetector("self", selfInc, testTimeout)
	d.SetMembers(map[string][]netip.Addr{
		"self": {home["self"]}, "a": {addrA, addrA6}, "b": {addrB}, "c": {addrC},
	})
	return d
}

// ours is an echo of our round seq.
func ours(seq uint64) Echo { return Echo{Incarnation: selfInc, Seq: seq} }

// hb is an active heartbeat to self.
func hb(node string, inc, seq uint64, echo Echo, edits ...func(*Heartbeat)) Heartbeat {
	h := Heartbeat{Node: node, To: "self", Incarnation: inc, Seq: seq, State: Active, Echo: echo}
	for _, f := range edits {
		f(&h)
	}
	return h
}

func leaving(h *Heartbeat) { h.State = Leaving }

func claims(addrs ...string) func(*Heartbeat) {
	return func(h *Heartbeat) {
		h.Claims = nil
		for _, a := range addrs {
			h.Claims = append(h.Claims, Claim{Addr: netip.MustParseAddr(a), Gen: 1})
		}
	}
}

// step is one event: optionally a round, then optionally a heartbeat, then checks of the peer.
type step struct {
	at    int    // ms after t0
	round uint64 // if set, start a round first; it must get this sequence number
	hb    Heartbeat
	from  netip.Addr // default: home[hb.Node]
	err   error      // the heartbeat must be refused with this (errors.Is); nil: accepted
	// changed is what Observe must report.
	changed bool
	// peer is checked after the step: alive and connected at the step's time, and if echo is
	// set, the echo a heartbeat to it would carry. Default: hb.Node.
	peer             string
	alive, connected bool
	left             bool
	echo             *Echo
}

func run(t *testing.T, d *Detector, steps []step) {
	t.Helper()
	for i, s := range steps {
		now := at(s.at)
		desc := fmt.Sprintf("step %d (%dms)", i, s.at)
		if s.round != 0 {
			if got := d.Round(now); got != s.round {
				t.Fatalf("%s: Round = %d, want %d", desc, got, s.round)
			}
		}
		peer := s.peer
		if s.hb.Node != "" {
			desc += fmt.Sprintf(" %s inc %x seq %d echo %+v", s.hb.Node, s.hb.Incarnation, s.hb.Seq, s.hb.Echo)
			from := s.from
			if !from.IsValid() {
				from = home[s.hb.Node]
			}
			changed, err := d.Observe(now, s.hb, from)
			switch {
			case s.err == nil && err != nil:
				t.Fatalf("%s: refused: %v", desc, err)
			case s.err != nil && !errors.Is(err, s.err):
				t.Fatalf("%s: error %v, want %v", desc, err, s.err)
			case err != nil && changed:
				t.Errorf("%s: refused (%v) but reported a change", desc, err)
			case changed != s.changed:
				t.Errorf("%s: changed = %t, want %t", desc, changed, s.changed)
			}
			if peer == "" {
				peer = s.hb.Node
			}
		}
		if peer == "" {
			continue
		}
		if got := d.Alive(now, peer); got != s.alive {
			t.Errorf("%s: Alive(%s) = %t, want %t", desc, peer, got, s.alive)
		}
		if got := d.Connected(now, peer); got != s.connected {
			t.Errorf("%s: Connected(%s) = %t, want %t", desc, peer, got, s.connected)
		}
		if got := d.Left(peer); got != s.left {
			t.Errorf("%s: Left(%s) = %t, want %t", desc, peer, got, s.left)
		}
		if s.echo != nil {
			if got := d.EchoFor(now, peer); got != *s.echo {
				t.Errorf("%s: EchoFor(%s) = %+v, want %+v", desc, peer, got, *s.echo)
			}
		}
	}
}

func echo(inc, seq uint64) *Echo { return &Echo{Incarnation: inc, Seq: seq} }

// handshake is the first contact with a, incarnation 0xa1: round 1 at 0ms, a's first
// heartbeat (seq 1) unproven at 10ms, its second (seq 2) echoing round 1 at 20ms.
var handshake = []step{
	{at: 0, round: 1, peer: "a", echo: &Echo{}},
	{at: 10, hb: hb("a", 0xa1, 1, Echo{}), err: ErrUnproven, echo: echo(0xa1, 1)},
	{at: 20, hb: hb("a", 0xa1, 2, ours(1)), changed: true, alive: true, connected: true, echo: echo(0xa1, 2)},
}

// connected returns a detector that went through the handshake with a.
func connected(t *testing.T) *Detector {
	t.Helper()
	d := newDetector()
	run(t, d, handshake)
	return d
}

func TestDetectorRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    Heartbeat
		from netip.Addr
		want error
	}{
		{"our own", hb("self", selfInc, 10, Echo{}), home["self"], ErrOwnMessage},
		{"our own, addressed to a", hb("self", selfInc, 10, Echo{}, func(h *Heartbeat) { h.To = "a" }), home["self"], ErrOwnMessage},
		{"addressed to b", hb("a", 0xa1, 10, ours(1), func(h *Heartbeat) { h.To = "b" }), addrA, ErrNotForUs},
		{"addressed to nobody", hb("a", 0xa1, 10, ours(1), func(h *Heartbeat) { h.To = "" }), addrA, ErrNotForUs},
		{"addressed to self.example", hb("a", 0xa1, 10, ours(1), func(h *Heartbeat) { h.To = "self.example" }), addrA, ErrNotForUs},
		{"non-member", hb("mallory", 1, 1, ours(1)), addrA, ErrNotMember},
		{"non-member named like a member's prefix", hb("a.", 1, 1, ours(1)), addrA, ErrNotMember},
		{"a from b's address", hb("a", 0xa1, 10, ours(1)), addrB, ErrSource},
		{"a from our address", hb("a", 0xa1, 10, ours(1)), home["self"], ErrSource},
		{"a from elsewhere", hb("a", 0xa1, 10, ours(1)), netip.MustParseAddr("10.0.0.100"), ErrSource},
		{"a from a zero address", hb("a", 0xa1, 10, ours(1)), netip.Addr{}, ErrSource},
		{"a from another IPv6", hb("a", 0xa1, 10, ours(1)), netip.MustParseAddr("fd00::2"), ErrSource},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := connected(t)
			before := *mustPeer(t, d, "a")
			changed, err := d.Observe(at(30), tc.h, tc.from)
			if !errors.Is(err, tc.want) || changed {
				t.Fatalf("Observe = %t, %v; want false, %v", changed, err, tc.want)
			}
			after := mustPeer(t, d, "a")
			if after.Last.Seq != before.Last.Seq || !after.HeardAt.Equal(before.HeardAt) {
				t.Errorf("a refused heartbeat changed a: seq %d heard %v, was seq %d heard %v", after.Last.Seq, after.HeardAt, before.Last.Seq, before.HeardAt)
			}
			if len(d.peers) != 1 || len(d.pending) != 0 {
				t.Errorf("a refused heartbeat left state: %d peers, pending %v", len(d.peers), d.pending)
			}
		})
	}
}

// TestDetectorSourceAddress checks which forms of a member's address are its own: a dual-stack
// socket reports IPv4 senders as mapped addresses, and link-local senders with a zone.
func TestDetectorSourceAddress(t *testing.T) {
	d := connected(t)
	for i, from := range []netip.Addr{
		addrA, addrA6, netip.MustParseAddr("::ffff:10.0.0.1"), netip.MustParseAddr("fd00::1%eth0"),
	} {
		if _, err := d.Observe(at(30+i), hb("a", 0xa1, uint64(3+i), ours(1)), from); err != nil {
			t.Errorf("a heartbeat from %s: %v", from, err)
		}
	}
}

func TestDetectorFirstContact(t *testing.T) {
	d := newDetector()
	if d.Incarnation() != selfInc {
		t.Fatalf("Incarnation = %x, want %x", d.Incarnation(), selfInc)
	}
	run(t, d, []step{
		{at: 0, round: 1, peer: "a", echo: &Echo{}},
		// a has not heard us: its heartbeat proves nothing, but we echo it.
		{at: 10, hb: hb("a", 0xa1, 1, Echo{}), err: ErrUnproven, echo: echo(0xa1, 1)},
		{at: 20, hb: hb("a", 0xa1, 2, Echo{}), err: ErrUnproven, echo: echo(0xa1, 2)},
		// A reordered earlier one does not move the echo back.
		{at: 21, hb: hb("a", 0xa1, 1, Echo{}), err: ErrUnproven, echo: echo(0xa1, 2)},
		// An echo of a round we never sent proves nothing either.
		{at: 30, hb: hb("a", 0xa1, 3, ours(2)), err: ErrUnproven, echo: echo(0xa1, 3)},
		{at: 100, round: 2, peer: "b", echo: &Echo{}},
		// a heard round 2 (sent with echo {a1, 3}): believed, and connected at once.
		{at: 150, hb: hb("a", 0xa1, 4, ours(2)), changed: true, alive: true, connected: true, echo: echo(0xa1, 4)},
	})
	p := mustPeer(t, d, "a")
	if !p.HeardAt.Equal(at(150)) || !p.EchoSentAt.Equal(at(100)) || p.Last.Seq != 4 {
		t.Errorf("peer a: heard %v, echo sent %v, seq %d; want %v, %v, 4", p.HeardAt, p.EchoSentAt, p.Last.Seq, at(150), at(100))
	}
	if len(d.pending) != 0 {
		t.Errorf("pending after the handshake: %v", d.pending)
	}
}

func TestDetectorEchoFreshness(t *testing.T) {
	for _, tc := range []struct {
		name   string
		at     int
		echo   Echo
		rounds int // rounds at 0ms; then one at 500ms
		fresh  bool
	}{
		{"round 1 at the timeout", 1000, ours(1), 1, true},
		{"round 1 after the timeout", 1001, ours(1), 1, false},
		{"round 2 after round 1's timeout", 1001, ours(2), 1, true},
		{"round 2 at its timeout", 1500, ours(2), 1, true},
		{"round 2 after its timeout", 1501, ours(2), 1, false},
		{"a round not sent yet", 10, ours(3), 1, false},
		{"round 0", 10, ours(0), 1, false},
		{"no echo", 10, Echo{}, 1, false},
		{"our previous incarnation", 10, Echo{Incarnation: selfInc - 1, Seq: 1}, 1, false},
		{"the first of 257 rounds, forgotten", 10, ours(1), sentHistory, false},
		{"the second of 257 rounds", 10, ours(2), sentHistory, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDetector()
			for range tc.rounds {
				d.Round(at(0))
			}
			d.Round(at(500))
			_, err := d.Observe(at(tc.at), hb("b", 0xb1, 1, tc.echo), addrB)
			if tc.fresh && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.fresh && !errors.Is(err, ErrUnproven) {
				t.Fatalf("Observe: %v, want ErrUnproven", err)
			}
			if got := d.Connected(at(tc.at), "b"); got != tc.fresh {
				t.Errorf("Connected = %t, want %t", got, tc.fresh)
			}
		})
	}
}

func TestDetectorSequence(t *testing.T) {
	run(t, connected(t), []step{
		{at: 100, hb: hb("a", 0xa1, 2, ours(1)), err: ErrStale, alive: true, connected: true},
		{at: 100, hb: hb("a", 0xa1, 1, ours(1)), err: ErrStale, alive: true, connected: true},
		{at: 100, hb: hb("a", 0xa1, 0, ours(1)), err: ErrStale, alive: true, connected: true},
		{at: 110, hb: hb("a", 0xa1, 3, ours(1)), alive: true, connected: true},
		{at: 120, hb: hb("a", 0xa1, 100, ours(1)), alive: true, connected: true},
		{at: 130, hb: hb("a", 0xa1, 50, ours(1)), err: ErrStale, alive: true, connected: true},
		{at: 140, hb: hb("a", 0xa1, 100, ours(1), claims("198.18.0.1")), err: ErrStale, alive: true, connected: true},
		{at: 150, hb: hb("a", 0xa1, ^uint64(0), ours(1)), alive: true, connected: true},
		{at: 160, hb: hb("a", 0xa1, ^uint64(0), ours(1)), err: ErrStale, alive: true, connected: true},
		// Replays do not keep a silent peer alive: a was last heard at 150ms.
		{at: 1100, hb: hb("a", 0xa1, 3, ours(1)), err: ErrStale, alive: true},
		{at: 1151, hb: hb("a", 0xa1, 100, ours(1)), err: ErrStale, alive: false},
	})
}

func TestDetectorOneWay(t *testing.T) {
	// a is believed at 20ms (echo of round 1, sent at 0ms) and then stops hearing us: its
	// heartbeats keep arriving but echo round 1 for ever.
	run(t, connected(t), []step{
		{at: 200, round: 2},
		{at: 210, hb: hb("a", 0xa1, 3, ours(1)), alive: true, connected: true},
		{at: 400, round: 3},
		{at: 1000, hb: hb("a", 0xa1, 4, ours(1)), alive: true, connected: true},
		// Round 1 is now older than the timeout: a is alive but not known to hear us. The
		// echo lapsed with time, not with this heartbeat, so Observe reports no change.
		{at: 1001, peer: "a", alive: true, connected: false},
		{at: 1001, hb: hb("a", 0xa1, 5, ours(1)), alive: true, connected: false},
		{at: 1500, hb: hb("a", 0xa1, 6, Echo{}), alive: true, connected: false},
		{at: 1800, hb: hb("a", 0xa1, 7, ours(2)), alive: true, connected: false}, // round 2: 1600ms old
		// a hears us again: connected, and that is a change.
		{at: 1900, round: 4},
		{at: 1950, hb: hb("a", 0xa1, 8, ours(4)), changed: true, alive: true, connected: true},
		// Round 4 (1900ms) is the last a echoed, and a is heard no more after 1950ms.
		{at: 2900, peer: "a", alive: true, connected: true},
		{at: 2901, peer: "a", alive: true, connected: false},
		{at: 2950, peer: "a", alive: true, connected: false},
		{at: 2951, peer: "a", alive: false, connected: false, echo: echo(0xa1, 8)},
		// Heard again without a fresh echo: alive (a change), not connected.
		{at: 4000, hb: hb("a", 0xa1, 9, ours(4)), changed: true, alive: true, connected: false},
	})
}

func TestDetectorNewIncarnation(t *testing.T) {
	const inc1, inc2 = 0xa1, 0xa2
	recorded := hb("a", inc1, 3, ours(2)) // an attacker keeps a copy of a heartbeat of inc1
	d := connected(t)
	run(t, d, []step{
		{at: 200, round: 2},
		{at: 210, hb: recorded, alive: true, connected: true},
		{at: 500, round: 3},
		// a restarted and heard round 3: not believed while inc1 is alive, fresh echo or not.
		{at: 510, hb: hb("a", inc2, 1, ours(3)), err: ErrUnproven, alive: true, connected: true, echo: echo(inc1, 3)},
		{at: 1210, hb: hb("a", inc2, 2, ours(3)), err: ErrUnproven, alive: true, connected: false, echo: echo(inc1, 3)},
		// inc1 timed out (last heard at 210ms). inc2 must echo a round of the last second.
		{at: 1300, hb: hb("a", inc2, 3, Echo{}), err: ErrUnproven, echo: echo(inc2, 3)},
		{at: 1310, hb: hb("a", inc2, 4, ours(1)), err: ErrUnproven, echo: echo(inc2, 4)}, // round 1 is 1310ms old
		{at: 1400, round: 4},
		{at: 1410, hb: hb("a", inc2, 5, ours(4)), changed: true, alive: true, connected: true, echo: echo(inc2, 5)},
	})
	if p := mustPeer(t, d, "a"); p.Last.Incarnation != inc2 || p.Last.Seq != 5 {
		t.Fatalf("a is incarnation %x seq %d, want %x seq 5", p.Last.Incarnation, p.Last.Seq, inc2)
	}
	// The recording of inc1 replayed after the restart: refused while inc2 is alive, and after
	// it died too, because its echo is old.
	run(t, d, []step{
		{at: 1500, hb: recorded, err: ErrUnproven, alive: true, connected: true, echo: echo(inc2, 5)},
		{at: 1600, hb: hb("a", inc1, 1000, ours(4)), err: ErrUnproven, alive: true, connected: true},
		{at: 5000, hb: recorded, err: ErrUnproven, alive: false, connected: false},
	})
	if p := mustPeer(t, d, "a"); p.Last.Incarnation != inc2 || !p.HeardAt.Equal(at(1410)) {
		t.Errorf("a is incarnation %x heard at %v, want %x heard at %v", p.Last.Incarnation, p.HeardAt, inc2, at(1410))
	}
	// inc2 itself comes back after a silence: the same incarnation needs no echo.
	run(t, d, []step{
		{at: 5100, hb: hb("a", inc2, 6, Echo{}), changed: true, alive: true, connected: false},
	})
}

// TestDetectorIncarnationIsNotAClock checks that a restart is believed whatever its
// incarnation number, lower ones included, once it echoes us.
func TestDetectorIncarnationIsNotAClock(t *testing.T) {
	run(t, connected(t), []step{
		{at: 2000, round: 2},
		{at: 2010, hb: hb("a", 0, 1, ours(2)), changed: true, alive: true, connected: true},
		{at: 3020, round: 3},
		{at: 3030, hb: hb("a", 0xa1, 3, ours(3)), changed: true, alive: true, connected: true},
	})
}

func TestDetectorLeaving(t *testing.T) {
	run(t, connected(t), []step{
		{at: 100, hb: hb("a", 0xa1, 3, ours(1), claims("198.18.0.1")), changed: true, alive: true, connected: true},
		{at: 200, hb: hb("a", 0xa1, 5, ours(1), claims("198.18.0.1"), leaving), changed: true, left: true},
		// A delayed earlier heartbeat does not bring it back, nor a replay of the last one.
		{at: 210, hb: hb("a", 0xa1, 4, ours(1), claims("198.18.0.1")), err: ErrStale, left: true},
		{at: 220, hb: hb("a", 0xa1, 5, ours(1), claims("198.18.0.1")), err: ErrStale, left: true},
		// Saying it again changes nothing.
		{at: 230, hb: hb("a", 0xa1, 6, ours(1), claims("198.18.0.1"), leaving), left: true},
		// It restarts: a leaving peer is not alive, so the new incarnation needs no timeout,
		// only a fresh echo.
		{at: 300, round: 2},
		{at: 305, hb: hb("a", 0xa3, 1, Echo{}), err: ErrUnproven, left: true, echo: echo(0xa3, 1)},
		{at: 310, hb: hb("a", 0xa3, 2, ours(2)), changed: true, alive: true, connected: true},
	})
}

func TestDetectorSetMembers(t *testing.T) {
	d := connected(t) // a connected at 20ms
	run(t, d, []step{
		{at: 30, hb: hb("b", 0xb1, 1, ours(1)), changed: true, alive: true, connected: true},
		{at: 40, hb: hb("c", 0xc1, 1, Echo{}), err: ErrUnproven, echo: echo(0xc1, 1)},
	})
	onlyA := []netip.Addr{addrA}
	d.SetMembers(map[string][]netip.Addr{"a": onlyA, "self": {home["self"]}})
	onlyA[0] = addrB // the detector keeps its own copy
	if got := d.Members(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("Members = %v, want [a]", got)
	}
	if got := d.Addrs("a"); !slices.Equal(got, []netip.Addr{addrA}) {
		t.Errorf("Addrs(a) = %v, want [%s]", got, addrA)
	}
	if _, ok := d.Peer("b"); ok {
		t.Error("b is still a peer")
	}
	if len(d.peers) != 1 || len(d.pending) != 0 {
		t.Errorf("after SetMembers: peers %d, pending %v; want 1 peer, nothing pending", len(d.peers), d.pending)
	}
	run(t, d, []step{
		{at: 50, peer: "a", alive: true, connected: true},
		{at: 50, peer: "b", alive: false, echo: &Echo{}},
		{at: 50, peer: "c", alive: false, echo: &Echo{}},
		{at: 60, hb: hb("b", 0xb1, 2, ours(1)), err: ErrNotMember},
		{at: 60, hb: hb("a", 0xa1, 3, ours(1)), from: addrA6, err: ErrSource, alive: true, connected: true},
	})
	// Members again, b must prove itself again: the detector forgot its incarnation.
	d.SetMembers(map[string][]netip.Addr{"a": {netip.MustParseAddr("10.0.0.11")}, "b": {addrB}, "c": {addrC}})
	if got := d.Members(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("Members = %v, want [a b c]", got)
	}
	run(t, d, []step{
		{at: 70, hb: hb("b", 0xb1, 2, Echo{}), err: ErrUnproven, echo: echo(0xb1, 2)},
		{at: 80, hb: hb("b", 0xb1, 3, ours(1)), changed: true, alive: true, connected: true},
		// a moved to a new address: the old one is refused, the new one accepted, its state kept.
		{at: 90, hb: hb("a", 0xa1, 3, ours(1)), from: addrA, err: ErrSource, alive: true, connected: true},
		{at: 90, hb: hb("a", 0xa1, 4, ours(1)), from: netip.MustParseAddr("10.0.0.11"), alive: true, connected: true},
	})
}

// TestDetectorMemoryBounded floods the detector with heartbeats of forged names and
// incarnations: its state stays bounded by the member count.
func TestDetectorMemoryBounded(t *testing.T) {
	d := newDetector()
	const n = 10000
	for i := range n {
		d.Round(at(i))
	}
	if len(d.sent) != sentHistory {
		t.Errorf("%d rounds remembered, want %d", len(d.sent), sentHistory)
	}
	now := at(n)
	for i := range n {
		name := fmt.Sprintf("forged-%d", i)
		from := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		if _, err := d.Observe(now, hb(name, uint64(i), 1, ours(n)), from); !errors.Is(err, ErrNotMember) {
			t.Fatalf("forged %s: %v, want ErrNotMember", name, err)
		}
	}
	for i := range n {
		member := []string{"a", "b", "c"}[i%3]
		if _, err := d.Observe(now, hb(member, uint64(i+1), 1, Echo{}), home[member]); !errors.Is(err, ErrUnproven) {
			t.Fatalf("%s incarnation %d: %v, want ErrUnproven", member, i+1, err)
		}
	}
	if len(d.members) != 3 || len(d.peers) > 3 || len(d.pending) > 3 {
		t.Errorf("after %d forged heartbeats: %d members, %d peers, %d pending; want 3 and at most 3", 2*n, len(d.members), len(d.peers), len(d.pending))
	}
	// The last round is still echoed.
	if _, err := d.Observe(now, hb("a", 0xa9, 1, ours(n)), addrA); err != nil {
		t.Errorf("an echo of the last round: %v", err)
	}
	d.SetMembers(nil)
	if len(d.members)+len(d.peers)+len(d.pending) != 0 {
		t.Errorf("no members: %d members, %d peers, %d pending left", len(d.members), len(d.peers), len(d.pending))
	}
}

// TestDetectorChanged checks Observe reports a change exactly when what the election reads of a
// peer changes: state, incarnation, claims (in any order, with their doubt), links, wanted VIPs,
// yielded VIPs, API freshness, liveness or connectivity, and not for its sequence, echo or hardware addresses.
func TestDetectorChanged(t *testing.T) {
	d := connected(t) // a connected at 20ms with seq 2
	h := hb("a", 0xa1, 2, ours(1))
	ms := 20
	for _, tc := range []struct {
		name string
		edit func(*Heartbeat)
		want bool
	}{
		{"nothing", func(*Heartbeat) {}, false},
		{"two claims", claims("198.18.0.1", "2001:db8::1"), true},
		{"the same claims reordered", claims("2001:db8::1", "198.18.0.1"), false},
		{"a claim's generation", func(h *Heartbeat) { h.Claims = []Claim{h.Claims[0], {Addr: h.Claims[1].Addr, Gen: 2}} }, true},
		{"a claim dropped", func(h *Heartbeat) { h.Claims = h.Claims[:1] }, true},
		{"a claim turned doubtful", func(h *Heartbeat) { h.Claims = []Claim{{Addr: h.Claims[0].Addr, Gen: h.Claims[0].Gen, Doubtful: true}} }, true},
		{"still doubtful", func(h *Heartbeat) { h.Claims = slices.Clone(h.Claims) }, false},
		{"no longer doubtful", func(h *Heartbeat) { h.Claims = []Claim{{Addr: h.Claims[0].Addr, Gen: h.Claims[0].Gen}} }, true},
		{"joining", func(h *Heartbeat) { h.State = Joining }, true},
		{"joining again", func(*Heartbeat) {}, false},
		{"active", func(h *Heartbeat) { h.State = Active }, true},
		{"API fresh", func(h *Heartbeat) { h.APIFresh = true }, true},
		{"API still fresh", func(*Heartbeat) {}, false},
		{"a link it cannot serve", func(h *Heartbeat) { h.Cannot = []string{"ARP/eth1"} }, true},
		{"the same link", func(h *Heartbeat) { h.Cannot = []string{"ARP/eth1"} }, false},
		{"a wanted VIP", func(h *Heartbeat) { h.Wants = []netip.Addr{netip.MustParseAddr("198.18.0.9")} }, true},
		{"no wanted VIP", func(h *Heartbeat) { h.Wants = nil }, true},
		{"a yielded VIP", func(h *Heartbeat) { h.Yielded = []netip.Addr{netip.MustParseAddr("198.18.0.9")} }, true},
		{"the same yielded VIP", func(h *Heartbeat) { h.Yielded = []netip.Addr{netip.MustParseAddr("198.18.0.9")} }, false},
		{"another yielded VIP", func(h *Heartbeat) {
			h.Yielded = []netip.Addr{netip.MustParseAddr("198.18.0.9"), netip.MustParseAddr("2001:db8::9")}
		}, true},
		{"no yielded VIP", func(h *Heartbeat) { h.Yielded = nil }, true},
		{"an empty yielded list", func(h *Heartbeat) { h.Yielded = []netip.Addr{} }, false},
		{"a wanted VIP again", func(h *Heartbeat) { h.Wants = []netip.Addr{netip.MustParseAddr("198.18.0.9")} }, true},
		{"the wanted VIP yielded instead", func(h *Heartbeat) { h.Wants, h.Yielded = nil, h.Wants }, true},
		{"wanted again instead of yielded", func(h *Heartbeat) { h.Wants, h.Yielded = h.Yielded, nil }, true},
		{"no wanted VIP again", func(h *Heartbeat) { h.Wants = nil }, true},
		{"hardware addresses", func(h *Heartbeat) { h.MACs = samples()["every field"].MACs }, false},
		{"a big jump in seq", func(h *Heartbeat) { h.Seq += 1000 }, false},
		{"no echo", func(h *Heartbeat) { h.Echo = Echo{} }, false},
		{"API stale", func(h *Heartbeat) { h.APIFresh = false }, true},
		{"leaving", leaving, true},
	} {
		ms += 10
		h.Seq++
		tc.edit(&h)
		changed, err := d.Observe(at(ms), h, addrA)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if changed != tc.want {
			t.Errorf("%s: changed = %t, want %t", tc.name, changed, tc.want)
		}
		if diff := heartbeatDiff(h, mustPeer(t, d, "a").Last); diff != "" {
			t.Errorf("%s: Peer.Last (-observed +kept):\n%s", tc.name, diff)
		}
	}
}

func mustPeer(t *testing.T, d *Detector, node string) *Peer {
	t.Helper()
	p, ok := d.Peer(node)
	if !ok {
		t.Fatalf("no peer %s", node)
	}
	return p
}
