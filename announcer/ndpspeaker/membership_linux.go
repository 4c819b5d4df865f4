//go:build linux

package ndpspeaker

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// membership holds IPv6 multicast memberships on one interface with an unbound AF_INET6 UDP
// socket: it receives nothing, but its IPV6_JOIN_GROUP memberships make the kernel accept the
// solicited-node multicast MACs on the NIC and send MLD reports, so that switches with MLD
// snooping forward the solicitations to this port.
type membership struct {
	ifindex int
	mu      sync.Mutex
	fd      int // -1 once closed
}

func newMembership(ifindex int) (groupSocket, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	return &membership{ifindex: ifindex, fd: fd}, nil
}

// JoinGroup joins group on the interface.
func (m *membership) JoinGroup(group netip.Addr) error {
	return m.setsockopt(unix.IPV6_JOIN_GROUP, "IPV6_JOIN_GROUP", group)
}

// LeaveGroup leaves group on the interface.
func (m *membership) LeaveGroup(group netip.Addr) error {
	return m.setsockopt(unix.IPV6_LEAVE_GROUP, "IPV6_LEAVE_GROUP", group)
}

func (m *membership) setsockopt(opt int, name string, group netip.Addr) error {
	if !group.Is6() || !group.IsMulticast() {
		return fmt.Errorf("%s: %s is not an IPv6 multicast group", name, group)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fd < 0 {
		return os.ErrClosed
	}
	mreq := &unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(m.ifindex)}
	if err := unix.SetsockoptIPv6Mreq(m.fd, unix.IPPROTO_IPV6, opt, mreq); err != nil {
		return fmt.Errorf("%s %s: %w", name, group, os.NewSyscallError("setsockopt", err))
	}
	return nil
}

// Close closes the socket, which drops its memberships.
func (m *membership) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fd < 0 {
		return errors.New("membership socket already closed")
	}
	err := unix.Close(m.fd)
	m.fd = -1
	return os.NewSyscallError("close", err)
}

// nsOpener opens membership sockets for one interface in the network namespace of the thread
// that made it. A socket belongs to the namespace of the thread that creates it, and the speaker
// opens them lazily, from whichever goroutine calls Set: in a process whose threads are not all
// in one namespace (a test that enters namespaces per thread), a socket opened in another
// namespace would join the groups on some other interface with the same index. Where the
// calling thread is already in the right namespace, which is the usual case, no privilege
// beyond CAP_NET_RAW is needed; elsewhere entering the namespace needs CAP_SYS_ADMIN.
type nsOpener struct {
	ifindex int
	ns      *os.File // the namespace; nil where /proc is not mounted: the caller's
}

func newNSOpener(ifindex int) *nsOpener {
	ns, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		ns = nil
	}
	return &nsOpener{ifindex: ifindex, ns: ns}
}

// open opens a membership socket in the namespace. It runs on a goroutine of its own, locked to
// its thread, so that a thread that could not leave the namespace again ends with it.
func (o *nsOpener) open() (groupSocket, error) {
	if o.ns == nil {
		return newMembership(o.ifindex)
	}
	type result struct {
		sock groupSocket
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		cur, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer cur.Close()
		if sameFile(cur, o.ns) {
			sock, err := newMembership(o.ifindex)
			runtime.UnlockOSThread()
			done <- result{sock, err}
			return
		}
		if err := unix.Setns(int(o.ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("entering the interface's network namespace: %w", os.NewSyscallError("setns", err))}
			return
		}
		sock, err := newMembership(o.ifindex)
		if err := unix.Setns(int(cur.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked and ends with this goroutine.
			done <- result{sock, err}
			return
		}
		runtime.UnlockOSThread()
		done <- result{sock, err}
	}()
	r := <-done
	return r.sock, r.err
}

// close releases the namespace.
func (o *nsOpener) close() error {
	if o.ns == nil {
		return nil
	}
	return o.ns.Close()
}

// sameFile reports whether a and b are the same inode: the same namespace.
func sameFile(a, b *os.File) bool {
	var sa, sb unix.Stat_t
	if unix.Fstat(int(a.Fd()), &sa) != nil || unix.Fstat(int(b.Fd()), &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
