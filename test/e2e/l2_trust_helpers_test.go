package e2e

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"golang.org/x/sys/unix"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/test/framework"
	"github.com/baremetal-dev/cloud-provider-baremetal/test/lab"
)

// heartbeatPort is the announcers' shipped --heartbeat-port.
const heartbeatPort = 7473

// Metric series the trust tests read (see README, "The announcer (layer 2)").
const (
	mOwnershipChanges = "baremetal_announcer_ownership_changes_total"
	mVIPsOwned        = "baremetal_announcer_vips_owned"
	mPeersAlive       = "baremetal_announcer_peers_alive"
	mPeersConnected   = "baremetal_announcer_peers_connected"
	mMemberState      = "baremetal_announcer_member_state"
)

// mDropped is the series of heartbeats dropped for reason.
func mDropped(reason string) string {
	return `baremetal_announcer_heartbeats_dropped_total{reason="` + reason + `"}`
}

// mConflicts is the series of wire conflicts of kind.
func mConflicts(kind string) string {
	return `baremetal_announcer_wire_conflicts_total{kind="` + kind + `"}`
}

var metricsClient = &http.Client{Timeout: time.Second}

// scrapeAnnouncer reads a node's announcer metrics over the management link
// (http://198.18.254.1N:7472/metrics, reachable from the host): every sample by its series as
// exposed, name and labels (`…_heartbeats_dropped_total{reason="stale"}`). A series never
// incremented is absent, and reads as 0.
func scrapeAnnouncer(node string) (map[string]float64, error) {
	h, err := lab.Node(node)
	if err != nil {
		return nil, err
	}
	resp, err := metricsClient.Get("http://" + net.JoinHostPort(h.Management.String(), "7472") + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics of %s: %s", node, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, nil
}

// scrapeAll reads every node's announcer metrics, by node.
func scrapeAll(t testing.TB) map[string]map[string]float64 {
	t.Helper()
	out := map[string]map[string]float64{}
	for _, n := range lab.Nodes {
		m, err := scrapeAnnouncer(n)
		if err != nil {
			t.Fatalf("reading the announcer metrics of %s: %v", n, err)
		}
		out[n] = m
	}
	return out
}

// waitHealthy waits until every announcer is active and connected both ways to all the others:
// the state each trust test starts from, and leaves the lab in.
func waitHealthy(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var why string
	for time.Now().Before(deadline) {
		why = ""
		for _, n := range lab.Nodes {
			m, err := scrapeAnnouncer(n)
			switch {
			case err != nil:
				why = err.Error()
			case m[mMemberState] != 2:
				why = fmt.Sprintf("%s has member state %v, want 2 (active)", n, m[mMemberState])
			case m[mPeersConnected] != float64(len(lab.Nodes)-1):
				why = fmt.Sprintf("%s is connected to %v peers, want %d", n, m[mPeersConnected], len(lab.Nodes)-1)
			}
			if why != "" {
				break
			}
		}
		if why == "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the announcers are not all active and connected after %s: %s", timeout, why)
}

// waitOwnershipQuiet waits until no announcer's ownership_changes counter has moved for a
// second (a previous test's Services may still be going away) and returns the counters by node.
func waitOwnershipQuiet(t testing.TB) map[string]float64 {
	t.Helper()
	read := func() map[string]float64 {
		out := map[string]float64{}
		for n, m := range scrapeAll(t) {
			out[n] = m[mOwnershipChanges]
		}
		return out
	}
	last, since := read(), time.Now()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		now := read()
		if !mapsEqual(now, last) {
			last, since = now, time.Now()
			continue
		}
		if time.Since(since) >= time.Second {
			return now
		}
	}
	t.Fatalf("the announcers' ownership keeps changing: %v", last)
	return nil
}

func mapsEqual(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// otherNodes are the lab nodes except those named.
func otherNodes(except ...string) []string {
	var out []string
	for _, n := range lab.Nodes {
		if !slices.Contains(except, n) {
			out = append(out, n)
		}
	}
	return out
}

// nodeAddr4 is a node's LAN IPv4 address (its InternalIP, which heartbeats are bound to).
func nodeAddr4(t testing.TB, node string) netip.Addr {
	t.Helper()
	h, err := lab.Node(node)
	if err != nil {
		t.Fatal(err)
	}
	return h.IPv4
}

// nodeByAddr4 maps a LAN IPv4 address to its node ("" for another host).
func nodeByAddr4(a netip.Addr) string {
	for _, n := range lab.Nodes {
		if h, _ := lab.Node(n); h.IPv4 == a {
			return n
		}
	}
	return ""
}

// trustTable is the nftables table the trust tests add to a node namespace.
const trustTable = "e2e-trust"

// dropHeartbeats makes node deaf to heartbeats, as a host firewall would: an nftables rule in
// its namespace drops inbound UDP to the heartbeat port, from every source, or only from the
// address from when it is valid. The returned function removes the rule (also done when the
// test ends).
func dropHeartbeats(t *testing.T, node string, from netip.Addr) (remove func()) {
	t.Helper()
	match := fmt.Sprintf("udp dport %d", heartbeatPort)
	if from.IsValid() {
		match = "ip saddr " + from.String() + " " + match
	}
	for _, cmd := range []string{
		"add table inet " + trustTable,
		"add chain inet " + trustTable + " input { type filter hook input priority filter; policy accept; }",
		"add rule inet " + trustTable + " input " + match + " counter drop",
	} {
		if _, err := env.Exec(node, "nft", cmd); err != nil {
			t.Fatalf("nft in %s: %v", node, err)
		}
	}
	removed := false
	remove = func() {
		if removed {
			return
		}
		removed = true
		if _, err := env.Exec(node, "nft", "delete table inet "+trustTable); err != nil {
			t.Errorf("removing the nftables table of %s: %v", node, err)
		}
	}
	t.Cleanup(remove)
	return remove
}

// waitMetric waits until pred holds for a node's metrics, and fails with what describes them.
func waitMetric(t testing.TB, node string, timeout time.Duration, what string, pred func(map[string]float64) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last map[string]float64
	var err error
	for time.Now().Before(deadline) {
		if last, err = scrapeAnnouncer(node); err == nil && pred(last) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not %s within %s (alive %v, connected %v, err %v)", node, what, timeout, last[mPeersAlive], last[mPeersConnected], err)
}

// trustPool is the IPPool the trust tests take their Services' VIPs from: 32 addresses of the
// LAN that no host uses and the demo pool does not hold, handed out only to Services naming it.
const trustPool = "e2e-trust"

// ensureTrustPool creates trustPool; when the test ends, after its Services are gone, the pool
// is deleted.
func ensureTrustPool(t *testing.T) {
	t.Helper()
	objs, err := framework.DecodeYAML([]byte(`apiVersion: baremetal.dev/v1alpha1
kind: IPPool
metadata:
  name: ` + trustPool + `
spec:
  addresses: ["198.18.0.200-198.18.0.231"]
  autoAssign: false
  announce:
    l2: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := framework.Apply(context.Background(), env.Config, objs...); err != nil {
		t.Fatalf("creating IPPool %s: %v", trustPool, err)
	}
	t.Cleanup(func() {
		// Registered first, so it runs after the Services' deletions: let the CCM release their
		// VIPs before the pool goes.
		ctx := context.Background()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			list, err := env.Client.CoreV1().Services("default").List(ctx, metav1.ListOptions{})
			if err == nil && !slices.ContainsFunc(list.Items, func(s v1.Service) bool {
				return s.Annotations["baremetal.dev/pool"] == trustPool
			}) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		dyn, err := dynamic.NewForConfig(env.Config)
		if err != nil {
			t.Error(err)
			return
		}
		if err := dyn.Resource(v1alpha1.IPPoolResource).Delete(ctx, trustPool, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting IPPool %s: %v", trustPool, err)
		}
	})
}

// trustServices creates n LoadBalancer Services named prefix-0 ... in front of the demo pods,
// with VIPs from trustPool, and returns their IPv4 VIPs in order.
func trustServices(t *testing.T, prefix string, n int) []string {
	t.Helper()
	ensureTrustPool(t)
	for i := range n {
		l2Service(t, fmt.Sprintf("%s-%d", prefix, i), func(s *v1.Service) {
			s.Annotations = map[string]string{"baremetal.dev/pool": trustPool}
		})
	}
	vips := make([]string, n)
	for i := range n {
		vips[i] = waitIngress(t, fmt.Sprintf("%s-%d", prefix, i), 1)[0]
	}
	return vips
}

// arpingMACs asks from lab-client who has vip and returns the MACs that answered, lower case,
// sorted, without repeats.
func arpingMACs(vip string, count int) []string {
	out, _ := env.Exec(lab.ClientNamespace, "arping", "-c", fmt.Sprint(count), "-W", "0.05", "-i", lab.LANInterface, vip)
	var macs []string
	for _, m := range arpingMAC.FindAllStringSubmatch(out, -1) {
		macs = append(macs, strings.ToLower(m[1]))
	}
	slices.Sort(macs)
	return slices.Compact(macs)
}

// waitServiceEvent waits for an event of the given reason on a Service, last seen at since or
// later, whose message holds every string in want; it returns the message.
func waitServiceEvent(t *testing.T, service, reason string, since time.Time, timeout time.Duration, want ...string) string {
	t.Helper()
	since = since.Truncate(time.Second) // event timestamps have a resolution of one second
	deadline := time.Now().Add(timeout)
	var seen []string
	for time.Now().Before(deadline) {
		list, err := env.Client.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{
			FieldSelector: "involvedObject.kind=Service,involvedObject.name=" + service,
		})
		if err == nil {
			seen = seen[:0]
			for _, ev := range list.Items {
				if ev.Reason != reason {
					continue
				}
				seen = append(seen, ev.Type+": "+ev.Message)
				last := ev.LastTimestamp.Time
				if ev.Series != nil {
					last = ev.Series.LastObservedTime.Time
				}
				if last.IsZero() {
					last = ev.EventTime.Time
				}
				if !last.Before(since) && containsAll(ev.Message, want) {
					return ev.Type + ": " + ev.Message
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("Service %s: no %s event mentioning %q within %s; %s events: %q", service, reason, want, timeout, reason, seen)
	return ""
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// datagram is one UDP datagram seen on the LAN.
type datagram struct {
	src, dst netip.AddrPort
	payload  []byte
}

// captureHeartbeats records, on the LAN switch (tcpdump on br-lan in lab-lan: the bridge in
// promiscuous mode sees every frame it forwards), the first count UDP datagrams to the heartbeat
// port, within timeout.
func captureHeartbeats(t *testing.T, count int, timeout time.Duration) []datagram {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pcap, err := env.ExecContext(ctx, lab.LANNamespace, "tcpdump", "-i", lab.LANBridge, "-n", "-s", "0", "-U",
		"-c", strconv.Itoa(count), "-w", "-", fmt.Sprintf("udp and dst port %d", heartbeatPort))
	if err != nil {
		t.Fatalf("capturing %d heartbeats on %s within %s: %v", count, lab.LANBridge, timeout, err)
	}
	grams, err := parsePcap([]byte(pcap))
	if err != nil {
		t.Fatalf("reading tcpdump's capture: %v", err)
	}
	return grams
}

// parsePcap reads the IPv4 UDP datagrams of a classic pcap file of Ethernet frames.
func parsePcap(data []byte) ([]datagram, error) {
	if len(data) < 24 {
		return nil, fmt.Errorf("a capture of %d bytes has no pcap header", len(data))
	}
	var order binary.ByteOrder
	switch binary.LittleEndian.Uint32(data) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		order = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		order = binary.BigEndian
	default:
		return nil, fmt.Errorf("not a pcap file (magic %x)", data[:4])
	}
	if link := order.Uint32(data[20:24]); link != 1 {
		return nil, fmt.Errorf("pcap link type %d, want 1 (Ethernet)", link)
	}
	var out []datagram
	for rest := data[24:]; len(rest) > 0; {
		if len(rest) < 16 {
			return nil, errors.New("truncated pcap record header")
		}
		n := int(order.Uint32(rest[8:12]))
		if len(rest) < 16+n {
			return nil, errors.New("truncated pcap record")
		}
		frame := rest[16 : 16+n]
		rest = rest[16+n:]
		if d, ok := parseUDP4(frame); ok {
			out = append(out, d)
		}
	}
	return out, nil
}

// parseUDP4 extracts an unfragmented IPv4 UDP datagram from an Ethernet II frame.
func parseUDP4(frame []byte) (datagram, bool) {
	if len(frame) < 14+20 || binary.BigEndian.Uint16(frame[12:14]) != 0x0800 {
		return datagram{}, false
	}
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if ip[0]>>4 != 4 || ihl < 20 || total > len(ip) || total < ihl+8 || ip[9] != unix.IPPROTO_UDP ||
		binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 { // MF or a fragment offset
		return datagram{}, false
	}
	src := netip.AddrFrom4([4]byte(ip[12:16]))
	dst := netip.AddrFrom4([4]byte(ip[16:20]))
	udp := ip[ihl:total]
	ulen := int(binary.BigEndian.Uint16(udp[4:6]))
	if ulen < 8 || ulen > len(udp) {
		return datagram{}, false
	}
	return datagram{
		src:     netip.AddrPortFrom(src, binary.BigEndian.Uint16(udp[0:2])),
		dst:     netip.AddrPortFrom(dst, binary.BigEndian.Uint16(udp[2:4])),
		payload: slices.Clone(udp[8:ulen]),
	}, true
}

// inNamespace runs f on an OS thread that has joined the lab namespace ns. The thread is never
// given back to the scheduler (it ends with its goroutine), and the sockets f opens belong to
// ns, whichever goroutine uses them later.
func inNamespace(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := enterNamespace(ns); err != nil {
			errc <- fmt.Errorf("entering %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// forger sends datagrams from a host of the LAN that is not a node (lab-client): plainly, from
// its own address, and with a forged source address through a raw socket.
type forger struct {
	udp *net.UDPConn
	raw int
}

// newForger opens its sockets in lab-client; they are closed when the test ends.
func newForger(t *testing.T) *forger {
	t.Helper()
	f := &forger{raw: -1}
	err := inNamespace(lab.ClientNamespace, func() error {
		var err error
		if f.udp, err = net.ListenUDP("udp4", &net.UDPAddr{}); err != nil {
			return err
		}
		// IPPROTO_RAW implies IP_HDRINCL: we write the IPv4 header, source address included.
		f.raw, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
		return err
	})
	if err != nil {
		t.Fatalf("opening sockets in %s: %v", lab.ClientNamespace, err)
	}
	t.Cleanup(func() {
		f.udp.Close()
		unix.Close(f.raw)
	})
	return f
}

// send sends payload to dst from lab-client's own address.
func (f *forger) send(dst netip.AddrPort, payload []byte) error {
	_, err := f.udp.WriteToUDPAddrPort(payload, dst)
	return err
}

// spoof sends payload to dst in an IPv4 packet whose source is src, which is not lab-client's.
func (f *forger) spoof(src, dst netip.AddrPort, payload []byte) error {
	pkt := udp4Packet(src, dst, payload)
	return unix.Sendto(f.raw, pkt, 0, &unix.SockaddrInet4{Addr: dst.Addr().As4()})
}

// udp4Packet builds an IPv4 packet holding a UDP datagram (with its checksum).
func udp4Packet(src, dst netip.AddrPort, payload []byte) []byte {
	const ihl, udpLen = 20, 8
	pkt := make([]byte, ihl+udpLen+len(payload))
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:4], uint16(len(pkt)))
	pkt[8] = 64 // TTL
	pkt[9] = unix.IPPROTO_UDP
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(pkt[12:16], s[:])
	copy(pkt[16:20], d[:])
	binary.BigEndian.PutUint16(pkt[10:12], checksum(pkt[:ihl], 0))
	udp := pkt[ihl:]
	binary.BigEndian.PutUint16(udp[0:2], src.Port())
	binary.BigEndian.PutUint16(udp[2:4], dst.Port())
	binary.BigEndian.PutUint16(udp[4:6], uint16(udpLen+len(payload)))
	copy(udp[udpLen:], payload)
	// The pseudo-header: addresses, protocol, UDP length.
	var pseudo uint32
	for i := 0; i < 4; i += 2 {
		pseudo += uint32(binary.BigEndian.Uint16(s[i:])) + uint32(binary.BigEndian.Uint16(d[i:]))
	}
	pseudo += unix.IPPROTO_UDP + uint32(len(udp))
	sum := checksum(udp, pseudo)
	if sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:8], sum)
	return pkt
}

// checksum is the Internet checksum (RFC 1071) of b, starting from the partial sum initial.
func checksum(b []byte, initial uint32) uint16 {
	sum := initial
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// randomBytes returns n random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
