package membership

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// receiver runs a Transport's Receive on loopback and collects what it reports.
type receiver struct {
	t       *Transport
	got     chan received
	dropped chan error
	done    chan error
	cancel  context.CancelFunc
}

type received struct {
	h    Heartbeat
	from netip.AddrPort
}

func listen(t *testing.T, s *Sealer) *Transport {
	t.Helper()
	tr, err := Listen(netip.MustParseAddrPort("127.0.0.1:0"), s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func startReceiver(t *testing.T, s *Sealer) *receiver {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &receiver{
		t: listen(t, s), got: make(chan received, 16), dropped: make(chan error, 16), done: make(chan error, 1), cancel: cancel,
	}
	go func() {
		r.done <- r.t.Receive(ctx,
			func(h Heartbeat, from netip.AddrPort) { r.got <- received{h, from} },
			func(err error, _ netip.AddrPort) { r.dropped <- err })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-r.done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Receive: %v", err)
		}
	})
	return r
}

const wait = 5 * time.Second

func (r *receiver) heartbeat(t *testing.T) received {
	t.Helper()
	select {
	case got := <-r.got:
		return got
	case err := <-r.dropped:
		t.Fatalf("a datagram was dropped: %v", err)
	case <-time.After(wait):
		t.Fatal("no heartbeat received")
	}
	return received{}
}

func (r *receiver) drop(t *testing.T, want error) {
	t.Helper()
	select {
	case err := <-r.dropped:
		if !errors.Is(err, want) {
			t.Errorf("dropped with %v, want %v", err, want)
		}
	case got := <-r.got:
		t.Fatalf("accepted %+v, want a drop with %v", got.h, want)
	case <-time.After(wait):
		t.Fatalf("nothing dropped, want %v", want)
	}
}

func sendRaw(t *testing.T, b []byte, to netip.AddrPort) {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

func TestTransportLoopback(t *testing.T) {
	ringA := mustSealer(t, KeyRing{Current: keyA})
	recv := startReceiver(t, ringA)
	send := listen(t, ringA)

	// Every sample arrives intact, from the sender's address, and does not change when the
	// next datagram overwrites the receive buffer.
	var all []Heartbeat
	for _, h := range samples() {
		if err := send.Send(h, recv.t.LocalAddr()); err != nil {
			t.Fatalf("Send: %v", err)
		}
		got := recv.heartbeat(t)
		if diff := heartbeatDiff(h, got.h); diff != "" {
			t.Errorf("received (-sent +received):\n%s", diff)
		}
		if got.from.Addr().Unmap() != send.LocalAddr().Addr().Unmap() || got.from.Port() != send.LocalAddr().Port() {
			t.Errorf("received from %s, sent from %s", got.from, send.LocalAddr())
		}
		all = append(all, h, got.h)
	}
	for i := 0; i < len(all); i += 2 {
		if diff := heartbeatDiff(all[i], all[i+1]); diff != "" {
			t.Errorf("a heartbeat changed after later datagrams (-sent +kept):\n%s", diff)
		}
	}

	// Garbage, a heartbeat under another key and a malformed one under ours are dropped, and
	// the receiver goes on.
	sendRaw(t, []byte("garbage"), recv.t.LocalAddr())
	recv.drop(t, ErrUnauthenticated)
	sendRaw(t, nil, recv.t.LocalAddr())
	recv.drop(t, ErrUnauthenticated)
	sendRaw(t, mustSeal(t, mustSealer(t, KeyRing{Current: keyB}), samples()["minimal"]), recv.t.LocalAddr())
	recv.drop(t, ErrUnauthenticated)
	sendRaw(t, sealRaw(keyA, append(empty(), 0)), recv.t.LocalAddr())
	recv.drop(t, ErrMalformed)
	h := samples()["every field"]
	if err := send.Send(h, recv.t.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if diff := heartbeatDiff(h, recv.heartbeat(t).h); diff != "" {
		t.Errorf("received after drops (-sent +received):\n%s", diff)
	}

	// Send refuses what Seal refuses, and sends nothing.
	if err := send.Send(Heartbeat{Node: "Bad Name", To: "b", State: Active}, recv.t.LocalAddr()); err == nil {
		t.Error("Send of an invalid heartbeat succeeded")
	}
}

func TestTransportRotation(t *testing.T) {
	onlyA := mustSealer(t, KeyRing{Current: keyA})
	recv := startReceiver(t, onlyA)
	send := listen(t, onlyA)
	h := samples()["minimal"]
	deliver := func(want error) {
		t.Helper()
		if err := send.Send(h, recv.t.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		if want != nil {
			recv.drop(t, want)
		} else {
			recv.heartbeat(t)
		}
	}

	// The receiver learns B first and still accepts A; then the sender moves to B.
	recv.t.SetSealer(mustSealer(t, KeyRing{Current: keyB, Previous: keyA}))
	deliver(nil)
	send.SetSealer(mustSealer(t, KeyRing{Current: keyB, Previous: keyA}))
	deliver(nil)
	// Previous dropped everywhere: B only.
	recv.t.SetSealer(mustSealer(t, KeyRing{Current: keyB}))
	deliver(nil)
	// A straggler still on A is refused.
	send.SetSealer(onlyA)
	deliver(ErrUnauthenticated)
}

func TestTransportReceiveCanceled(t *testing.T) {
	tr := listen(t, mustSealer(t, KeyRing{Current: keyA}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Receive(ctx, func(Heartbeat, netip.AddrPort) {}, nil) }()
	// A dropped datagram with a nil drop function is ignored.
	sendRaw(t, []byte("garbage"), tr.LocalAddr())
	time.Sleep(10 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Receive returned %v after cancel, want context.Canceled", err)
		}
	case <-time.After(wait):
		t.Fatal("Receive did not return after cancel")
	}

	// A context canceled before Receive starts.
	tr2 := listen(t, mustSealer(t, KeyRing{Current: keyA}))
	if err := tr2.Receive(ctx, func(Heartbeat, netip.AddrPort) {}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Receive with a canceled context returned %v, want context.Canceled", err)
	}
}

func TestListenRefuses(t *testing.T) {
	if _, err := Listen(netip.MustParseAddrPort("127.0.0.1:0"), nil); err == nil {
		t.Error("Listen without a Sealer succeeded")
	}
	tr := listen(t, mustSealer(t, KeyRing{Current: keyA}))
	if _, err := Listen(tr.LocalAddr(), mustSealer(t, KeyRing{Current: keyA})); err == nil {
		t.Errorf("a second Listen on %s succeeded", tr.LocalAddr())
	}
}
