// Package packettest provides a net.PacketConn on channels for the speakers' tests: frames go in
// through In, and what the speaker writes comes out of Out, byte for byte. Harness drives a
// speaker on it, and Reports collects what its OnForeign callback is told.
package packettest

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is a net.PacketConn on channels: tests push frames into In and read what the speaker
// writes from Out. It honours read deadlines (speakers use them to stop their reader) and Close.
type Conn struct {
	In  chan []byte
	Out chan Written

	// Writes counts successful writes; a non-nil WriteErr makes every write fail with it.
	Writes   atomic.Uint64
	WriteErr atomic.Pointer[error]

	mu        sync.Mutex
	deadline  time.Time
	dlChanged chan struct{} // closed when the deadline changes

	closeOnce sync.Once
	closed    chan struct{}
}

// Written is one frame the speaker wrote, where to and when.
type Written struct {
	Frame []byte
	Addr  net.Addr
	At    time.Time
}

// NewConn returns an open Conn.
func NewConn() *Conn {
	return &Conn{
		In:        make(chan []byte, 64),
		Out:       make(chan Written, 1<<14),
		dlChanged: make(chan struct{}),
		closed:    make(chan struct{}),
	}
}

type fakeAddr struct{}

func (fakeAddr) Network() string { return "fake" }
func (fakeAddr) String() string  { return "fake" }

// ReadFrom returns the next frame pushed into In.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		c.mu.Lock()
		dl, changed := c.deadline, c.dlChanged
		c.mu.Unlock()
		var expired <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, nil, os.ErrDeadlineExceeded
			}
			t := time.NewTimer(d)
			expired = t.C
			defer t.Stop()
		}
		select {
		case <-c.closed:
			return 0, nil, net.ErrClosed
		case f := <-c.In:
			return copy(b, f), fakeAddr{}, nil
		case <-expired:
			return 0, nil, os.ErrDeadlineExceeded
		case <-changed:
		}
	}
}

// WriteTo hands a copy of b to Out.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	if err := c.WriteErr.Load(); err != nil {
		return 0, *err
	}
	c.Writes.Add(1)
	c.Out <- Written{Frame: append([]byte(nil), b...), Addr: addr, At: time.Now()}
	return len(b), nil
}

// Close makes reads and writes fail with net.ErrClosed.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

// LocalAddr is a placeholder address.
func (c *Conn) LocalAddr() net.Addr { return fakeAddr{} }

// SetDeadline sets the read deadline.
func (c *Conn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline wakes a blocked ReadFrom when the deadline passes.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	close(c.dlChanged)
	c.dlChanged = make(chan struct{})
	return nil
}

// SetWriteDeadline is ignored: writes never block.
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }
