package ndpspeaker

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// fakeConn is a net.PacketConn on channels: tests push frames into in and read what the speaker
// writes from out. It honours read deadlines (Run uses them to stop the reader) and Close.
type fakeConn struct {
	in  chan []byte
	out chan written

	writes   atomic.Uint64
	writeErr atomic.Pointer[error]

	mu        sync.Mutex
	deadline  time.Time
	dlChanged chan struct{} // closed when the deadline changes

	closeOnce sync.Once
	closed    chan struct{}
}

type written struct {
	frame []byte
	addr  net.Addr
	at    time.Time
}

func newFakeConn() *fakeConn {
	return &fakeConn{
		in:        make(chan []byte, 64),
		out:       make(chan written, 1<<14),
		dlChanged: make(chan struct{}),
		closed:    make(chan struct{}),
	}
}

type fakeAddr struct{}

func (fakeAddr) Network() string { return "fake" }
func (fakeAddr) String() string  { return "fake" }

func (c *fakeConn) ReadFrom(b []byte) (int, net.Addr, error) {
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
		case f := <-c.in:
			return copy(b, f), fakeAddr{}, nil
		case <-expired:
			return 0, nil, os.ErrDeadlineExceeded
		case <-changed:
		}
	}
}

func (c *fakeConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	if err := c.writeErr.Load(); err != nil {
		return 0, *err
	}
	c.writes.Add(1)
	c.out <- written{frame: append([]byte(nil), b...), addr: addr, at: time.Now()}
	return len(b), nil
}

func (c *fakeConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

func (c *fakeConn) LocalAddr() net.Addr { return fakeAddr{} }

func (c *fakeConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

func (c *fakeConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	close(c.dlChanged)
	c.dlChanged = make(chan struct{})
	return nil
}

func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }
