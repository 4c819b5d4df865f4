package membership

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func names(peers []Peer) []string {
	var out []string
	for _, p := range peers {
		out = append(out, p.Node)
	}
	return out
}

func TestDetector(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	vip := netip.MustParseAddr("198.18.0.240")
	d := NewDetector("self", 200*time.Millisecond)

	if d.Observe(ms(0), Heartbeat{Node: "self", Incarnation: 1, Seq: 1, State: Active}) {
		t.Error("our own heartbeat changed the view")
	}
	if !d.Observe(ms(0), Heartbeat{Node: "a", Incarnation: 1, Seq: 1, State: Active}) {
		t.Error("a new peer did not change the view")
	}
	if d.Observe(ms(50), Heartbeat{Node: "a", Incarnation: 1, Seq: 2, State: Active}) {
		t.Error("an unchanged heartbeat changed the view")
	}
	if d.Observe(ms(60), Heartbeat{Node: "a", Incarnation: 1, Seq: 2, State: Active, Claims: []Claim{{Addr: vip}}}) {
		t.Error("a replayed sequence number was accepted")
	}
	if !d.Observe(ms(100), Heartbeat{Node: "a", Incarnation: 1, Seq: 3, State: Active, Claims: []Claim{{Addr: vip, View: 2}}}) {
		t.Error("a new claim did not change the view")
	}
	if d.Observe(ms(110), Heartbeat{Node: "a", Incarnation: 0, Seq: 50, State: Active}) {
		t.Error("an older incarnation was accepted")
	}
	d.Observe(ms(120), Heartbeat{Node: "b", Incarnation: 1, Seq: 1, State: Joining})
	if got := names(d.Alive(ms(150))); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("alive = %v, want [a b]", got)
	}
	if failed := d.Expire(ms(300)); len(failed) != 0 {
		t.Errorf("expired %v at 300ms; a was heard at 100ms, b at 120ms", failed)
	}
	if failed := d.Expire(ms(301)); !slices.Equal(failed, []string{"a"}) {
		t.Errorf("expired %v at 301ms, want [a]", failed)
	}
	if failed := d.Expire(ms(400)); !slices.Equal(failed, []string{"b"}) {
		t.Errorf("expired %v at 400ms, want [b] (a reported once)", failed)
	}
	if got := d.Alive(ms(400)); len(got) != 0 {
		t.Errorf("alive after expiry = %v", names(got))
	}
	if !d.Observe(ms(500), Heartbeat{Node: "a", Incarnation: 1, Seq: 4, State: Active}) {
		t.Error("a peer heard again after expiry did not change the view")
	}
	if !d.Observe(ms(510), Heartbeat{Node: "a", Incarnation: 2, Seq: 1, State: Joining}) {
		t.Error("a restarted peer (new incarnation) did not change the view")
	}
	if !d.Observe(ms(520), Heartbeat{Node: "a", Incarnation: 2, Seq: 2, State: Leaving}) {
		t.Error("a leaving peer did not change the view")
	}
	if got := d.Alive(ms(520)); len(got) != 0 {
		t.Errorf("a leaving peer counts as alive: %v", names(got))
	}
	if failed := d.Expire(ms(530)); len(failed) != 0 {
		t.Errorf("a leaving peer was reported as failed: %v", failed)
	}
	d.Observe(ms(600), Heartbeat{Node: "c", Incarnation: 1, Seq: 1, State: Active})
	d.Forget("c")
	if got := d.Alive(ms(600)); len(got) != 0 {
		t.Errorf("a forgotten peer is alive: %v", names(got))
	}
}
