//go:build linux

package frr_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/test/frr"
)

// TestStartStop runs the real FRR in a namespace of its own and checks that vtysh reaches it,
// that its files stay in its directory, and that Stop leaves no daemon behind.
func TestStartStop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test creates a network namespace and runs FRR: run it as root (CI does)")
	}
	ns := fmt.Sprintf("frrt-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", ns, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conf := frr.LabRouterConfig(frr.LabRouter{
		ASN: 64500, RouterID: netip.MustParseAddr("198.18.0.1"),
		ListenRanges: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")},
	})
	base, err := frr.PrivateDir("frrt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	dir := filepath.Join(base, "frr")
	r, err := frr.Start(ctx, frr.Config{Namespace: ns, Dir: dir, BGPD: conf, BFD: true})
	if err != nil {
		t.Fatal(err)
	}
	pids := r.PIDs()
	t.Cleanup(func() { _ = r.Stop() })
	if len(pids) != 3 {
		t.Fatalf("PIDs() = %v, want zebra, bgpd and bfdd", pids)
	}
	out, err := r.VTY(ctx, "show running-config")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "bgp listen range 198.18.0.0/24 peer-group NODES") {
		t.Errorf("running config lacks the listen range:\n%s", out)
	}
	n, err := r.Neighbors(ctx)
	if err != nil || len(n) != 0 {
		t.Errorf("Neighbors() = %v, %v; want none", n, err)
	}
	if err := r.Reload(ctx, "router bgp 64500\n bgp log-neighbor-changes\n"); err != nil {
		t.Error(err)
	}
	if err := r.Reload(ctx, "router bgp 64500\n no-such-command\n"); err == nil {
		t.Error("Reload accepted a command FRR rejects")
	}
	if _, err := r.Route(ctx, netip.MustParsePrefix("198.18.9.9/32")); err == nil {
		t.Error("Route of an unknown prefix: no error")
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("%s (pid %d) still runs after Stop", name, pid)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bgpd.vty")); err == nil {
		t.Error("bgpd.vty left behind")
	}
}
