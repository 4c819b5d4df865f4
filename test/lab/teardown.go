package lab

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// Down stops the lab this handle belongs to; see the package-level Down.
func (l *Lab) Down() error {
	if l.router != nil && os.Geteuid() == 0 {
		l.stopFRR(l.out)
	}
	return down(context.Background(), l.out)
}

// Down removes every part of the lab, whoever started it: its processes (by their PID files,
// FRR's in .lab/frr included, then any process left inside a lab namespace, each by PID), its namespaces (with their links,
// addresses and nftables rules), the host end of the management link, and the state directory.
// It is harmless when no lab exists.
func Down(out io.Writer) error {
	if out == nil {
		out = io.Discard
	}
	return down(context.Background(), out)
}

func down(ctx context.Context, out io.Writer) error {
	if os.Geteuid() != 0 {
		return errNotRoot
	}
	l := newLab(out)
	comps, _ := l.components(false)
	for i := len(comps) - 1; i >= 0; i-- {
		c := comps[i]
		if pid, state, _ := l.inspect(c); state != stopped {
			stopProcess(pid, 10*time.Second)
			l.printf("%-36s stopped (pid %d)\n", c.name, pid)
		}
	}
	l.stopFRR(out)
	// Anything else still inside a lab namespace (a process started by hand, or by a test).
	ids := map[netnsID]string{}
	for _, ns := range labNamespacesPresent() {
		if id, ok := namespaceID(ns); ok {
			ids[id] = ns
		}
	}
	for pid, ns := range processesInNamespaces(ids) {
		name := processName(pid)
		stopProcess(pid, 5*time.Second)
		l.printf("%-36s stopped (pid %d, left in %s)\n", name, pid, ns)
	}
	var errs []error
	if present := labNamespacesPresent(); len(present) > 0 || linkExists(ctx, "", HostManagementLink) {
		if err := teardownNetwork(ctx); err != nil {
			errs = append(errs, err)
		} else {
			l.printf("%-36s removed (namespaces %s, link %s)\n", "network", strings.Join(present, " "), HostManagementLink)
		}
	}
	if _, err := os.Stat(l.Dir); err == nil {
		if err := os.RemoveAll(l.Dir); err != nil {
			errs = append(errs, err)
		} else {
			l.printf("%-36s removed\n", ".lab/")
		}
	}
	return errors.Join(errs...)
}

// Status prints the state of every part of the lab.
func Status(out io.Writer) error {
	l := newLab(out)
	comps, err := l.components(false)
	if err != nil {
		return err
	}
	for _, c := range comps {
		if c.optional != "" {
			if _, err := os.Stat(c.bin); err != nil {
				continue
			}
		}
		switch pid, state, why := l.inspect(c); state {
		case running:
			l.printf("%-36s running (pid %d)\n", c.name, pid)
		case stale:
			l.printf("%-36s running (pid %d), stale: %s\n", c.name, pid, why)
		default:
			l.printf("%-36s not running\n", c.name)
		}
	}
	l.printf("%-36s %s\n", "frr (lab-router)", l.frrStatus())
	present := labNamespacesPresent()
	for _, ns := range Namespaces() {
		if !slices.Contains(present, ns) {
			l.printf("%-36s missing\n", "netns/"+ns)
		}
	}
	if len(present) > 0 {
		for _, h := range Hosts() {
			if !slices.Contains(present, h.Namespace) {
				continue
			}
			state := linkState(LANNamespace, h.Cable)
			if h.Management.IsValid() {
				state += ", management " + linkState(LANNamespace, h.ManagementCable)
			}
			l.printf("%-36s cable %s\n", "netns/"+h.Namespace, state)
		}
		if slices.Contains(present, RemoteNamespace) {
			l.printf("%-36s link %s (lab-router %s)\n", "netns/"+RemoteNamespace,
				linkState(RouterNamespace, RouterSubnetInterface), RouterSubnetInterface)
		}
	}
	return nil
}

func linkState(ns, name string) string {
	out, err := run(context.Background(), "ip", "-n", ns, "-br", "link", "show", "dev", name)
	if err != nil {
		return "missing"
	}
	if f := strings.Fields(out); len(f) > 1 {
		return strings.ToLower(f[1])
	}
	return "?"
}
