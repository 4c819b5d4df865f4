package membership

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func TestTransportLoopback(t *testing.T) {
	a, err := Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan Heartbeat, 1)
	bad := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		done <- b.Receive(ctx, func(h Heartbeat, _ netip.AddrPort) { got <- h }, func(err error, _ netip.AddrPort) { bad <- err })
	}()
	if _, err := a.conn.WriteToUDPAddrPort([]byte("garbage"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-bad:
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("malformed datagram reported as %v, want ErrMalformed", err)
		}
	case <-ctx.Done():
		t.Fatal("a malformed datagram was not reported")
	}
	want := Heartbeat{Node: "lab-node-1", Incarnation: 3, Seq: 4, State: Active, Claims: []Claim{{Addr: netip.MustParseAddr("198.18.0.240"), View: 3}}}
	if err := a.Send(want, []netip.AddrPort{b.LocalAddr()}); err != nil {
		t.Fatal(err)
	}
	select {
	case h := <-got:
		if !reflect.DeepEqual(h, want) {
			t.Errorf("received %+v, want %+v", h, want)
		}
	case <-ctx.Done():
		t.Fatal("no heartbeat received")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Receive returned %v after cancel, want context.Canceled", err)
	}
}
