//go:build linux

package bgpspeaker_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/bgpspeaker"
	"github.com/baremetal-dev/cloud-provider-baremetal/test/frr"
)

// helperEnv carries the desired state to TestHelperSpeaker in a child process.
const helperEnv = "BGPSPEAKER_TEST_HELPER"

// TestHelperSpeaker is not a test: TestLabSilentExit runs the test binary again with only this
// function and helperEnv set, to have a speaker in a process of its own that exits the way the
// announcer does on SIGTERM: Run's context ends, no Stop, exit.
func TestHelperSpeaker(t *testing.T) {
	arg := os.Getenv(helperEnv)
	if arg == "" {
		return
	}
	var d bgpspeaker.Desired
	if err := json.Unmarshal([]byte(arg), &d); err != nil {
		fmt.Println("bad desired state:", err)
		os.Exit(2)
	}
	s, err := bgpspeaker.New(bgpspeaker.Config{RouterID: netip.MustParseAddr("198.19.255.1"), ASN: nodeASN})
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	if _, err := s.Set(ctx, d); err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	for s.Status()[0].State != bgpspeaker.StateEstablished {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("established")
	if err := <-done; err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	os.Exit(0) // what the announcer does after Run returns
}

// TestLabSilentExit: a speaker process that exits on SIGTERM without Stop leaves its routes at
// the router (stale, graceful restart); its successor with Restarting refreshes them without a
// withdrawal; Stop withdraws them at once (Hard Reset).
func TestLabSilentExit(t *testing.T) {
	l := newLab(t, nil)
	vip := netip.MustParsePrefix("198.18.100.1/32")
	peer := l.peer("r", false)
	peer.GracefulRestart = true
	d := bgpspeaker.Desired{Peers: []bgpspeaker.Peer{peer}, Routes: []bgpspeaker.Route{{Prefix: vip, NextHop: l.hostV4, Peers: []string{"r"}}}}
	arg, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperSpeaker$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(arg))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "established" {
		t.Fatalf("helper said %q, %v", lines.Text(), lines.Err())
	}
	waitFor(t, 3*time.Second, "route from the first process", l.rib(vip, l.hostV4))
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	waitFor(t, 3*time.Second, "route stale at the router", func() string {
		rt := l.route(t, vip)
		if !rt.Paths[0].Stale {
			return fmt.Sprintf("path %+v is not stale", rt.Paths[0])
		}
		return ""
	})
	time.Sleep(time.Second)
	if why := l.rib(vip, l.hostV4)(); why != "" {
		t.Fatalf("a second after the silent exit: %s", why)
	}

	s := startSpeaker(t, bgpspeaker.Config{ASN: nodeASN, Restarting: true})
	set(t, s, d)
	took := waitFor(t, 5*time.Second, "route refreshed by the successor", func() string {
		rt, err := l.router.Route(context.Background(), vip)
		if err != nil {
			return err.Error()
		}
		if len(rt.Paths) != 1 || rt.Paths[0].Stale {
			return fmt.Sprintf("paths %+v", rt.Paths)
		}
		return ""
	})
	t.Logf("successor refreshed the stale route %s after Set", took)
	if why := l.rib(vip, l.hostV4)(); why != "" {
		t.Fatal(why)
	}

	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	took = waitFor(t, time.Second, "route withdrawn after Stop", l.rib(vip))
	t.Logf("Stop: route gone from the router's kernel %s later", took)
	if st := s.Status(); len(st) != 1 || !strings.EqualFold(st[0].State, bgpspeaker.StateIdle) {
		t.Errorf("status after Stop: %v", st)
	}
}

// TestLabRestartBit: with Config.Restarting, every session announces the restart (R bit,
// RFC 4724) until it first reaches Established: a first session that fails before that (here the
// router refuses our AS at first) is followed by one that still says so, or the router would
// flush the previous process's routes at once; and so does the session of a peer added later.
func TestLabRestartBit(t *testing.T) {
	l := newLab(t, func(c *frr.LabRouter) { c.PeerASN = 64999 })
	s := startSpeaker(t, bgpspeaker.Config{ASN: nodeASN, Restarting: true})
	v4, v6 := l.peer("v4", false), l.peer("v6", true)
	v4.GracefulRestart, v6.GracefulRestart = true, true
	set(t, s, bgpspeaker.Desired{Peers: []bgpspeaker.Peer{v4}})
	// GoBGP logs no notification received before Established, so the status cannot say it:
	// the router's log does. A second refusal follows a re-add of the peer.
	waitFor(t, 8*time.Second, "the router refuses our AS twice", func() string {
		if n := strings.Count(tailFile(l.router.LogPath("bgpd")), "BGP OPEN receipt failed"); n < 2 {
			return fmt.Sprintf("%d refusals; %s", n, status(s, "v4"))
		}
		return ""
	})
	l.conf.PeerASN = 0
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.router.Reload(ctx, frr.LabRouterConfig(l.conf)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "v4 session", established(s, "v4"))
	if n := l.neighbor(t, l.hostV4); !n.GracefulRestartInfo.RBit {
		t.Errorf("the session that followed a failed first one has R=0: the router would flush our stale routes")
	}

	set(t, s, bgpspeaker.Desired{Peers: []bgpspeaker.Peer{v4, v6}})
	waitFor(t, 5*time.Second, "v6 session", established(s, "v6"))
	if n := l.neighbor(t, l.hostV6); !n.GracefulRestartInfo.RBit {
		t.Errorf("the session of a peer added by a later Set has R=0")
	}
}
