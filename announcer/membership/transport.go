package membership

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Transport sends and receives heartbeats over UDP.
type Transport struct {
	conn *net.UDPConn
	buf  []byte
}

// Listen opens the heartbeat socket on addr (the node's own address and the heartbeat port; an
// unspecified address listens on every interface).
func Listen(addr netip.AddrPort) (*Transport, error) {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, fmt.Errorf("listening for heartbeats on %s: %w", addr, err)
	}
	return &Transport{conn: conn, buf: make([]byte, 0, 1500)}, nil
}

// LocalAddr is the address the socket is bound to.
func (t *Transport) LocalAddr() netip.AddrPort { return t.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Send encodes h once and sends it to every peer. It returns the first error but tries them all:
// one unreachable peer must not silence the others.
func (t *Transport) Send(h Heartbeat, peers []netip.AddrPort) error {
	b, err := Encode(t.buf[:0], h)
	if err != nil {
		return err
	}
	t.buf = b[:0]
	var first error
	for _, p := range peers {
		if _, err := t.conn.WriteToUDPAddrPort(b, p); err != nil && first == nil {
			first = fmt.Errorf("sending heartbeat to %s: %w", p, err)
		}
	}
	return first
}

// Receive reads heartbeats until ctx ends, calling handle for each valid one and malformed for
// each datagram that does not parse.
func (t *Transport) Receive(ctx context.Context, handle func(Heartbeat, netip.AddrPort), malformed func(error, netip.AddrPort)) error {
	stop := context.AfterFunc(ctx, func() { t.conn.Close() })
	defer stop()
	buf := make([]byte, MaxSize+1)
	for {
		n, from, err := t.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return ctx.Err()
			}
			return fmt.Errorf("reading heartbeats: %w", err)
		}
		h, err := Decode(buf[:n])
		if err != nil {
			if malformed != nil {
				malformed(err, from)
			}
			continue
		}
		handle(h, from)
	}
}

// Close closes the socket.
func (t *Transport) Close() error { return t.conn.Close() }
