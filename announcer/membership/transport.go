package membership

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Transport sends and receives sealed heartbeats over UDP.
type Transport struct {
	conn   *net.UDPConn
	sealer atomic.Pointer[Sealer]

	mu  sync.Mutex // guards buf
	buf []byte
}

// Listen opens the heartbeat socket on addr: the node's own address and the heartbeat port, so
// that nothing arriving on another address (a pod network, a VIP) reaches it.
func Listen(addr netip.AddrPort, sealer *Sealer) (*Transport, error) {
	if sealer == nil {
		return nil, errors.New("membership: Listen needs a Sealer")
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, fmt.Errorf("listening for heartbeats on %s: %w", addr, err)
	}
	t := &Transport{conn: conn, buf: make([]byte, 0, 1500)}
	t.sealer.Store(sealer)
	return t, nil
}

// SetSealer replaces the keys (a rotation); it takes effect for the next datagram.
func (t *Transport) SetSealer(s *Sealer) { t.sealer.Store(s) }

// LocalAddr is the address the socket is bound to.
func (t *Transport) LocalAddr() netip.AddrPort { return t.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Send seals h and sends it to the peer address to.
func (t *Transport) Send(h Heartbeat, to netip.AddrPort) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, err := t.sealer.Load().Seal(t.buf[:0], h)
	if err != nil {
		return err
	}
	t.buf = b[:0]
	if _, err := t.conn.WriteToUDPAddrPort(b, to); err != nil {
		return fmt.Errorf("sending heartbeat to %s %s: %w", h.To, to, err)
	}
	return nil
}

// Receive reads datagrams until ctx ends, calling handle for each authenticated heartbeat and
// drop for every other datagram (the error wraps ErrUnauthenticated or ErrMalformed). Each
// datagram costs at most one HMAC before it is dropped.
func (t *Transport) Receive(ctx context.Context, handle func(Heartbeat, netip.AddrPort), drop func(error, netip.AddrPort)) error {
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
		h, err := t.sealer.Load().Open(buf[:n])
		if err != nil {
			if drop != nil {
				drop(err, from)
			}
			continue
		}
		handle(h, from)
	}
}

// Close closes the socket.
func (t *Transport) Close() error { return t.conn.Close() }
