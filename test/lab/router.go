package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/test/frr"
)

// The lab's BGP numbers: lab-router's AS, and the nodes' AS in examples/bgp.yaml.
const (
	RouterASN = 64512
	NodeASN   = 64513
	// Peer groups of lab-router's listen ranges: nodes connecting over IPv4 (IPv4 unicast only)
	// and over IPv6 (IPv6 unicast only).
	PeerGroup4 = "NODES4"
	PeerGroup6 = "NODES6"
)

// frrDaemons are the FRR daemons the lab runs in lab-router, in start order.
var frrDaemons = []string{"zebra", "bgpd"}

// FRRDir is where lab-router's FRR keeps its configuration, PID files, vty sockets and logs:
// <repo>/.lab/frr. vtysh reaches it with `vtysh --vty_socket .lab/frr` (hack/lab.sh vtysh).
func (l *Lab) FRRDir() string { return filepath.Join(l.Dir, "frr") }

// RouterConfig is lab-router's frr.conf, read by zebra and bgpd:
//
//   - AS 64512 (RouterASN), router ID its LAN address; it dials nobody: nodes connect from the
//     LAN (bgp listen range) over IPv4 into peer group NODES4, which carries IPv4 unicast only,
//     and over IPv6 into NODES6, IPv6 unicast only ("no bgp default ipv4-unicast"), each with
//     remote-as external (any AS but its own);
//   - "no bgp ebgp-requires-policy" (FRR 8.4 applies RFC 8212 and would accept nothing) and
//     "bgp bestpath as-path multipath-relax" with "maximum-paths 16": the nodes' routes to one VIP
//     form one ECMP group in the kernel;
//   - graceful restart (helper and restarting speaker), so a restarting announcer's routes stay
//     as stale until it is back;
//   - it sends the nodes nothing (route-map NOTHING out): they need no route from it, and a route
//     learned from one node would otherwise be offered to the others;
//   - timers are FRR's defaults: the hold time in use is the smaller of the two proposals, so the
//     BGPPeer's holdTime decides it;
//   - no password: a test that needs MD5 configures a neighbor of its own.
func RouterConfig() string {
	r := RouterHost()
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	p("! lab-router's FRR, written by the lab (test/lab/router.go); nothing of /etc/frr is read.")
	p("frr defaults traditional")
	p("hostname %s", RouterNamespace)
	p("log stdout")
	p("!")
	p("route-map NOTHING deny 10")
	p("exit")
	p("!")
	p("router bgp %d", RouterASN)
	p(" bgp router-id %s", r.IPv4)
	p(" bgp log-neighbor-changes")
	p(" no bgp ebgp-requires-policy")
	p(" no bgp default ipv4-unicast")
	p(" bgp bestpath as-path multipath-relax")
	p(" bgp graceful-restart")
	groups := []struct {
		name   string
		family string
		lan    netip.Prefix
	}{{PeerGroup4, "ipv4", LANPrefix4}, {PeerGroup6, "ipv6", LANPrefix6}}
	for _, g := range groups {
		p(" neighbor %s peer-group", g.name)
		p(" neighbor %s remote-as external", g.name)
	}
	for _, g := range groups {
		p(" bgp listen range %s peer-group %s", g.lan, g.name)
	}
	for _, g := range groups {
		p(" !")
		p(" address-family %s unicast", g.family)
		p("  neighbor %s activate", g.name)
		p("  neighbor %s route-map NOTHING out", g.name)
		p("  maximum-paths 16")
		p(" exit-address-family")
	}
	p("exit")
	p("!")
	return b.String()
}

// ensureRouter starts FRR in lab-router unless it already runs there with RouterConfig; one
// running with another configuration (or only partly) is stopped and started again.
func (l *Lab) ensureRouter(ctx context.Context) error {
	dir := l.FRRDir()
	running := l.frrRunning()
	conf, _ := os.ReadFile(filepath.Join(dir, "frr.conf"))
	if len(running) == len(frrDaemons) && string(conf) == RouterConfig() {
		l.printf("%-36s running (pids %s)\n", "frr (lab-router)", formatPIDs(running))
		return nil
	}
	if len(running) > 0 {
		l.printf("%-36s restarting: configuration changed or a daemon stopped\n", "frr (lab-router)")
		l.stopFRR(io.Discard)
	}
	if err := lookPaths("vtysh", filepath.Join(frr.DaemonDir, "bgpd")); err != nil {
		return fmt.Errorf("FRR is not installed: %w", err)
	}
	start := time.Now()
	r, err := frr.Start(ctx, frr.Config{Namespace: RouterNamespace, Dir: dir, BGPD: RouterConfig()})
	if err != nil {
		return fmt.Errorf("starting FRR in %s: %w", RouterNamespace, err)
	}
	l.router = r
	l.printf("%-36s started in %.1fs (pids %s, logs .lab/frr/)\n", "frr (lab-router)", time.Since(start).Seconds(), formatPIDs(r.PIDs()))
	return nil
}

// frrRunning are the FRR daemons of the lab that run now, by their PID files in FRRDir: alive,
// the daemon's binary, and inside lab-router.
func (l *Lab) frrRunning() map[string]int {
	out := map[string]int{}
	ns, ok := namespaceID(RouterNamespace)
	if !ok {
		return out
	}
	for _, d := range frrDaemons {
		data, err := os.ReadFile(filepath.Join(l.FRRDir(), d+".pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 || !alive(pid) {
			continue
		}
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); filepath.Base(strings.TrimSuffix(exe, " (deleted)")) != d {
			continue
		}
		if have, ok := processNamespace(pid); ok && have == ns {
			out[d] = pid
		}
	}
	return out
}

// stopFRR stops lab-router's FRR: through the handle when this process started it, and by the
// PID files otherwise (make lab-down runs in another process than make lab).
func (l *Lab) stopFRR(out io.Writer) {
	if l.router != nil {
		pids := l.router.PIDs()
		_ = l.router.Stop()
		l.router = nil
		fmt.Fprintf(out, "%-36s stopped (pids %s)\n", "frr (lab-router)", formatPIDs(pids))
		return
	}
	running := l.frrRunning()
	if len(running) == 0 {
		return
	}
	// bgpd first, so it does not log zebra's loss.
	for i := len(frrDaemons) - 1; i >= 0; i-- {
		if pid, ok := running[frrDaemons[i]]; ok {
			stopProcess(pid, 5*time.Second)
		}
	}
	fmt.Fprintf(out, "%-36s stopped (pids %s)\n", "frr (lab-router)", formatPIDs(running))
}

func formatPIDs(pids map[string]int) string {
	var parts []string
	for _, d := range append(frrDaemons, "bfdd") {
		if pid, ok := pids[d]; ok {
			parts = append(parts, fmt.Sprintf("%s %d", d, pid))
		}
	}
	return strings.Join(parts, ", ")
}

// Router is lab-router's FRR, for the typed queries of package frr (Neighbors, Route, JSON...).
// Up returns a Lab whose Router is set; a Lab that adopted an FRR already running (make lab run
// again) reaches it through RouterVTY only, and Router is nil.
func (l *Lab) Router() *frr.Router { return l.router }

// RouterVTY runs vtysh commands against lab-router's FRR (one -c each) and returns the output.
func (l *Lab) RouterVTY(ctx context.Context, cmds ...string) (string, error) {
	if l.router != nil {
		return l.router.VTY(ctx, cmds...)
	}
	argv := []string{frr.VTYSH, "--vty_socket", l.FRRDir()}
	for _, c := range cmds {
		argv = append(argv, "-c", c)
	}
	return runNoTimeout(ctx, argv...)
}

// RestartRouter stops lab-router's FRR (SIGTERM: bgpd sends every node a Cease, as a router
// being restarted does; with kill, SIGKILL: the kernel closes the sessions, as a crash does) and
// starts it again with the same configuration.
func (l *Lab) RestartRouter(ctx context.Context, kill bool) error {
	if l.router != nil && kill {
		_ = l.router.Kill()
		l.router = nil
	}
	l.stopFRR(io.Discard)
	r, err := frr.Start(ctx, frr.Config{Namespace: RouterNamespace, Dir: l.FRRDir(), BGPD: RouterConfig()})
	if err != nil {
		return fmt.Errorf("restarting FRR in %s: %w", RouterNamespace, err)
	}
	l.router = r
	return nil
}

// frrStatus is Status's line for FRR: its daemons and how many BGP sessions are established.
func (l *Lab) frrStatus() string {
	running := l.frrRunning()
	if len(running) == 0 {
		return "not running"
	}
	s := "running (pids " + formatPIDs(running) + ")"
	if len(running) < len(frrDaemons) {
		return s + ", partly: make lab restarts it"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, frr.VTYSH, "--vty_socket", l.FRRDir(), "-c", "show bgp summary json").Output()
	if err != nil {
		return s + ", vtysh: " + err.Error()
	}
	up, total, err := countSessions(out)
	if err != nil {
		return s
	}
	return fmt.Sprintf("%s, BGP sessions established %d/%d", s, up, total)
}

// countSessions counts the established and all neighbors in `show bgp summary json`.
func countSessions(summary []byte) (established, total int, err error) {
	var families map[string]json.RawMessage
	if err := json.Unmarshal(summary, &families); err != nil {
		return 0, 0, err
	}
	for _, raw := range families {
		var f struct {
			Peers map[string]struct {
				State string `json:"state"`
			} `json:"peers"`
		}
		if json.Unmarshal(raw, &f) != nil {
			continue
		}
		for _, p := range f.Peers {
			total++
			if p.State == "Established" {
				established++
			}
		}
	}
	return established, total, nil
}
