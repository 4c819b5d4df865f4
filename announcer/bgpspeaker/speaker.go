package bgpspeaker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// ErrStopped is returned by Set after Stop.
var ErrStopped = errors.New("bgpspeaker: stopped")

// Speaker is an embedded GoBGP server that converges on a Desired state.
type Speaker struct {
	cfg   Config
	srv   *server.BgpServer
	paths pathAPI // srv, except in tests that make a call fail
	log   *logger

	running chan struct{} // closed when Run has started GoBGP's loop
	stopped chan struct{} // closed by Stop

	mu         sync.Mutex // serializes Set, Stop and reconnects; guards the fields below
	bgpStarted bool
	noListen   string // why passive peers cannot connect: no listening socket ("" when there is one)
	applied    plan
	halted     bool // Stop was called

	st    sync.Mutex // guards peers and wasUp; taken by GoBGP's goroutines (log, watch), never with mu inside
	peers map[netip.Addr]*peerState
	wasUp map[netip.Addr]bool // routers with which a session reached Established since New
	drops chan netip.Addr     // sessions that dropped back to Idle
}

// pathAPI is the part of GoBGP that Set announces and withdraws through: a seam for tests that
// make a withdrawal fail (export_test.go).
type pathAPI interface {
	AddPath(context.Context, *api.AddPathRequest) (*api.AddPathResponse, error)
	DeletePath(context.Context, *api.DeletePathRequest) error
}

type peerState struct {
	conf      peerConf
	state     string
	since     time.Time
	lastError string
}

// New returns a Speaker that starts nothing: Run starts the BGP server, Set configures it.
func New(cfg Config) (*Speaker, error) {
	if !cfg.RouterID.Is4() {
		return nil, fmt.Errorf("bgpspeaker: router ID %v must be an IPv4 address", cfg.RouterID)
	}
	if cfg.ListenPort < 0 || cfg.ListenPort > 65535 {
		return nil, fmt.Errorf("bgpspeaker: listen port %d is not a TCP port", cfg.ListenPort)
	}
	s := &Speaker{
		cfg:     cfg,
		running: make(chan struct{}),
		stopped: make(chan struct{}),
		peers:   map[netip.Addr]*peerState{},
		wasUp:   map[netip.Addr]bool{},
		drops:   make(chan netip.Addr, 64),
		applied: plan{peers: map[string]peerConf{}, paths: map[netip.Prefix]pathConf{}, export: map[netip.Prefix][]netip.Addr{}},
	}
	s.log = &logger{out: cfg.Log, onEvent: s.onLog}
	s.srv = server.NewBgpServer(server.LoggerOption(s.log))
	s.paths = s.srv
	return s, nil
}

// restarting says whether a session to addr announces a restart (R bit, RFC 4724): with
// Config.Restarting, until a session to that router has reached Established. A session that
// drops before that (in OpenSent, say) is followed by one that still says so, or the router
// would flush the previous process's routes at once. Called with st held.
func (s *Speaker) restarting(addr netip.Addr) bool {
	return s.cfg.Restarting && !s.wasUp[addr]
}

// updateLogLevel has GoBGP log at debug level only while a session is not established: its dial
// failures, which the status reports, are logged at that level only, and with it GoBGP builds a
// debug entry for every UPDATE sent or received. Called with st held.
func (s *Speaker) updateLogLevel() {
	down := false
	for _, ps := range s.peers {
		down = down || ps.state != StateEstablished
	}
	s.log.dialing.Store(down)
}

func (s *Speaker) logf(msg string, kv ...any) {
	if s.cfg.Log != nil {
		s.cfg.Log(msg, kv...)
	}
}

// Run runs the BGP server until ctx ends or Stop is called. GoBGP v3's own loop cannot be ended
// and stays behind: when ctx ends without Stop, the sessions stay up, no NOTIFICATION is sent,
// and the process is expected to exit (see the package documentation: silent exit).
func (s *Speaker) Run(ctx context.Context) error {
	select {
	case <-s.running:
		return errors.New("bgpspeaker: Run called twice")
	default:
	}
	go s.srv.Serve()
	err := s.srv.WatchEvent(ctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, s.onPeerEvent)
	if err != nil {
		return fmt.Errorf("bgpspeaker: watching peers: %w", err)
	}
	close(s.running)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.stopped:
			return nil
		case addr := <-s.drops:
			if err := s.reconnect(ctx, addr); err != nil {
				s.logf("bgpspeaker: re-adding peer failed", "peer", addr, "err", err)
			}
		}
	}
}

// onPeerEvent records state changes. It runs on GoBGP's watcher goroutine.
func (s *Speaker) onPeerEvent(r *api.WatchEventResponse) {
	pe := r.GetPeer()
	if pe == nil || pe.Type != api.WatchEventResponse_PeerEvent_STATE {
		return
	}
	addr, err := netip.ParseAddr(pe.Peer.GetState().GetNeighborAddress())
	if err != nil {
		return
	}
	state := sessionState(pe.Peer.GetState().GetSessionState())
	s.st.Lock()
	defer s.st.Unlock()
	ps := s.peers[addr]
	if ps == nil || ps.state == state {
		return
	}
	was := ps.state
	ps.state, ps.since = state, time.Now()
	if state == StateEstablished {
		ps.lastError = ""
		s.wasUp[addr] = true
	}
	s.updateLogLevel()
	// Any session that got as far as a TCP connection and fell back to Idle: a router that
	// went away, or one that reset the connection while starting (FRR does when zebra has not
	// told bgpd about the interface yet).
	if state == StateIdle && (was == StateOpenSent || was == StateOpenConfirm || was == StateEstablished) {
		select {
		case s.drops <- addr:
		default: // Run is behind; the peer still reconnects, after GoBGP's own 5 s idle
		}
	}
}

// onLog turns GoBGP's log messages into LastError. It runs on GoBGP's goroutines.
func (s *Speaker) onLog(msg string, f log.Fields) {
	s.st.Lock()
	defer s.st.Unlock()
	ev, ok := interpret(msg, f, func(a netip.Addr) (uint16, bool) {
		if ps := s.peers[a]; ps != nil {
			return cmp.Or(ps.conf.Port, 179), ps.conf.Password != ""
		}
		return 179, false
	})
	if !ok {
		return
	}
	if ps := s.peers[ev.addr]; ps != nil {
		ps.lastError = ev.err
	}
}

// reconnect deletes and re-adds a peer whose connection dropped. GoBGP idles a dropped peer for a
// hard-coded 5 s before dialling again; a new peer dials after 1-2 s, and keeps dialling every
// ConnectTime. The session is down already, so the deletion sends no NOTIFICATION.
func (s *Speaker) reconnect(ctx context.Context, addr netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.halted {
		return nil
	}
	s.st.Lock()
	ps := s.peers[addr]
	established := ps != nil && ps.state == StateEstablished
	restarting := s.restarting(addr)
	s.st.Unlock()
	if ps == nil || established {
		return nil // gone, or already back
	}
	if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
		return err
	}
	return s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: apiPeer(ps.conf, restarting)})
}

// Set converges the speaker on d: peers are added, changed (deleted and re-added, which resets
// their session) or deleted; routes are announced, updated or withdrawn, each only to the peers
// it names. Parts of d that cannot be applied are returned as Problems, in words; the error is
// for failures of the BGP server itself. Set waits for Run to have started.
func (s *Speaker) Set(ctx context.Context, d Desired) (Problems, error) {
	select {
	case <-s.running:
	case <-ctx.Done():
		return nil, fmt.Errorf("bgpspeaker: Set before Run: %w", ctx.Err())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.halted {
		return nil, ErrStopped
	}
	var startProblems Problems
	if !s.bgpStarted {
		var err error
		if startProblems, err = s.start(ctx, d); err != nil {
			return startProblems, err
		}
	}
	next, probs := makePlan(s.cfg, d, s.noListen)
	probs = append(startProblems, probs...)
	if !s.bgpStarted {
		return probs, nil
	}
	ch := diff(s.applied, next)
	var errs []error
	for _, name := range ch.delPeers {
		old := s.applied.peers[name]
		if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: old.Address.String()}); err != nil {
			errs = append(errs, fmt.Errorf("bgpspeaker: deleting peer %q (%s): %w", name, old.Address, err))
			continue
		}
		delete(s.applied.peers, name)
		s.st.Lock()
		delete(s.peers, old.Address)
		s.updateLogLevel()
		s.st.Unlock()
	}
	// GoBGP filters a withdrawal with the current export policy: once the policy no longer
	// names a peer, a path left on it cannot be withdrawn. So when a withdrawal failed (or a
	// peer's deletion, whose session keeps what it was sent), the policy and the re-sends wait,
	// and the next Set retries; the path stays in applied.
	kept := len(errs) > 0
	failed := map[netip.Prefix]bool{}
	for _, prefix := range ch.withdraw {
		p, err := apiPath(s.applied.paths[prefix])
		if err == nil {
			err = s.paths.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: p.Family, Path: p})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("bgpspeaker: withdrawing %s: %w", prefix, err))
			failed[prefix] = true
			kept = true
			continue
		}
		delete(s.applied.paths, prefix)
	}
	if ch.policy && kept {
		errs = append(errs, errors.New("bgpspeaker: the export policy is left unchanged until the deletions above succeed"))
	}
	if ch.policy && !kept {
		if err := s.srv.SetPolicies(ctx, exportPolicies(next.export)); err != nil {
			errs = append(errs, fmt.Errorf("bgpspeaker: setting the export policy: %w", err))
		} else {
			s.applied.export = next.export
		}
	}
	for _, name := range ch.addPeers {
		c := next.peers[name]
		if _, ok := s.applied.peers[name]; ok {
			continue // its deletion failed above
		}
		s.st.Lock()
		s.peers[c.Address] = &peerState{conf: c, state: StateIdle, since: time.Now()}
		s.updateLogLevel()
		restarting := s.restarting(c.Address)
		s.st.Unlock()
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: apiPeer(c, restarting)}); err != nil {
			errs = append(errs, fmt.Errorf("bgpspeaker: adding peer %q (%s): %w", name, c.Address, err))
			s.st.Lock()
			delete(s.peers, c.Address)
			s.updateLogLevel()
			s.st.Unlock()
			continue
		}
		s.applied.peers[name] = c
	}
	for _, prefix := range ch.announce {
		if failed[prefix] {
			continue // still out there as it was; the next Set withdraws it again
		}
		c := next.paths[prefix]
		p, err := apiPath(c)
		if err == nil {
			_, err = s.paths.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("bgpspeaker: announcing %s: %w", prefix, err))
			continue
		}
		s.applied.paths[prefix] = c
	}
	for _, addr := range ch.resend {
		if kept {
			break // the policy that sends them the new prefixes is not in place
		}
		if err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr.String(), Soft: true, Direction: api.ResetPeerRequest_OUT}); err != nil {
			errs = append(errs, fmt.Errorf("bgpspeaker: re-sending routes to %s: %w", addr, err))
		}
	}
	s.applied.names = next.names
	return probs, errors.Join(errs...)
}

// start starts the BGP server: its ASN and listening socket cannot change afterwards (GoBGP v3
// opens listening sockets only in StartBgp, which cannot be called twice). It installs the
// policies: import only our own paths, export only what the export policy accepts.
//
// When the socket cannot be opened (the port is taken, by another BGP daemon on the node say),
// the server starts without one, so that active peers still work, and s.noListen says why
// for every passive peer.
func (s *Speaker) start(ctx context.Context, d Desired) (Problems, error) {
	asn := s.cfg.ASN
	port := int32(s.cfg.ListenPort)
	for _, p := range d.Peers {
		if asn == 0 && p.LocalASN != 0 {
			asn = p.LocalASN
		}
		if port == 0 && p.Passive {
			port = 179
		}
	}
	if asn == 0 {
		if len(d.Peers) == 0 {
			return nil, nil // nothing to do yet; start with the first peer
		}
		return Problems{{Reason: "no local ASN: set Config.ASN or the peers' LocalASN"}}, nil
	}
	s.noListen = "passive, but the speaker has no listening socket: it opens one only when it starts " +
		"(GoBGP v3 cannot add one later), and no peer was passive then: restart the announcer on this node " +
		"(delete its pod) to have it listen on port 179"
	if port == 0 {
		port = -1 // active only
	}
	g := &api.Global{Asn: asn, RouterId: s.cfg.RouterID.String(), ListenPort: port}
	err := s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: g})
	if err != nil && port > 0 {
		// GoBGP keeps the sockets it opened before the one that failed (0.0.0.0 before ::):
		// StopBgp closes them, and the server starts again without any.
		lerr := err
		if err = s.srv.StopBgp(ctx, &api.StopBgpRequest{}); err == nil {
			g.ListenPort = -1
			err = s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: g})
		}
		s.noListen = fmt.Sprintf("passive, but the speaker could not listen on port %d: %v: "+
			"free the port (is another BGP daemon running on this node?), then restart the announcer on this node (delete its pod)", port, lerr)
		s.logf("bgpspeaker: no listening socket: passive peers cannot connect", "port", port, "err", lerr)
	}
	if err != nil {
		return nil, fmt.Errorf("bgpspeaker: starting BGP (AS %d, router ID %s, port %d): %w", asn, s.cfg.RouterID, port, err)
	}
	if g.ListenPort > 0 {
		s.noListen = ""
	}
	if err := s.srv.SetPolicies(ctx, exportPolicies(nil)); err != nil {
		return nil, fmt.Errorf("bgpspeaker: setting the export policy: %w", err)
	}
	for _, a := range []*api.PolicyAssignment{
		{Name: globalTable, Direction: api.PolicyDirection_IMPORT, DefaultAction: api.RouteAction_REJECT,
			Policies: []*api.Policy{{Name: importPolicy}}},
		{Name: globalTable, Direction: api.PolicyDirection_EXPORT, DefaultAction: api.RouteAction_REJECT,
			Policies: []*api.Policy{{Name: exportPolicy}}},
	} {
		if err := s.srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: a}); err != nil {
			return nil, fmt.Errorf("bgpspeaker: assigning the %s policy: %w", a.Direction, err)
		}
	}
	s.bgpStarted = true
	return nil, nil
}

// Status returns the sessions of the configured peers, sorted by name.
func (s *Speaker) Status() []PeerStatus {
	counts := map[string]*api.Peer{}
	s.mu.Lock()
	started := s.bgpStarted && !s.halted
	names := s.applied.names
	// GoBGP's per-family "advertised" counts paths before the export policy filters them, so
	// a peer would be said to get every route: count what the policy lets through instead.
	exported := map[netip.Addr]int{}
	for prefix, addrs := range s.applied.export {
		if _, ok := s.applied.paths[prefix]; !ok {
			continue // withdrawn; the policy still names it (a failed deletion kept it)
		}
		for _, a := range addrs {
			exported[a]++
		}
	}
	s.mu.Unlock()
	if started {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		// Without EnableAdvertised: with it, GoBGP runs the export policy over the whole RIB for
		// every peer, in its main loop.
		_ = s.srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: false}, func(p *api.Peer) {
			counts[p.GetConf().GetNeighborAddress()] = p
		})
		cancel()
	}
	s.st.Lock()
	defer s.st.Unlock()
	out := make([]PeerStatus, 0, len(s.peers))
	for addr, ps := range s.peers {
		st := PeerStatus{Name: names[addr], Address: addr, State: ps.state, Since: ps.since, LastError: ps.lastError}
		if p := counts[addr.String()]; p != nil {
			if ps.state == StateEstablished {
				st.Advertised = exported[addr]
			}
			st.UpdatesSent = p.GetState().GetMessages().GetSent().GetUpdate()
			for _, af := range p.GetAfiSafis() {
				st.Received += int(af.GetState().GetReceived())
			}
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b PeerStatus) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Stop ends the speaker for good: every session gets a Cease (a Hard Reset when graceful
// restart is negotiated, RFC 8538), so the routers drop our routes at once. Run returns.
func (s *Speaker) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.halted {
		return nil
	}
	s.halted = true
	close(s.stopped)
	if !s.bgpStarted {
		return nil
	}
	// StopBgp waits for the sessions to close, which ctx cannot interrupt.
	done := make(chan error, 1)
	go func() { done <- s.srv.StopBgp(context.Background(), &api.StopBgpRequest{}) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("bgpspeaker: stopping BGP: %w", err)
		}
	case <-ctx.Done():
		return fmt.Errorf("bgpspeaker: stopping BGP: %w", ctx.Err())
	}
	s.st.Lock()
	for _, ps := range s.peers {
		ps.state, ps.since = StateIdle, time.Now()
	}
	s.st.Unlock()
	return nil
}
