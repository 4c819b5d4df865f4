package l2

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/election"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/membership"
)

// The simulation runs N real Cores in one process over a simulated clock, a simulated UDP
// network (loss, delay, reordering, one-way blocks), a simulated Ethernet (cables, partitions,
// probes, gratuitous announcements, kernels answering ARP, strangers) and simulated API views
// (lagging, frozen), with an attacker injecting garbage, foreign-key and replayed datagrams.
// Every heartbeat is really sealed and opened.

const simLink = "ARP/"

var simBase = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

type simNode struct {
	name       string
	addr       netip.Addr
	mac        net.HardwareAddr
	core       *Core
	cable      bool
	group      int
	offset     time.Duration // the node's clock minus the simulation's
	kernelARP  bool          // its kernel answers ARP for every VIP (IPVS without strictARP)
	apiCut     bool          // its API view is frozen
	view       simTruth
	generation int // bumps on every restart, so stale timers of a dead process do nothing
	nextStep   time.Time
	cannot     []string // links it cannot answer on
	events     []simRecord
}

type simRecord struct {
	at    time.Time
	event Event
}

func (n *simNode) up() bool { return n.core != nil }

// simTruth is what the API says.
type simTruth struct {
	cordoned   map[string]bool
	candidates map[netip.Addr]map[string]bool // externalTrafficPolicy: Local endpoints; nil = any
	version    int
}

func (t simTruth) clone() simTruth {
	c := simTruth{cordoned: map[string]bool{}, candidates: map[netip.Addr]map[string]bool{}, version: t.version}
	for k, v := range t.cordoned {
		c.cordoned[k] = v
	}
	for k, v := range t.candidates {
		if v == nil {
			c.candidates[k] = nil
			continue
		}
		m := map[string]bool{}
		for n, ok := range v {
			m[n] = ok
		}
		c.candidates[k] = m
	}
	return c
}

type simEvent struct {
	at  time.Time
	seq int
	fn  func()
}

type eventHeap []simEvent

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(simEvent)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

type captured struct {
	to   int
	from netip.Addr
	b    []byte
}

type world struct {
	seed   uint64
	rng    *rand.Rand
	now    time.Time
	nodes  []*simNode
	byName map[string]int
	vips   []netip.Addr
	truth  simTruth
	cfg    Config

	udpBlocked map[[2]int]bool // [from, to]
	udpBlocks  map[[2]int]int  // how many faults block each link
	loss       float64
	wireLoss   float64
	maxDelay   time.Duration
	viewLag    time.Duration
	stranger   map[netip.Addr]bool // a host outside the cluster answers for the VIP

	attack   bool
	captures []captured

	sealer, foreign *membership.Sealer

	queue  eventHeap
	seq    int
	trace  []string
	failed []string

	lastFault      time.Time
	lastViewChange time.Time
	owners         map[netip.Addr]string // the sole owner at the last check, for stickiness
	ownerOK        map[netip.Addr]bool
	stickyGen      map[netip.Addr]int
	healthySince   map[netip.Addr]time.Time
	prevOwners     map[netip.Addr]map[int]bool
	stats          simStats
}

type simStats struct {
	heartbeats, dropped, forgedRejected, probes, takeovers int
}

func newWorld(seed uint64, nodes, vips int) *world {
	w := &world{
		seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: simBase,
		byName: map[string]int{}, udpBlocked: map[[2]int]bool{}, udpBlocks: map[[2]int]int{}, stranger: map[netip.Addr]bool{},
		maxDelay: 2 * time.Millisecond, viewLag: 50 * time.Millisecond,
		owners: map[netip.Addr]string{}, ownerOK: map[netip.Addr]bool{}, stickyGen: map[netip.Addr]int{}, healthySince: map[netip.Addr]time.Time{}, prevOwners: map[netip.Addr]map[int]bool{},
	}
	w.cfg = DefaultConfig("")
	key := make([]byte, 32)
	other := make([]byte, 32)
	for i := range key {
		key[i] = byte(w.rng.Uint32())
		other[i] = byte(w.rng.Uint32())
	}
	w.sealer, _ = membership.NewSealer(membership.KeyRing{Current: key})
	w.foreign, _ = membership.NewSealer(membership.KeyRing{Current: other})
	w.truth = simTruth{cordoned: map[string]bool{}, candidates: map[netip.Addr]map[string]bool{}}
	for i := range vips {
		a := netip.AddrFrom4([4]byte{198, 18, 0, byte(240 + i)})
		w.vips = append(w.vips, a)
		w.truth.candidates[a] = nil
	}
	for i := range nodes {
		n := &simNode{
			name: fmt.Sprintf("node-%d", i+1), addr: netip.AddrFrom4([4]byte{198, 18, 0, byte(11 + i)}),
			mac: net.HardwareAddr{0x02, 0, 0, 0, 0, byte(i + 1)}, cable: true,
			offset: time.Duration(w.rng.Int64N(int64(time.Hour))) - 30*time.Minute,
		}
		w.byName[n.name] = i
		w.nodes = append(w.nodes, n)
	}
	for i := range w.nodes {
		w.nodes[i].view = w.truth.clone()
	}
	return w
}

func (w *world) logf(format string, args ...any) {
	line := fmt.Sprintf("%8.3fs ", w.now.Sub(simBase).Seconds()) + fmt.Sprintf(format, args...)
	w.trace = append(w.trace, line)
	if len(w.trace) > 400 {
		w.trace = w.trace[len(w.trace)-300:]
	}
}

func (w *world) fail(format string, args ...any) {
	if len(w.failed) < 5 {
		w.failed = append(w.failed, fmt.Sprintf("%.3fs: ", w.now.Sub(simBase).Seconds())+fmt.Sprintf(format, args...))
	}
}

func (w *world) at(t time.Time, fn func()) {
	w.seq++
	heap.Push(&w.queue, simEvent{at: t, seq: w.seq, fn: fn})
}

func (w *world) after(d time.Duration, fn func()) { w.at(w.now.Add(d), fn) }

// onNode schedules fn for node i's current process only.
func (w *world) onNode(i int, d time.Duration, fn func(*simNode)) {
	n := w.nodes[i]
	gen := n.generation
	w.after(d, func() {
		if n.generation == gen && n.up() {
			fn(n)
		}
	})
}

func (w *world) local(n *simNode) time.Time { return w.now.Add(n.offset) }

func (w *world) delay() time.Duration {
	return 50*time.Microsecond + time.Duration(w.rng.Int64N(int64(w.maxDelay)))
}

// wireDelay is the one-way delay of an Ethernet frame. It stays well under ProbeWait: the wire
// witness assumes an ARP or NDP round trip on the LAN (a few hundred microseconds, or
// milliseconds on a loaded node) is shorter than the probe's wait.
func (w *world) wireDelay() time.Duration {
	return 50*time.Microsecond + time.Duration(w.rng.Int64N(int64(5*time.Millisecond)))
}

// run processes events until the simulated time reaches end, checking invariants as it goes.
func (w *world) run(end time.Time) {
	nextCheck := w.now
	for len(w.queue) > 0 && len(w.failed) == 0 {
		e := heap.Pop(&w.queue).(simEvent)
		if e.at.After(end) {
			heap.Push(&w.queue, e)
			break
		}
		for !nextCheck.After(e.at) && len(w.failed) == 0 {
			w.now = nextCheck
			w.check()
			nextCheck = nextCheck.Add(10 * time.Millisecond)
		}
		if len(w.failed) > 0 {
			return
		}
		w.now = e.at
		e.fn()
	}
	if len(w.failed) > 0 {
		return
	}
	w.now = end
	w.check()
}

// members is the member list of a node's API view.
func (w *world) members(view simTruth) []Member {
	out := make([]Member, 0, len(w.nodes))
	for _, n := range w.nodes {
		out = append(out, Member{Node: election.Node{Name: n.name, Unschedulable: view.cordoned[n.name]}, Addrs: []netip.Addr{n.addr}, Voter: true})
	}
	return out
}

func (w *world) vipList(view simTruth) []VIP {
	out := make([]VIP, 0, len(w.vips))
	for _, a := range w.vips {
		out = append(out, VIP{VIP: election.VIP{Addr: a, Candidates: view.candidates[a]}, Links: []string{simLink}})
	}
	return out
}

func (w *world) start(i int) {
	n := w.nodes[i]
	n.generation++
	c, err := New(w.withSelf(n.name), w.rng.Uint64(), w.local(n))
	if err != nil {
		panic(err)
	}
	n.core = c
	c.SetView(w.members(n.view), w.vipList(n.view), !n.apiCut)
	c.SetLinks(n.cannot, map[string]net.HardwareAddr{simLink: n.mac})
	c.SetPrimaryLink(w.local(n), n.cable)
	w.logf("%s starts (clock %+v)", n.name, n.offset.Round(time.Millisecond))
	phase := time.Duration(w.rng.Int64N(int64(50 * time.Millisecond)))
	var tick func(*simNode)
	tick = func(n *simNode) {
		w.sendHeartbeats(i)
		w.step(i)
		w.onNode(i, 50*time.Millisecond+time.Duration(w.rng.Int64N(int64(2*time.Millisecond))), tick)
	}
	w.onNode(i, phase, tick)
}

func (w *world) withSelf(name string) Config {
	c := w.cfg
	c.Self = name
	return c
}

func (w *world) crash(i int) {
	n := w.nodes[i]
	if !n.up() {
		return
	}
	w.logf("%s crashes", n.name)
	n.core = nil
	n.generation++
}

func (w *world) terminate(i int) {
	n := w.nodes[i]
	if !n.up() {
		return
	}
	w.logf("%s leaves (SIGTERM)", n.name)
	n.core.Leave()
	w.step(i)
	for range 3 {
		w.sendHeartbeats(i)
	}
	n.core = nil
	n.generation++
}

func (w *world) udpOK(from, to int) bool {
	a, b := w.nodes[from], w.nodes[to]
	return a.cable && b.cable && a.group == b.group && !w.udpBlocked[[2]int{from, to}]
}

func (w *world) wireOK(from, to int) bool {
	a, b := w.nodes[from], w.nodes[to]
	return a.cable && b.cable && a.group == b.group
}

func (w *world) sendHeartbeats(i int) {
	n := w.nodes[i]
	for _, o := range n.core.Heartbeats(w.local(n)) {
		j, ok := w.byName[o.To]
		if !ok {
			continue
		}
		b, err := w.sealer.Seal(nil, o.Heartbeat)
		if err != nil {
			w.fail("%s cannot seal a heartbeat: %v", n.name, err)
			return
		}
		w.stats.heartbeats++
		if !w.udpOK(i, j) || w.rng.Float64() < w.loss {
			w.stats.dropped++
			continue
		}
		if w.attack && w.rng.IntN(8) == 0 {
			// A pod on the receiver's segment records what it can see.
			w.captures = append(w.captures, captured{to: j, from: n.addr, b: b})
			if len(w.captures) > 2000 {
				w.captures = w.captures[1000:]
			}
		}
		w.deliver(j, n.addr, b, w.delay())
		if w.rng.IntN(200) == 0 { // a duplicate
			w.deliver(j, n.addr, b, w.delay()+5*time.Millisecond)
		}
	}
}

func (w *world) deliver(j int, from netip.Addr, b []byte, d time.Duration) {
	w.onNode(j, d, func(n *simNode) {
		h, err := w.sealer.Open(b)
		if err != nil {
			w.stats.forgedRejected++
			return
		}
		changed, err := n.core.Receive(w.local(n), h, from)
		if err == nil && changed {
			w.step(j)
		}
	})
}

// step runs a node's Step and carries out its output on the simulated wire.
func (w *world) step(i int) {
	n := w.nodes[i]
	before := make(map[netip.Addr]bool, len(n.core.owned))
	for a := range n.core.owned {
		before[a] = true
	}
	out := n.core.Step(w.local(n))
	after := n.core.owned
	for _, e := range out.Events {
		w.logf("%s: %v %v %s %s %s", n.name, e.Kind, e.VIP, e.Peer, e.MAC, e.Reason)
		n.events = append(n.events, simRecord{at: w.now, event: e})
	}
	for _, p := range out.Reannounce {
		n.events = append(n.events, simRecord{at: w.now, event: Event{Kind: reannounced, VIP: p.Addr}})
	}
	for a := range after {
		if !before[a] {
			w.stats.takeovers++
			w.broadcastGratuitous(i, a)
		}
	}
	for _, p := range out.Reannounce {
		w.broadcastGratuitous(i, p.Addr)
	}
	for _, p := range out.Probes {
		w.logf("%s probes %v", n.name, p.Addr)
		w.stats.probes++
		w.broadcastProbe(i, p.Addr)
	}
	if d := n.core.NextDeadline(); !d.IsZero() {
		simAt := d.Add(-n.offset)
		if n.nextStep.IsZero() || simAt.Before(n.nextStep) || !n.nextStep.After(w.now) {
			n.nextStep = simAt
			w.onNode(i, max(simAt.Sub(w.now), 0), func(*simNode) {
				w.nodes[i].nextStep = time.Time{}
				w.step(i)
			})
		}
	}
}

// answers reports whether node j answers ARP for a (its announcer owns it, or its kernel does).
func (w *world) answers(j int, a netip.Addr) bool {
	n := w.nodes[j]
	if n.kernelARP {
		return true
	}
	if !n.up() {
		return false
	}
	_, ok := n.core.owned[a]
	return ok
}

func (w *world) broadcastProbe(i int, a netip.Addr) {
	prober := w.nodes[i]
	for j, n := range w.nodes {
		if j == i || !w.wireOK(i, j) || w.rng.Float64() < w.wireLoss {
			continue
		}
		if w.answers(j, a) {
			w.logf("%s answers %s's probe for %v", n.name, prober.name, a)
			mac := n.mac
			w.onNode(i, 2*w.wireDelay(), func(p *simNode) {
				p.core.Observe(w.local(p), Foreign{Link: simLink, Addr: a, MAC: mac})
				w.step(i)
			})
		}
		if n.up() {
			if p, watching := n.core.probes[a]; watching && !p.blocked {
				mac := prober.mac
				w.onNode(j, w.wireDelay(), func(o *simNode) {
					o.core.Observe(w.local(o), Foreign{Link: simLink, Addr: a, MAC: mac, Probe: true})
					w.step(j)
				})
			}
		}
	}
	if w.stranger[a] {
		w.onNode(i, 2*w.wireDelay(), func(p *simNode) {
			p.core.Observe(w.local(p), Foreign{Link: simLink, Addr: a, MAC: net.HardwareAddr{0x02, 0xee, 0, 0, 0, 1}})
			w.step(i)
		})
	}
}

func (w *world) broadcastGratuitous(i int, a netip.Addr) {
	mac := w.nodes[i].mac
	for j, n := range w.nodes {
		if j == i || !w.wireOK(i, j) || !n.up() || w.rng.Float64() < w.wireLoss {
			continue
		}
		_, owns := n.core.owned[a]
		p, probing := n.core.probes[a]
		if owns || probing && !p.blocked {
			w.onNode(j, w.wireDelay(), func(o *simNode) {
				o.core.Observe(w.local(o), Foreign{Link: simLink, Addr: a, MAC: mac, Announce: true})
				w.step(j)
			})
		}
	}
}

// publish makes the truth reach each node's view after a lag, except nodes cut from the API.
func (w *world) publish() {
	w.truth.version++
	w.lastViewChange = w.now
	snapshot := w.truth.clone()
	for i, n := range w.nodes {
		if n.apiCut {
			continue
		}
		lag := time.Duration(w.rng.Int64N(int64(w.viewLag) + 1))
		w.after(lag, func() {
			if w.nodes[i].apiCut || snapshot.version <= w.nodes[i].view.version {
				return
			}
			w.setView(i, snapshot)
		})
	}
}

func (w *world) setView(i int, v simTruth) {
	n := w.nodes[i]
	n.view = v
	if n.up() {
		n.core.SetView(w.members(v), w.vipList(v), !n.apiCut)
		w.step(i)
	}
}

// reannounced marks a re-announcement in a node's event record (not a core event kind).
const reannounced EventKind = 100

func (w *world) dumpTrace() string {
	var b strings.Builder
	for _, l := range w.trace[max(0, len(w.trace)-120):] {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteString("final state:\n")
	for _, n := range w.nodes {
		if !n.up() {
			fmt.Fprintf(&b, "  %s down\n", n.name)
			continue
		}
		now := w.local(n)
		fmt.Fprintf(&b, "  %s %v owns %v\n", n.name, n.core.State(), n.core.Owned())
		for _, m := range n.core.det.Members() {
			if p, ok := n.core.det.Peer(m); ok {
				fmt.Fprintf(&b, "    %s alive=%v connected=%v %v claims=%v\n", m, n.core.det.Alive(now, m), n.core.det.Connected(now, m), p.Last.State, p.Last.Claims)
			}
		}
	}
	return b.String()
}

// setCannot changes the links node i cannot answer on.
func (w *world) setCannot(i int, cannot []string) {
	n := w.nodes[i]
	n.cannot = cannot
	if n.up() {
		n.core.SetLinks(cannot, map[string]net.HardwareAddr{simLink: n.mac})
		w.step(i)
	}
}

// owned lists node i's VIPs.
func (w *world) owned(i int) []netip.Addr {
	n := w.nodes[i]
	if !n.up() {
		return nil
	}
	var out []netip.Addr
	for a := range n.core.Owned() {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// ownerOf returns the single owner of a, or "" and false when there is not exactly one.
func (w *world) ownerOf(a netip.Addr) (string, bool) {
	o := w.ownerNames(a)
	if len(o) != 1 {
		return "", false
	}
	return o[0], true
}

// assignment maps each VIP to its single owner ("" if none or several).
func (w *world) assignment() map[netip.Addr]string {
	out := map[netip.Addr]string{}
	for _, a := range w.vips {
		out[a], _ = w.ownerOf(a)
	}
	return out
}

// ownersIn lists the nodes answering for a (announcer-owned) grouped by wire component.
func (w *world) ownerNames(a netip.Addr) []string {
	var out []string
	for _, n := range w.nodes {
		if n.up() && n.cable {
			if _, ok := n.core.Owned()[a]; ok {
				out = append(out, n.name)
			}
		}
	}
	slices.Sort(out)
	return out
}
