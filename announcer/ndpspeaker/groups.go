package ndpspeaker

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// groupRetry is how long after a failed join or leave the speaker tries again.
const groupRetry = time.Second

// groupKeeper keeps the solicited-node groups of the owned and watched addresses joined through
// a Groups. It is the engine's l2engine.Tender: Changed runs from Set and Watch, Tend from Run.
type groupKeeper struct {
	groups Groups
	errors atomic.Uint64

	mu     sync.Mutex
	want   map[netip.Addr]bool // groups of the owned and watched addresses
	joined map[netip.Addr]bool // groups joined through groups
	retry  time.Time           // when to retry a failed join or leave; zero: none failed
}

// Changed makes the joined groups those of addrs.
func (k *groupKeeper) Changed(addrs []netip.Addr, now time.Time) {
	want := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		want[solicitedNode(a)] = true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.want = want
	k.sync(now)
}

// Tend retries failed joins and leaves when due and returns when to call it next (zero: nothing
// to retry).
func (k *groupKeeper) Tend(now time.Time) time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.retry.IsZero() && !k.retry.After(now) {
		k.sync(now)
	}
	return k.retry
}

// sync leaves the groups not wanted first (so that a limit on memberships is not hit
// needlessly), then joins the missing ones. k.mu is held.
func (k *groupKeeper) sync(now time.Time) {
	failed := false
	for g := range k.joined {
		if k.want[g] {
			continue
		}
		if err := k.groups.LeaveGroup(g); err != nil {
			k.errors.Add(1)
			failed = true
			continue
		}
		delete(k.joined, g)
	}
	for g := range k.want {
		if k.joined[g] {
			continue
		}
		if err := k.groups.JoinGroup(g); err != nil {
			k.errors.Add(1)
			failed = true
			continue
		}
		k.joined[g] = true
	}
	k.retry = time.Time{}
	if failed {
		k.retry = now.Add(groupRetry)
	}
}

// joinedGroups returns the joined groups, in no particular order.
func (k *groupKeeper) joinedGroups() []netip.Addr {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]netip.Addr, 0, len(k.joined))
	for g := range k.joined {
		out = append(out, g)
	}
	return out
}

// maxGroupsPerSocket bounds the memberships of one socket. Linux charges every IPv6 membership
// of a socket (a struct ipv6_mc_socklist, 56 bytes on 64-bit kernels) to the socket's option
// memory, which net.core.optmem_max limits: 20480 bytes by default before Linux 6.9, room for
// about 365 groups. Past it IPV6_JOIN_GROUP fails with ENOMEM. 200 leaves a margin for larger
// structures and lower limits; shardedGroups also learns a lower limit when a join fails.
const maxGroupsPerSocket = 200

// groupSocket is one membership socket: the memberships it holds die with it.
type groupSocket interface {
	Groups
	io.Closer
}

// shardedGroups is a Groups that spreads its memberships over as many sockets as needed, at
// most maxGroupsPerSocket each, so that a node can own thousands of VIPs whatever the per-socket
// limit of its kernel. It opens a socket when all others are full and closes one when its last
// group leaves.
type shardedGroups struct {
	open    func() (groupSocket, error)
	release func() error // called by Close after the sockets; may be nil

	mu     sync.Mutex
	shards []*shard
	of     map[netip.Addr]*shard
}

type shard struct {
	sock  groupSocket
	n     int // groups joined through sock
	limit int // groups sock can hold: maxGroupsPerSocket, or fewer once a join found the limit
}

func newShardedGroups(open func() (groupSocket, error), release func() error) *shardedGroups {
	return &shardedGroups{open: open, release: release, of: map[netip.Addr]*shard{}}
}

// JoinGroup joins group through the first socket with room, opening one if none has.
func (g *shardedGroups) JoinGroup(group netip.Addr) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.of[group]; ok {
		return nil
	}
	for _, sh := range g.shards {
		if sh.n >= sh.limit {
			continue
		}
		err := sh.sock.JoinGroup(group)
		if err == nil {
			sh.n++
			g.of[group] = sh
			return nil
		}
		if !socketFull(err) || sh.n == 0 {
			return err
		}
		// This kernel holds fewer groups per socket than we thought: remember, try the next.
		sh.limit = sh.n
	}
	sock, err := g.open()
	if err != nil {
		return fmt.Errorf("opening a multicast membership socket: %w", err)
	}
	if err := sock.JoinGroup(group); err != nil {
		_ = sock.Close()
		return err
	}
	sh := &shard{sock: sock, n: 1, limit: maxGroupsPerSocket}
	g.shards = append(g.shards, sh)
	g.of[group] = sh
	return nil
}

// socketFull reports whether a join failed for lack of the socket's option memory.
func socketFull(err error) bool {
	return errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.ENOBUFS)
}

// LeaveGroup leaves group, and closes its socket if it held no other group. A failure to close
// is not reported: closing drops the memberships anyway, and the group is left.
func (g *shardedGroups) LeaveGroup(group netip.Addr) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	sh, ok := g.of[group]
	if !ok {
		return fmt.Errorf("leaving %s: not joined", group)
	}
	if err := sh.sock.LeaveGroup(group); err != nil {
		return err
	}
	delete(g.of, group)
	sh.n--
	if sh.n == 0 {
		_ = sh.sock.Close()
		for i, s := range g.shards {
			if s == sh {
				g.shards = append(g.shards[:i], g.shards[i+1:]...)
				break
			}
		}
	}
	return nil
}

// sockets returns how many membership sockets are open.
func (g *shardedGroups) sockets() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.shards)
}

// Close closes every socket, which drops all memberships, and releases what open needs.
func (g *shardedGroups) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	for _, sh := range g.shards {
		errs = append(errs, sh.sock.Close())
	}
	g.shards, g.of = nil, map[netip.Addr]*shard{}
	if g.release != nil {
		errs = append(errs, g.release())
		g.release = nil
	}
	return errors.Join(errs...)
}
