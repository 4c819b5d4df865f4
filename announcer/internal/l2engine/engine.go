package l2engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/packet"
)

const ethHeaderLen = 14

// Counts are the counters of an Engine since New. Every frame read is counted once in Received
// and once in exactly one of Malformed, Ignored, RepliesSent or (for a failed reply) SendErrors.
// The speakers document each counter for their protocol; arpspeaker.Stats is this struct.
type Counts struct {
	Received       uint64
	RequestsSeen   uint64
	RepliesSent    uint64
	GratuitousSent uint64
	Ignored        uint64
	Malformed      uint64
	Conflicts      uint64
	SendErrors     uint64
	ReadErrors     uint64
	ProbesSent     uint64
	ForeignSeen    uint64
}

type counters struct {
	received, requests, replies, gratuitous, ignored, malformed, conflicts,
	sendErrors, readErrors, probes, foreign atomic.Uint64
}

// announcement is the schedule of one owned address's announcements.
type announcement struct {
	frame     []byte    // the announcement, built once
	burstLeft int       // announcements of the takeover burst still to send
	due       time.Time // next announcement; zero when none is scheduled
}

// Engine answers, announces, probes and watches on one interface through a Codec. Its methods
// are safe for concurrent use.
type Engine struct {
	cfg       Config // with defaults
	conn      net.PacketConn
	codec     Codec
	tender    Tender // nil unless codec is one
	mac       net.HardwareAddr
	etherType uint16

	// changeMu orders Set and Watch, so that Tender.Changed sees the changes in order.
	changeMu sync.Mutex
	// mu is held for reading while a frame is handled and its answer written, for writing by
	// Set, Watch and the announcements.
	mu      sync.RWMutex
	owned   map[netip.Addr]*announcement
	watched map[netip.Addr]struct{}

	wake    chan struct{} // Set, Watch -> Run: the schedule changed
	running atomic.Bool
	c       counters
}

// New returns an Engine that reads and writes whole Ethernet II frames of etherType on conn. It
// takes ownership of conn: Close closes it. New starts nothing: call Run.
func New(cfg Config, conn net.PacketConn, etherType uint16, codec Codec) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if conn == nil || codec == nil {
		return nil, fmt.Errorf("%s: New needs a connection", cfg.Name)
	}
	if cfg.ErrRunning == nil {
		cfg.ErrRunning = fmt.Errorf("%s: Run is already running", cfg.Name)
	}
	e := &Engine{
		cfg:       cfg.withDefaults(),
		conn:      conn,
		codec:     codec,
		mac:       bytes.Clone(cfg.Interface.HardwareAddr),
		etherType: etherType,
		owned:     map[netip.Addr]*announcement{},
		watched:   map[netip.Addr]struct{}{},
		wake:      make(chan struct{}, 1),
	}
	e.tender, _ = codec.(Tender)
	return e, nil
}

// Config returns the configuration in force, with the defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// HardwareAddr returns our MAC.
func (e *Engine) HardwareAddr() net.HardwareAddr { return bytes.Clone(e.mac) }

// usableSet returns the distinct usable forms of addrs.
func (e *Engine) usableSet(addrs []netip.Addr) map[netip.Addr]struct{} {
	set := make(map[netip.Addr]struct{}, len(addrs))
	for _, a := range addrs {
		if a, ok := e.codec.Usable(a); ok {
			set[a] = struct{}{}
		}
	}
	return set
}

// Set replaces the owned addresses; see the speakers' Set for the contract.
func (e *Engine) Set(addrs []netip.Addr) {
	desired := e.usableSet(addrs)
	now := time.Now()
	e.changeMu.Lock()
	defer e.changeMu.Unlock()
	changed := false
	e.mu.Lock()
	for a := range e.owned {
		if _, ok := desired[a]; !ok {
			delete(e.owned, a)
			changed = true
		}
	}
	for a := range desired {
		if _, ok := e.owned[a]; !ok {
			e.owned[a] = &announcement{frame: e.codec.Announcement(a), burstLeft: e.cfg.BurstCount, due: now}
			changed = true
		}
	}
	e.mu.Unlock()
	if changed {
		e.changed(now)
	}
}

// Watch replaces the watched addresses: those, beyond the owned ones, whose foreign claims are
// reported to OnForeign.
func (e *Engine) Watch(addrs []netip.Addr) {
	desired := e.usableSet(addrs)
	now := time.Now()
	e.changeMu.Lock()
	defer e.changeMu.Unlock()
	e.mu.Lock()
	same := len(desired) == len(e.watched)
	for a := range desired {
		if _, ok := e.watched[a]; !ok {
			same = false
			break
		}
	}
	e.watched = desired
	e.mu.Unlock()
	if !same {
		e.changed(now)
	}
}

// changed tells the tender and Run that the sets changed. changeMu is held.
func (e *Engine) changed(now time.Time) {
	if e.tender != nil {
		e.mu.RLock()
		union := make([]netip.Addr, 0, len(e.owned)+len(e.watched))
		for a := range e.owned {
			union = append(union, a)
		}
		for a := range e.watched {
			if _, ok := e.owned[a]; !ok {
				union = append(union, a)
			}
		}
		e.mu.RUnlock()
		e.tender.Changed(union, now)
	}
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Owned returns the owned addresses, in no particular order.
func (e *Engine) Owned() []netip.Addr {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]netip.Addr, 0, len(e.owned))
	for a := range e.owned {
		out = append(out, a)
	}
	return out
}

// Probe sends one probe for a now. It takes no lock: a net.PacketConn may be written from
// several goroutines at once, and a probe claims no address, so the guarantee of Set does not
// concern it.
func (e *Engine) Probe(a netip.Addr) error {
	u, ok := e.codec.Usable(a)
	if !ok {
		return fmt.Errorf("%s: cannot probe %s: not a unicast address of the speaker's family", e.cfg.Name, a)
	}
	frame := e.codec.Probe(u)
	if len(frame) < ethHeaderLen {
		e.c.sendErrors.Add(1)
		return fmt.Errorf("%s: cannot build a probe for %s", e.cfg.Name, u)
	}
	if _, err := e.conn.WriteTo(frame, linkAddr(frame)); err != nil {
		e.c.sendErrors.Add(1)
		return fmt.Errorf("%s: probing %s: %w", e.cfg.Name, u, err)
	}
	e.c.probes.Add(1)
	return nil
}

// Stats returns a snapshot of the counters.
func (e *Engine) Stats() Counts {
	c := &e.c
	return Counts{
		Received:       c.received.Load(),
		RequestsSeen:   c.requests.Load(),
		RepliesSent:    c.replies.Load(),
		GratuitousSent: c.gratuitous.Load(),
		Ignored:        c.ignored.Load(),
		Malformed:      c.malformed.Load(),
		Conflicts:      c.conflicts.Load(),
		SendErrors:     c.sendErrors.Load(),
		ReadErrors:     c.readErrors.Load(),
		ProbesSent:     c.probes.Load(),
		ForeignSeen:    c.foreign.Load(),
	}
}

// Close closes the connection. Run then returns.
func (e *Engine) Close() error { return e.conn.Close() }

// Handle handles one frame read from the connection: it answers a question for an owned
// address, counts conflicts, reports foreign claims and counts everything else. It never
// retains b. Run calls it for every frame; tests and fuzz targets call it directly.
func (e *Engine) Handle(b []byte) {
	defer e.c.received.Add(1)
	if len(b) < ethHeaderLen {
		e.c.malformed.Add(1)
		return
	}
	dst, src := net.HardwareAddr(b[0:6]), net.HardwareAddr(b[6:12])
	if binary.BigEndian.Uint16(b[12:14]) != e.etherType ||
		// Our own frame: an outgoing frame looped back to the socket, or the kernel's own.
		bytes.Equal(src, e.mac) ||
		// Unicast to another station: seen only in promiscuous mode, not for us.
		(dst[0]&1 == 0 && !bytes.Equal(dst, e.mac)) {
		e.c.ignored.Add(1)
		return
	}
	m := e.codec.Parse(b)
	switch {
	case m.Kind == Ignored || (m.Kind == Valid && bytes.Equal(m.MAC, e.mac)):
		e.c.ignored.Add(1)
		return
	case m.Kind != Valid:
		e.c.malformed.Add(1)
		return
	}
	if m.Request {
		e.c.requests.Add(1)
	}
	var reports [2]Foreign
	n := e.decide(&m, &reports)
	// OnForeign runs without the lock, so that it may call Set or Watch.
	for _, r := range reports[:n] {
		e.c.foreign.Add(1)
		if e.cfg.OnForeign != nil {
			r.MAC = bytes.Clone(r.MAC) // m.MAC points into the read buffer
			e.cfg.OnForeign(r)
		}
	}
}

// decide answers m if it asks for an owned address and fills reports with its foreign claims;
// it returns how many there are. Ownership is checked and the answer written under the read
// lock, so an address removed by Set is never answered after Set returns.
func (e *Engine) decide(m *Message, reports *[2]Foreign) int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	n := 0
	if m.Claims.IsValid() {
		_, owned := e.owned[m.Claims]
		if _, watched := e.watched[m.Claims]; owned || watched {
			reports[n] = Foreign{Addr: m.Claims, MAC: m.MAC, Announce: m.Announces}
			n++
		}
		if owned {
			// Another MAC speaks as one of our addresses: a conflict. Never answer it (answering
			// an announcement would only make the neighbours flap between the two claimants).
			e.c.conflicts.Add(1)
			e.c.ignored.Add(1)
			return n
		}
	}
	_, asked := e.owned[m.Asks]
	if m.Probes.IsValid() {
		_, watched := e.watched[m.Probes]
		if _, owned := e.owned[m.Probes]; owned || watched {
			reports[n] = Foreign{Addr: m.Probes, MAC: m.MAC, Probe: true}
			n++
		}
	}
	if !m.Asks.IsValid() || !asked {
		e.c.ignored.Add(1)
		return n
	}
	e.write(e.codec.Answer(m), &e.c.replies)
	return n
}

// write sends one frame to the MAC it is addressed to and counts it in ok or in SendErrors.
func (e *Engine) write(frame []byte, ok *atomic.Uint64) {
	if len(frame) < ethHeaderLen {
		e.c.sendErrors.Add(1)
		return
	}
	if _, err := e.conn.WriteTo(frame, linkAddr(frame)); err != nil {
		e.c.sendErrors.Add(1)
		return
	}
	ok.Add(1)
}

// linkAddr is the address handed to WriteTo: the frame's destination MAC, as the AF_PACKET
// connection of Listen expects it. With a SOCK_RAW socket the kernel sends the frame as built
// and uses only the interface the socket is bound to; other connections may ignore it.
func linkAddr(frame []byte) net.Addr {
	return &packet.Addr{HardwareAddr: bytes.Clone(frame[0:6])}
}
