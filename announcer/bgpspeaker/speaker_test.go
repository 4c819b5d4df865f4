package bgpspeaker

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/log"
)

// runSpeaker runs a speaker on the loopback (no privileges needed: its peers are never reached)
// until the test ends.
func runSpeaker(t *testing.T, cfg Config) *Speaker {
	t.Helper()
	cfg.RouterID = netip.MustParseAddr("127.0.0.1")
	cfg.Log = func(msg string, kv ...any) { t.Logf("%s %v", msg, kv) }
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		stopCtx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		if err := s.Stop(stopCtx); err != nil {
			t.Error(err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

var (
	// activePeer is dialled on port 1 of a loopback address: refused, harmlessly.
	activePeer  = Peer{Name: "tor-a", Address: netip.MustParseAddr("127.0.0.2"), Port: 1, ASN: 64500, LocalASN: 64512}
	passivePeer = Peer{Name: "tor-b", Address: netip.MustParseAddr("127.0.0.3"), ASN: 64500, LocalASN: 64512, Passive: true}
)

func setOK(t *testing.T, s *Speaker, d Desired) Problems {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	probs, err := s.Set(ctx, d)
	if err != nil {
		t.Fatalf("Set: %v (problems %v)", err, probs)
	}
	return probs
}

// TestPassiveAddedLater: GoBGP v3 opens listening sockets only when it starts, so a passive peer
// that comes after a start without one cannot connect; the problem says what to do.
func TestPassiveAddedLater(t *testing.T) {
	s := runSpeaker(t, Config{})
	if probs := setOK(t, s, Desired{Peers: []Peer{activePeer}}); len(probs) != 0 {
		t.Fatalf("problems %v", probs)
	}
	probs := setOK(t, s, Desired{Peers: []Peer{activePeer, passivePeer}})
	if len(probs) != 1 || probs[0].Peer != "tor-b" || !strings.Contains(probs[0].Reason, "restart the announcer on this node") {
		t.Errorf("problems %v, want one for tor-b telling to restart the announcer", probs)
	}
}

// TestListenFails: the listening port is taken. The speaker starts anyway, without a socket:
// active peers work, and every passive peer has a problem with the error in words. GoBGP opens
// 0.0.0.0 before ::, and keeps what it opened when the second fails: that socket is closed.
func TestListenFails(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			taken, err := net.Listen(network, ":0")
			if err != nil {
				t.Skipf("%s: %v", network, err)
			}
			defer taken.Close()
			port := taken.Addr().(*net.TCPAddr).Port
			s := runSpeaker(t, Config{ListenPort: port})
			other := passivePeer
			other.Name, other.Address = "tor-c", netip.MustParseAddr("127.0.0.4")
			probs := setOK(t, s, Desired{Peers: []Peer{activePeer, passivePeer, other}})
			if len(probs) != 2 {
				t.Fatalf("problems %v, want one for each passive peer", probs)
			}
			for i, name := range []string{"tor-b", "tor-c"} {
				if p := probs[i]; p.Peer != name || !strings.Contains(p.Reason, "could not listen on port") || !strings.Contains(p.Reason, "address already in use") {
					t.Errorf("problem %v, want one for %s with the listen error", p, name)
				}
			}
			if st := s.Status(); len(st) != 1 || st[0].Name != "tor-a" {
				t.Errorf("status %v, want the active peer configured", st)
			}
			for _, n := range []string{"tcp4", "tcp6"} {
				if n == network {
					continue
				}
				if l, err := net.Listen(n, net.JoinHostPort("", strconv.Itoa(port))); err != nil {
					t.Errorf("%s port %d still taken after the failed start: %v", n, port, err)
				} else {
					l.Close()
				}
			}
		})
	}
}

// TestLogLevel: GoBGP builds debug messages (one per UPDATE) only while a session is down, when
// dial failures, which the status needs, can happen; of those only "failed to connect" is read.
func TestLogLevel(t *testing.T) {
	s, err := New(Config{RouterID: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("198.18.0.1")
	event := func(state api.PeerState_SessionState) {
		s.onPeerEvent(&api.WatchEventResponse{Event: &api.WatchEventResponse_Peer{Peer: &api.WatchEventResponse_PeerEvent{
			Type: api.WatchEventResponse_PeerEvent_STATE,
			Peer: &api.Peer{State: &api.PeerState{NeighborAddress: a.String(), SessionState: state}},
		}}})
	}
	if got := s.log.GetLevel(); got != log.InfoLevel {
		t.Errorf("no peers: level %v, want info", got)
	}
	s.st.Lock()
	s.peers[a] = &peerState{state: StateIdle}
	s.updateLogLevel()
	s.st.Unlock()
	for _, step := range []struct {
		state api.PeerState_SessionState
		want  log.LogLevel
	}{
		{api.PeerState_ACTIVE, log.DebugLevel},
		{api.PeerState_ESTABLISHED, log.InfoLevel},
		{api.PeerState_IDLE, log.DebugLevel},
	} {
		event(step.state)
		if got := s.log.GetLevel(); got != step.want {
			t.Errorf("after %v: level %v, want %v", step.state, got, step.want)
		}
	}
	var seen []string
	l := &logger{onEvent: func(msg string, _ log.Fields) { seen = append(seen, msg) }}
	l.Debug("received update", log.Fields{"Key": a.String()})
	l.Debug("failed to connect", log.Fields{"Key": a.String()})
	if len(seen) != 1 || seen[0] != "failed to connect" {
		t.Errorf("debug messages read: %v, want only failed to connect", seen)
	}
}
