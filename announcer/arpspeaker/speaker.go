package arpspeaker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults: the zero BurstCount and BurstInterval of a Config select the first two;
// DefaultRefresh is the recommended Refresh (a zero Refresh disables it).
const (
	DefaultBurstCount    = 3
	DefaultBurstInterval = 100 * time.Millisecond
	DefaultRefresh       = 60 * time.Second
)

// readBufferSize is larger than any Ethernet frame, so frames are never truncated on read.
const readBufferSize = 1 << 16

// ErrRunning is returned by Run when another Run of the same Speaker has not returned yet.
var ErrRunning = errors.New("arpspeaker: Run is already running")

// Config configures a Speaker. A zero BurstCount or BurstInterval selects its default; a zero
// Refresh disables the refresh.
type Config struct {
	// Interface is the link the speaker works on. Its HardwareAddr, a 6-byte unicast Ethernet
	// MAC, is the address every reply and announcement carries; Listen also uses its Index. The
	// speaker keeps a copy and does not follow later changes of the interface. Required.
	Interface *net.Interface

	// BurstCount is how many gratuitous ARPs a VIP gets when Set adds it (takeover), the first at
	// once and the others BurstInterval apart. Zero means DefaultBurstCount; negative is invalid.
	BurstCount int
	// BurstInterval is the time between two gratuitous ARPs of a burst. Zero means
	// DefaultBurstInterval; negative is invalid.
	BurstInterval time.Duration

	// Refresh is how often, after its burst, each owned VIP gets one more gratuitous ARP, so
	// that switches keep the MAC in their forwarding tables and neighbours that missed the
	// burst catch up. Zero (or negative) disables the refresh; DefaultRefresh suits most
	// switches, whose forwarding entries age out after 300 s.
	Refresh time.Duration
}

// Validate reports whether the Config can be used: an Interface with a unicast 6-byte MAC and
// no negative burst settings.
func (c Config) Validate() error {
	if c.Interface == nil {
		return errors.New("arpspeaker: Config.Interface is required")
	}
	if err := checkMAC(c.Interface.HardwareAddr); err != nil {
		return fmt.Errorf("arpspeaker: interface %q: %w", c.Interface.Name, err)
	}
	if c.BurstCount < 0 {
		return fmt.Errorf("arpspeaker: Config.BurstCount %d is negative; use 0 for the default of %d", c.BurstCount, DefaultBurstCount)
	}
	if c.BurstInterval < 0 {
		return fmt.Errorf("arpspeaker: Config.BurstInterval %s is negative; use 0 for the default of %s", c.BurstInterval, DefaultBurstInterval)
	}
	return nil
}

func checkMAC(mac net.HardwareAddr) error {
	switch {
	case len(mac) != 6:
		return fmt.Errorf("hardware address %q is not a 6-byte Ethernet MAC", mac)
	case mac[0]&1 != 0:
		return fmt.Errorf("hardware address %s is a group address", mac)
	case bytes.Equal(mac, make(net.HardwareAddr, 6)):
		return errors.New("hardware address is all zeros")
	}
	return nil
}

// Stats are the counters of a Speaker since New. Every frame read is counted once in Received
// and once in exactly one of Malformed, Ignored, RepliesSent or (for a failed reply) SendErrors.
type Stats struct {
	// Received counts frames read from the connection and handled.
	Received uint64
	// RequestsSeen counts well-formed ARP requests from other hosts, for any target.
	RequestsSeen uint64
	// RepliesSent counts replies written for owned VIPs.
	RepliesSent uint64
	// GratuitousSent counts gratuitous ARPs written (takeover bursts and refreshes).
	GratuitousSent uint64
	// Ignored counts well-formed frames that needed no answer: requests for addresses not owned,
	// replies, frames from our own MAC or to another host's MAC.
	Ignored uint64
	// Malformed counts frames dropped because they are truncated, not Ethernet/IPv4 ARP, or carry
	// impossible addresses.
	Malformed uint64
	// Conflicts counts ARP frames from another MAC whose sender address is an owned VIP: another
	// host claims it.
	Conflicts uint64
	// SendErrors counts replies and gratuitous ARPs the connection failed to write.
	SendErrors uint64
	// ReadErrors counts failed reads (other than the end of Run).
	ReadErrors uint64
}

type counters struct {
	received, requests, replies, gratuitous, ignored, malformed, conflicts, sendErrors, readErrors atomic.Uint64
}

// announcement is the schedule of one owned VIP's gratuitous ARPs.
type announcement struct {
	frame     []byte    // the gratuitous ARP, built once
	burstLeft int       // gratuitous ARPs of the takeover burst still to send
	due       time.Time // next gratuitous ARP; zero when none is scheduled
}

// Speaker answers ARP for a set of owned IPv4 VIPs on one interface. Its methods are safe for
// concurrent use.
type Speaker struct {
	conn          net.PacketConn
	mac           net.HardwareAddr
	burstCount    int
	burstInterval time.Duration
	refresh       time.Duration // <= 0: no refresh

	mu    sync.RWMutex // held for reading while a frame is written, for writing by Set
	owned map[netip.Addr]*announcement

	wake    chan struct{} // Set -> Run: the schedule changed
	running atomic.Bool
	stats   counters
}

// New returns a Speaker that reads and writes whole Ethernet II frames on conn. The Speaker
// takes ownership of conn: Close closes it. Addresses passed to conn.WriteTo are link-layer
// addresses (the frame's destination MAC) of the type the AF_PACKET connection of Listen expects;
// other connections may ignore them. New starts nothing: call Run.
func New(cfg Config, conn net.PacketConn) (*Speaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if conn == nil {
		return nil, errors.New("arpspeaker: New needs a connection")
	}
	s := &Speaker{
		conn:          conn,
		mac:           bytes.Clone(cfg.Interface.HardwareAddr),
		burstCount:    cfg.BurstCount,
		burstInterval: cfg.BurstInterval,
		refresh:       cfg.Refresh,
		owned:         map[netip.Addr]*announcement{},
		wake:          make(chan struct{}, 1),
	}
	if s.burstCount == 0 {
		s.burstCount = DefaultBurstCount
	}
	if s.burstInterval == 0 {
		s.burstInterval = DefaultBurstInterval
	}
	return s, nil
}

// HardwareAddr returns the MAC address the speaker answers with.
func (s *Speaker) HardwareAddr() net.HardwareAddr { return bytes.Clone(s.mac) }

// Set replaces the set of VIPs the speaker owns. Only unicast IPv4 addresses count
// (IPv4-mapped IPv6 addresses are unmapped); every other address (IPv6, the zero Addr,
// 0.0.0.0, broadcast, multicast, loopback) is ignored. Duplicates are harmless.
//
// A VIP not owned before gets its takeover burst: Run sends the first gratuitous ARP at once. A
// VIP that leaves the set is not answered or announced any more once Set returns. Set may be
// called before Run and concurrently with it.
func (s *Speaker) Set(vips []netip.Addr) {
	desired := make(map[netip.Addr]struct{}, len(vips))
	for _, a := range vips {
		a = a.Unmap()
		if usableVIP(a) {
			desired[a] = struct{}{}
		}
	}
	now := time.Now()
	added := false
	s.mu.Lock()
	for a := range s.owned {
		if _, ok := desired[a]; !ok {
			delete(s.owned, a)
		}
	}
	for a := range desired {
		if _, ok := s.owned[a]; ok {
			continue
		}
		s.owned[a] = &announcement{frame: s.gratuitous(a), burstLeft: s.burstCount, due: now}
		added = true
	}
	s.mu.Unlock()
	if added {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// usableVIP reports whether a can be announced: a unicast IPv4 address.
func usableVIP(a netip.Addr) bool {
	return a.Is4() && !a.IsUnspecified() && !a.IsMulticast() && !a.IsLoopback() &&
		a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// Owned returns the owned VIPs, in no particular order.
func (s *Speaker) Owned() []netip.Addr {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]netip.Addr, 0, len(s.owned))
	for a := range s.owned {
		out = append(out, a)
	}
	return out
}

// Stats returns a snapshot of the speaker's counters.
func (s *Speaker) Stats() Stats {
	c := &s.stats
	return Stats{
		Received:       c.received.Load(),
		RequestsSeen:   c.requests.Load(),
		RepliesSent:    c.replies.Load(),
		GratuitousSent: c.gratuitous.Load(),
		Ignored:        c.ignored.Load(),
		Malformed:      c.malformed.Load(),
		Conflicts:      c.conflicts.Load(),
		SendErrors:     c.sendErrors.Load(),
		ReadErrors:     c.readErrors.Load(),
	}
}

// Close closes the connection. Run then returns.
func (s *Speaker) Close() error { return s.conn.Close() }

// Run answers requests for owned VIPs and sends the gratuitous ARPs of takeovers and refreshes
// until ctx ends; it then returns nil. It returns an error if the connection is closed or fails
// for good, or ErrRunning if another Run is in progress. Read errors that may pass (for example
// while the interface is down) are counted and retried with a backoff; write errors are counted.
func (s *Speaker) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Unblock the reader when ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = s.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	readDone := make(chan error, 1)
	go func() { readDone <- s.readLoop(ctx) }()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var err error
loop:
	for {
		if next := s.announceDue(time.Now()); next.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(time.Until(next))
		}
		select {
		case <-ctx.Done():
			break loop
		case err = <-readDone:
			readDone = nil
			break loop
		case <-s.wake:
		case <-timer.C:
		}
	}
	cancel()
	if readDone != nil {
		err = <-readDone
	}
	if err == nil {
		// Let a later Run read again.
		_ = s.conn.SetReadDeadline(time.Time{})
	}
	return err
}

// readLoop reads and handles frames until ctx ends (nil) or the connection is closed (error).
func (s *Speaker) readLoop(ctx context.Context) error {
	buf := make([]byte, readBufferSize)
	var backoff time.Duration
	for {
		n, _, err := s.conn.ReadFrom(buf)
		if n > 0 || err == nil {
			s.handleFrame(buf[:n])
		}
		if err == nil {
			backoff = 0
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
			return fmt.Errorf("arpspeaker: reading frames: %w", err)
		}
		s.stats.readErrors.Add(1)
		backoff = min(max(2*backoff, 10*time.Millisecond), time.Second)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// announceDue sends every gratuitous ARP due at now and returns when the next one is due (zero:
// none is scheduled).
func (s *Speaker) announceDue(now time.Time) time.Time {
	var next time.Time
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.owned {
		if a.due.IsZero() {
			continue
		}
		if !a.due.After(now) {
			s.write(a.frame, broadcast, &s.stats.gratuitous)
			switch {
			case a.burstLeft > 1:
				a.burstLeft--
				a.due = now.Add(s.burstInterval)
			case s.refresh > 0:
				a.burstLeft = 0
				a.due = now.Add(s.refresh)
			default:
				a.burstLeft = 0
				a.due = time.Time{}
				continue
			}
		}
		if next.IsZero() || a.due.Before(next) {
			next = a.due
		}
	}
	return next
}

// write sends one frame to dst and counts it in ok or in SendErrors.
func (s *Speaker) write(frame []byte, dst net.HardwareAddr, ok *atomic.Uint64) {
	if _, err := s.conn.WriteTo(frame, linkAddr(dst)); err != nil {
		s.stats.sendErrors.Add(1)
		return
	}
	ok.Add(1)
}
