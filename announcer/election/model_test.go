package election_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/election"
)

// cluster is the model: the nodes as the API server and the failure detector report them, the
// VIPs, and the claims carried in heartbeats. The reference it is checked against is trivial:
// an owner stays put while it is eligible, and some eligible node owns every VIP that has one.
type cluster struct {
	r      *rand.Rand
	nodes  map[string]*election.Node
	vips   []election.VIP
	claims map[netip.Addr][]election.Claim
	owners map[netip.Addr]string
}

const modelNames = 16

func newCluster(r *rand.Rand) *cluster {
	c := &cluster{
		r:      r,
		nodes:  map[string]*election.Node{},
		claims: map[netip.Addr][]election.Claim{},
		owners: map[netip.Addr]string{},
	}
	for i := range 24 {
		v := election.VIP{Addr: netip.AddrFrom4([4]byte{198, 18, 7, byte(i + 1)})}
		if i%2 == 1 {
			v.Addr = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)})
		}
		switch i % 3 {
		case 1: // the pool's l2.nodeSelector
			v.NodeSelector = labels{"zone": zones[i%2]}
		case 2: // externalTrafficPolicy: Local
			v.Candidates = map[string]bool{}
		}
		c.vips = append(c.vips, v)
	}
	for range 4 {
		c.join()
	}
	return c
}

func (c *cluster) list() []election.Node {
	out := make([]election.Node, 0, len(c.nodes))
	for _, n := range c.nodes {
		out = append(out, *n)
	}
	slices.SortFunc(out, func(a, b election.Node) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (c *cluster) pick() *election.Node {
	if len(c.nodes) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(c.nodes))
	return c.nodes[names[c.r.IntN(len(names))]]
}

func (c *cluster) join() string {
	var free []string
	for i := range modelNames {
		if name := fmt.Sprintf("node-%02d", i); c.nodes[name] == nil {
			free = append(free, name)
		}
	}
	if len(free) == 0 {
		return "join: cluster full"
	}
	n := randomNode(c.r, free[c.r.IntN(len(free))])
	c.nodes[n.Name] = &n
	return "join " + n.Name
}

// step applies one random change and describes it.
func (c *cluster) step() string {
	n := c.pick()
	if n == nil {
		return c.join()
	}
	switch op := c.r.IntN(9); op {
	case 0:
		return c.join()
	case 1:
		delete(c.nodes, n.Name)
		return "leave " + n.Name
	case 2, 3:
		n.Healthy = !n.Healthy
		return fmt.Sprintf("%s healthy=%v", n.Name, n.Healthy)
	case 4:
		n.Unschedulable = !n.Unschedulable
		return fmt.Sprintf("%s cordoned=%v", n.Name, n.Unschedulable)
	case 5:
		n.NetworkUnavailable = !n.NetworkUnavailable
		return fmt.Sprintf("%s networkUnavailable=%v", n.Name, n.NetworkUnavailable)
	case 6:
		labels := maps.Clone(n.Labels)
		if _, ok := labels[election.ExcludeLabel]; ok {
			delete(labels, election.ExcludeLabel)
		} else {
			labels[election.ExcludeLabel] = "true"
		}
		n.Labels = labels
		return fmt.Sprintf("%s excluded=%v", n.Name, labels[election.ExcludeLabel] != "")
	case 7:
		labels := maps.Clone(n.Labels)
		labels["zone"] = zones[c.r.IntN(len(zones))]
		n.Labels = labels
		return fmt.Sprintf("%s zone=%s", n.Name, labels["zone"])
	default: // a local endpoint appears on or leaves the node
		v := &c.vips[3*c.r.IntN(len(c.vips)/3)+2]
		cand := maps.Clone(v.Candidates)
		cand[n.Name] = !cand[n.Name]
		v.Candidates = cand
		return fmt.Sprintf("%s endpoint for %s=%v", n.Name, v.Addr, cand[n.Name])
	}
}

// TestModel runs random sequences of joins, leaves, health flips, cordons, label and endpoint
// changes. After each step every owner claims (Gen = healthy nodes now) and claims of nodes
// that no longer own are dropped; claims by nodes that never existed stay around as noise.
func TestModel(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	changes, elected := 0, 0
	for seq := range 60 {
		c := newCluster(r)
		var history []string
		for stepNo := range 150 {
			history = append(history, c.step())
			nodes := c.list()
			byName := map[string]election.Node{}
			healthyNow := 0
			for _, n := range nodes {
				byName[n.Name] = n
				if n.Healthy {
					healthyNow++
				}
			}
			fail := func(format string, args ...any) {
				t.Helper()
				tail := history[max(0, len(history)-8):]
				t.Fatalf("seq %d step %d: %s\nlast steps: %q", seq, stepNo, fmt.Sprintf(format, args...), tail)
			}

			owners := election.Assign(shuffled(r, c.vips), shuffled(r, nodes), c.claims)
			for _, v := range c.vips {
				owner, ok := owners[v.Addr]
				if ok != anyEligible(v, nodes) {
					fail("%s: owner %q, %v, but some node eligible=%v", v.Addr, owner, ok, !ok)
				}
				if ok {
					elected++
					if el, why := election.Eligible(v, byName[owner]); !el {
						fail("%s: owner %s is not eligible: %s", v.Addr, owner, why)
					}
				}
				// Each node runs the election on its own: exactly one finds itself the owner.
				self := 0
				for _, observer := range nodes {
					got, _ := election.Owner(v, shuffled(r, nodes), shuffled(r, c.claims[v.Addr]))
					if got != owner {
						fail("%s: observer %s elected %q; Assign elected %q", v.Addr, observer.Name, got, owner)
					}
					if got == observer.Name {
						self++
					}
				}
				if ok && self != 1 || !ok && self != 0 {
					fail("%s: %d nodes think they own it", v.Addr, self)
				}
				// The owner changes only when it became ineligible (or left).
				if prev, had := c.owners[v.Addr]; had && prev != owner {
					if n, still := byName[prev]; still {
						if el, _ := election.Eligible(v, n); el {
							fail("%s moved from %s to %q although %s is still eligible", v.Addr, prev, owner, prev)
						}
					}
					changes++
				}
			}

			// Owners claim; stale claims go; ghosts keep shouting.
			c.owners = owners
			c.claims = map[netip.Addr][]election.Claim{}
			for _, v := range c.vips {
				c.claims[v.Addr] = []election.Claim{{Node: "ghost", Gen: 1000}}
				if o, ok := owners[v.Addr]; ok {
					c.claims[v.Addr] = append(c.claims[v.Addr], election.Claim{Node: o, Gen: healthyNow})
				}
			}
		}
	}
	if changes < 1000 || elected < 50000 {
		t.Errorf("the model exercised %d owner changes and %d elections; expected more", changes, elected)
	}
	t.Logf("%d elections, %d owner changes", elected, changes)
}
