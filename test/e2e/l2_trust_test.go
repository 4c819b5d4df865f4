package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/election"
	"github.com/baremetal-dev/cloud-provider-baremetal/test/lab"
)

// The tests of this file check, in the lab and with the shipped defaults, what README's "The
// announcer (layer 2)" promises of the authenticated membership: a host without the key changes
// nothing; a node that cannot hear takes nothing; an owner another node cannot hear keeps its
// VIP because the wire says it still answers; a node's kernel answering for a VIP is reported;
// a MAC change is followed; a cold start spreads the VIPs.

// TestForgedHeartbeatsMoveNothing: heartbeats recorded on the LAN and sent again from lab-client
// (a host without the key), as they were, with a byte flipped, as garbage, and with the source
// address of the node that sent them, are all dropped and counted, and nothing moves.
func TestForgedHeartbeatsMoveNothing(t *testing.T) {
	vip := lab.DemoVIP.String()
	waitHealthy(t, 15*time.Second)
	owner := waitSingleOwner(t, vip, 10*time.Second)

	grams := captureHeartbeats(t, 240, 15*time.Second)
	pairs := map[[2]string]int{}
	for _, d := range grams {
		from, to := nodeByAddr4(d.src.Addr()), nodeByAddr4(d.dst.Addr())
		if from == "" || to == "" || from == to || d.dst.Port() != heartbeatPort {
			t.Fatalf("captured a datagram %s -> %s that is no heartbeat between two nodes", d.src, d.dst)
		}
		pairs[[2]string{from, to}]++
	}
	if want := len(lab.Nodes) * (len(lab.Nodes) - 1); len(pairs) != want {
		t.Fatalf("captured %d heartbeats between %d ordered pairs of nodes, want all %d: %v", len(grams), len(pairs), want, pairs)
	}
	t.Logf("captured %d heartbeats on %s: %v", len(grams), lab.LANBridge, pairs)

	changes := waitOwnershipQuiet(t)
	before := scrapeAll(t)
	f := newForger(t)
	// Every 20 ms, one recorded heartbeat goes to every node (a) as it was, from lab-client's
	// address (wrong-source where it is addressed to, not-for-us or own elsewhere), (b) with a
	// byte flipped, (c) as garbage, alone and behind the heartbeat's valid prefix (key id
	// included), all three unauthenticated; and (d) as it was to its receiver, from the address
	// of its sender: authentic, from the right source, and old (stale).
	sentUnauth, sentSpoofed := map[string]int{}, map[string]int{}
	addrs := map[string]netip.AddrPort{}
	for _, n := range lab.Nodes {
		addrs[n] = netip.AddrPortFrom(nodeAddr4(t, n), heartbeatPort)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				done <- nil
				return
			case <-tick.C:
			}
			d := grams[i%len(grams)]
			flipped := slices.Clone(d.payload)
			flipped[len(flipped)/2] ^= 0x01
			prefixed := append(slices.Clone(d.payload[:6]), randomBytes(len(d.payload)-6)...)
			for _, n := range lab.Nodes {
				to := addrs[n]
				for _, p := range [][]byte{d.payload, flipped, randomBytes(100), prefixed} {
					if err := f.send(to, p); err != nil {
						done <- fmt.Errorf("sending to %s from %s: %w", to, lab.ClientNamespace, err)
						return
					}
				}
				sentUnauth[n] += 3
			}
			// The replay, from the address of its sender to its receiver: authentic, and old.
			if err := f.spoof(d.src, d.dst, d.payload); err != nil {
				done <- fmt.Errorf("sending %s -> %s from %s: %w", d.src, d.dst, lab.ClientNamespace, err)
				return
			}
			sentSpoofed[nodeByAddr4(d.dst.Addr())]++
		}
	}()
	assertStableOwner(t, vip, owner, 5*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the last datagrams reach the counters
	after := scrapeAll(t)
	for _, n := range lab.Nodes {
		delta := func(series string) float64 { return after[n][series] - before[n][series] }
		t.Logf("%s: sent %d unauthenticated and %d spoofed replays; dropped unauthenticated +%v, stale +%v, wrong-source +%v, not-for-us +%v, own +%v",
			n, sentUnauth[n], sentSpoofed[n], delta(mDropped("unauthenticated")), delta(mDropped("stale")),
			delta(mDropped("wrong-source")), delta(mDropped("not-for-us")), delta(mDropped("own")))
		if got := delta(mDropped("unauthenticated")); got < float64(sentUnauth[n])/2 {
			t.Errorf("%s counted %v unauthenticated heartbeats, want about the %d sent", n, got, sentUnauth[n])
		}
		if got := delta(mDropped("stale")); sentSpoofed[n] > 0 && got < float64(sentSpoofed[n])/2 {
			t.Errorf("%s counted %v stale heartbeats, want about the %d spoofed replays sent", n, got, sentSpoofed[n])
		}
		if delta(mDropped("wrong-source")) == 0 {
			t.Errorf("%s counted no heartbeat from a wrong source, though replays addressed to it came from %s", n, lab.ClientNamespace)
		}
		if after[n][mOwnershipChanges] != changes[n] {
			t.Errorf("%s: ownership changes went from %v to %v while forged heartbeats arrived", n, changes[n], after[n][mOwnershipChanges])
		}
		if after[n][mVIPsOwned] != before[n][mVIPsOwned] {
			t.Errorf("%s: owns %v VIPs, %v before the forged heartbeats", n, after[n][mVIPsOwned], before[n][mVIPsOwned])
		}
		if after[n][mPeersConnected] != float64(len(lab.Nodes)-1) {
			t.Errorf("%s: connected to %v peers after the forged heartbeats, want %d", n, after[n][mPeersConnected], len(lab.Nodes)-1)
		}
	}
}

// TestDeafNodeAnswersNothingNew: a node whose firewall drops inbound heartbeats (it hears nobody,
// everybody hears it) answers for none of the VIPs created meanwhile; each has one owner.
func TestDeafNodeAnswersNothingNew(t *testing.T) {
	vip := lab.DemoVIP.String()
	waitHealthy(t, 15*time.Second)
	owner := waitSingleOwner(t, vip, 10*time.Second)
	deaf := otherNodes(owner)[0]
	changes := waitOwnershipQuiet(t)
	before := scrapeAll(t)

	heal := dropHeartbeats(t, deaf, netip.Addr{})
	waitMetric(t, deaf, 2*time.Second, "deaf to every peer", func(m map[string]float64) bool { return m[mPeersAlive] == 0 })
	for _, n := range otherNodes(deaf) {
		waitMetric(t, n, 2*time.Second, "hearing "+deaf+" one way only", func(m map[string]float64) bool {
			return m[mPeersAlive] == 2 && m[mPeersConnected] == 1
		})
	}

	vips := trustServices(t, "deaf", 6)
	for _, v := range vips {
		if got := waitSingleOwner(t, v, 15*time.Second); got == deaf {
			t.Fatalf("%s (new, created while %s is deaf) is answered by %s", v, deaf, deaf)
		}
	}
	owners := map[string]string{}
	for range 3 {
		for _, v := range append(slices.Clone(vips), vip) {
			got := arpingOwners(t, v, 2)
			if len(got) != 1 || got[0] == deaf {
				t.Fatalf("%s answered from %v, want one node other than the deaf %s", v, got, deaf)
			}
			if prev, ok := owners[v]; ok && prev != got[0] {
				t.Fatalf("%s moved from %s to %s", v, prev, got[0])
			}
			owners[v] = got[0]
		}
	}
	if owners[vip] != owner {
		t.Errorf("the demo VIP moved from %s to %s", owner, owners[vip])
	}
	t.Logf("with %s deaf: %v", deaf, owners)
	after := scrapeAll(t)
	if after[deaf][mOwnershipChanges] != changes[deaf] || after[deaf][mVIPsOwned] != before[deaf][mVIPsOwned] {
		t.Errorf("the deaf %s took or gave up VIPs: ownership changes %v -> %v, VIPs owned %v -> %v", deaf,
			changes[deaf], after[deaf][mOwnershipChanges], before[deaf][mVIPsOwned], after[deaf][mVIPsOwned])
	}
	heal()
	waitHealthy(t, 10*time.Second)
}

// TestAsymmetricDrop: the node that would take the demo VIP over stops hearing its owner (and
// only it), so for it the owner is dead; it has a quorum with the third node, probes, finds the
// owner answering on the wire, and waits. One MAC answers throughout.
func TestAsymmetricDrop(t *testing.T) {
	vip := lab.DemoVIP.String()
	waitHealthy(t, 15*time.Second)
	a := waitSingleOwner(t, vip, 10*time.Second)
	// B: of the two others, the rendezvous winner, which takes the VIP once A is gone.
	others := otherNodes(a)
	b := others[0]
	if election.Score(lab.DemoVIP, others[1]) > election.Score(lab.DemoVIP, b) {
		b = others[1]
	}
	changes := waitOwnershipQuiet(t)
	before := scrapeAll(t)

	dropHeartbeats(t, b, nodeAddr4(t, a))
	waitMetric(t, b, 2*time.Second, "deaf to "+a+" only", func(m map[string]float64) bool {
		return m[mPeersAlive] == 1 && m[mPeersConnected] == 1
	})
	assertStableOwner(t, vip, a, 5*time.Second)

	after := scrapeAll(t)
	for _, n := range lab.Nodes {
		if after[n][mOwnershipChanges] != changes[n] {
			t.Errorf("%s: ownership changes went from %v to %v while %s could not hear %s", n, changes[n], after[n][mOwnershipChanges], b, a)
		}
	}
	// The wire kept it from taking over: its takeover probes were answered.
	series := mConflicts("probe-answered")
	if after[b][series] <= before[b][series] {
		t.Errorf("%s: %s stayed at %v: it never probed for %s, so the drop did not make %s look dead to it", b, series, after[b][series], vip, a)
	}
	t.Logf("%s kept %s; %s's takeover probes answered %v times", a, vip, b, after[b][series]-before[b][series])
}

// TestKernelAnswerReported: a node that does not own the demo VIP gets it on an interface, so
// its kernel answers ARP for it. The owner's self-probe sees that: a Warning KernelAnswersARP
// event on the Service names the node, and the owner keeps the VIP.
func TestKernelAnswerReported(t *testing.T) {
	vip := lab.DemoVIP.String()
	waitHealthy(t, 15*time.Second)
	owner := waitSingleOwner(t, vip, 10*time.Second)
	x := otherNodes(owner)[0]
	if out, err := env.Exec(x, "cat", "/proc/sys/net/ipv4/conf/"+lab.LANInterface+"/arp_ignore"); err != nil || strings.TrimSpace(out) != "0" {
		t.Fatalf("%s: arp_ignore is %q (%v), want 0 for its kernel to answer ARP for any local address", x, out, err)
	}
	changes := waitOwnershipQuiet(t)
	before := scrapeAll(t)

	start := time.Now()
	if _, err := env.Exec(x, "ip", "addr", "add", vip+"/32", "dev", lab.LANInterface); err != nil {
		t.Fatal(err)
	}
	removed := false
	remove := func() {
		if !removed {
			removed = true
			if _, err := env.Exec(x, "ip", "addr", "del", vip+"/32", "dev", lab.LANInterface); err != nil {
				t.Errorf("removing %s from %s: %v", vip, x, err)
			}
		}
	}
	t.Cleanup(remove)
	// The fault is real: the kernel of x answers, beside the owner.
	deadline := time.Now().Add(2 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		if got = arpingOwners(t, vip, 2); slices.Contains(got, x) {
			break
		}
	}
	want := []string{owner, x}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("with %s on %s's %s, arping answered from %v, want %v", vip, x, lab.LANInterface, got, want)
	}

	msg := waitServiceEvent(t, demo, "KernelAnswersARP", start, 15*time.Second, "node "+x+" ", vip)
	t.Logf("after %s: %s", time.Since(start).Round(100*time.Millisecond), msg)
	if !strings.HasPrefix(msg, "Warning: ") {
		t.Errorf("the KernelAnswersARP event is not a Warning: %s", msg)
	}
	after := scrapeAll(t)
	if series := mConflicts("kernel"); after[owner][series] <= before[owner][series] {
		t.Errorf("%s: %s stayed at %v", owner, series, after[owner][series])
	}
	for _, n := range lab.Nodes {
		if after[n][mOwnershipChanges] != changes[n] {
			t.Errorf("%s: ownership changes went from %v to %v while %s's kernel answered for %s", n, changes[n], after[n][mOwnershipChanges], x, vip)
		}
	}
	remove()
	// The kernel's answers stop at once; the owner is the one it was.
	if got := waitSingleOwner(t, vip, 2*time.Second); got != owner {
		t.Fatalf("after removing %s from %s, %s answers for it, want %s", vip, x, got, owner)
	}
	assertStableOwner(t, vip, owner, time.Second)
}

// TestMACChangeFollowed: the owner's LAN interface changes its MAC while up (a bond failing over
// with fail_over_mac=active); within 2 s only the new MAC answers for the demo VIP.
func TestMACChangeFollowed(t *testing.T) {
	vip := lab.DemoVIP.String()
	waitHealthy(t, 15*time.Second)
	owner := waitSingleOwner(t, vip, 10*time.Second)
	oldMAC, err := env.NodeMAC(owner)
	if err != nil {
		t.Fatal(err)
	}
	newMAC := slices.Clone(oldMAC)
	newMAC[4] = 0xaa
	changes := waitOwnershipQuiet(t)

	t.Cleanup(func() { _ = env.RestoreNodeMAC(owner) })
	start := time.Now()
	if err := env.SetNodeMAC(owner, newMAC); err != nil {
		t.Fatal(err)
	}
	want := []string{newMAC.String()}
	var got []string
	for time.Since(start) < 2*time.Second {
		if got = arpingMACs(vip, 1); slices.Equal(got, want) {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("2 s after %s's MAC changed from %s to %s, arping for %s answers from %v", owner, oldMAC, newMAC, vip, got)
	}
	t.Logf("arping saw only %s's new MAC %s after %s", owner, newMAC, time.Since(start).Round(time.Millisecond))
	for range 3 {
		if got := arpingMACs(vip, 2); !slices.Equal(got, want) {
			t.Fatalf("arping for %s answers from %v, want only %s's new MAC %s", vip, got, owner, newMAC)
		}
	}
	// macsToNodes reads the nodes' MACs live: the new one maps to the owner.
	if got := arpingOwners(t, vip, 2); !slices.Equal(got, []string{owner}) {
		t.Fatalf("arpingOwners(%s) = %v, want [%s]", vip, got, owner)
	}
	// The membership survives: the kernel flushed the owner's neighbour entries with the change,
	// and its new ARP requests teach the peers the new MAC their heartbeats must go to.
	waitHealthy(t, 5*time.Second)

	if err := env.RestoreNodeMAC(owner); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	want = []string{oldMAC.String()}
	for time.Since(start) < 2*time.Second {
		if got = arpingMACs(vip, 1); slices.Equal(got, want) {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("2 s after %s's MAC went back to %s, arping for %s answers from %v", owner, oldMAC, vip, got)
	}
	waitHealthy(t, 5*time.Second)
	after := scrapeAll(t)
	for _, n := range lab.Nodes {
		if after[n][mOwnershipChanges] != changes[n] {
			t.Errorf("%s: ownership changes went from %v to %v while %s's MAC changed", n, changes[n], after[n][mOwnershipChanges], owner)
		}
	}
}

// TestColdStartSpreads: with every announcer stopped, all start again: within 5 s each of 12
// VIPs has one owner, its rendezvous winner, and each node owns at least 2 of them. Started all
// at once, and with one node half a second late: the others leave its share to it (the cold-start
// wait) instead of taking every VIP before it arrives.
func TestColdStartSpreads(t *testing.T) {
	waitHealthy(t, 15*time.Second)
	vips := trustServices(t, "cold", 12)
	for _, v := range vips {
		waitSingleOwner(t, v, 15*time.Second)
	}
	t.Run("all at once", func(t *testing.T) { coldStart(t, vips, "") })
	t.Run("one node late", func(t *testing.T) { coldStart(t, vips, lab.Nodes[len(lab.Nodes)-1]) })
}

// coldStart stops every announcer (SIGTERM), starts them all at once, or late 500 ms after the
// others, and checks 5 s after the first start that each VIP has one owner, its rendezvous
// winner, and each node owns at least 2 of them.
func coldStart(t *testing.T, vips []string, late string) {
	waitHealthy(t, 15*time.Second)
	for _, n := range lab.Nodes {
		signalAnnouncer(t, n, syscall.SIGTERM)
	}
	for _, v := range vips {
		if got := arpingOwners(t, v, 2); len(got) != 0 {
			t.Fatalf("with every announcer stopped, %s is answered from %v", v, got)
		}
	}
	var early []string
	for _, n := range lab.Nodes {
		if n != late {
			early = append(early, lab.AnnouncerComponent(n))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	errs := make(chan error, 2)
	go func() { errs <- env.StartAll(ctx, early...) }()
	go func() {
		if late == "" {
			errs <- nil
			return
		}
		time.Sleep(500 * time.Millisecond)
		errs <- env.Start(ctx, lab.AnnouncerComponent(late))
	}()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Until(start.Add(5 * time.Second)))

	perNode := map[string][]string{}
	var misplaced []string
	for _, v := range vips {
		got := arpingOwners(t, v, 2)
		if len(got) != 1 {
			t.Fatalf("5 s after a cold start, %s is answered from %v, want one node", v, got)
		}
		perNode[got[0]] = append(perNode[got[0]], v)
		if w := rendezvousWinner(netip.MustParseAddr(v)); w != got[0] {
			misplaced = append(misplaced, fmt.Sprintf("%s on %s (hash: %s)", v, got[0], w))
		}
	}
	t.Logf("5 s after a cold start (late: %q): %v", late, perNode)
	for _, n := range lab.Nodes {
		if len(perNode[n]) < 2 {
			t.Errorf("%s owns %d of the %d VIPs after a cold start, want at least 2: %v", n, len(perNode[n]), len(vips), perNode)
		}
	}
	if len(misplaced) > 0 {
		t.Errorf("after a cold start, VIPs are not on their rendezvous winners: %s", strings.Join(misplaced, ", "))
	}
	waitHealthy(t, 5*time.Second)
}

// rendezvousWinner is the lab node with the highest rendezvous score for addr.
func rendezvousWinner(addr netip.Addr) string {
	best := lab.Nodes[0]
	for _, n := range lab.Nodes[1:] {
		if election.Score(addr, n) > election.Score(addr, best) {
			best = n
		}
	}
	return best
}
