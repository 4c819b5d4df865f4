package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/test/framework"
)

// component is one background process of the lab. Its log is <dir>/<name>.log and its PID file
// <dir>/<name>.pid; it outlives the process that started it (`make lab` returns).
type component struct {
	name string
	// bin is the binary's path (a symlink is resolved when comparing with a running process).
	bin  string
	args []string
	// netns, when set, is the network namespace the process runs in (through ip netns exec).
	netns string
	// before runs before the process starts, also when it is already running.
	before func(ctx context.Context) error
	// ready waits until the started process serves; exited reports that it died meanwhile.
	ready func(ctx context.Context, exited func() (bool, error)) error
	// optional components are skipped, with a note, when their binary does not exist.
	optional string
}

// procState is what the lab finds of a component's process.
type procState int

const (
	stopped procState = iota
	running
	// stale: running, but from a binary since rebuilt or replaced, with other flags than the lab
	// now gives it, or in a network namespace since deleted and made anew. Up restarts it.
	stale
)

// inspect reads the component's PID file and looks at the process. A PID file whose process has
// gone, or whose PID now belongs to another program, counts as stopped.
func (l *Lab) inspect(c component) (int, procState, string) {
	data, err := os.ReadFile(filepath.Join(l.Dir, c.name+".pid"))
	if err != nil {
		return 0, stopped, ""
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 || !alive(pid) {
		return 0, stopped, ""
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return 0, stopped, ""
	}
	deleted := strings.HasSuffix(exe, " (deleted)")
	exe = strings.TrimSuffix(exe, " (deleted)")
	if filepath.Base(exe) != filepath.Base(c.bin) {
		if c.netns != "" && filepath.Base(exe) == "ip" {
			// Started a moment ago: ip netns exec has not yet run the binary.
			return pid, running, ""
		}
		return 0, stopped, ""
	}
	want, err := filepath.EvalSymlinks(c.bin)
	if err != nil {
		want = c.bin
	}
	switch {
	case deleted || exe != want:
		return pid, stale, "its binary changed"
	case !slices.Equal(processArgs(pid), c.args):
		return pid, stale, "its flags changed"
	case c.netns != "":
		have, ok1 := processNamespace(pid)
		ns, ok2 := namespaceID(c.netns)
		if !ok1 || !ok2 || have != ns {
			return pid, stale, "its network namespace was made anew"
		}
	}
	return pid, running, ""
}

// processArgs are a process's arguments after argv[0], or nil if they cannot be read.
func processArgs(pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(data) == 0 {
		return nil
	}
	argv := strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
	return argv[1:]
}

// start starts the component detached from the caller and records its PID.
func (l *Lab) start(c component) (int, error) {
	if c.netns == "" {
		return framework.StartDetached(c.name, l.Dir, c.bin, c.args...)
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		return 0, err
	}
	args := append([]string{"netns", "exec", c.netns, c.bin}, c.args...)
	return framework.StartDetached(c.name, l.Dir, ip, args...)
}

// ensure starts the component unless it runs; a stale process is stopped and started again.
func (l *Lab) ensure(ctx context.Context, c component) error {
	if c.before != nil {
		if err := c.before(ctx); err != nil {
			return err
		}
	}
	if c.optional != "" {
		if _, err := os.Stat(c.bin); err != nil {
			l.printf("%-36s %s\n", c.name, c.optional)
			return nil
		}
	}
	pid, state, why := l.inspect(c)
	switch state {
	case running:
		l.printf("%-36s running (pid %d)\n", c.name, pid)
		return nil
	case stale:
		l.printf("%-36s restarting: %s (pid %d)\n", c.name, why, pid)
		stopProcess(pid, 10*time.Second)
	}
	started := time.Now()
	pid, err := l.start(c)
	if err != nil {
		return err
	}
	logPath := filepath.Join(l.Dir, c.name+".log")
	exited := func() (bool, error) {
		if alive(pid) {
			return false, nil
		}
		return true, fmt.Errorf("%s exited; see %s", c.name, logPath)
	}
	if c.ready != nil {
		if err := c.ready(ctx, exited); err != nil {
			return fmt.Errorf("%s did not become ready (log %s): %w", c.name, logPath, err)
		}
	} else if err := waitRunning(ctx, l, c, pid); err != nil {
		return err
	}
	l.printf("%-36s started in %.1fs (pid %d, log .lab/%s.log)\n", c.name, time.Since(started).Seconds(), pid, c.name)
	return nil
}

// waitRunning waits a moment to see that a component without a readiness check stays up (and,
// inside a namespace, has become its binary).
func waitRunning(ctx context.Context, l *Lab, c component, pid int) error {
	deadline := time.Now().Add(time.Second)
	for {
		if !alive(pid) {
			return fmt.Errorf("%s exited at once; see %s", c.name, filepath.Join(l.Dir, c.name+".log"))
		}
		if time.Now().After(deadline) {
			if _, state, _ := l.inspect(c); state == running {
				return nil
			}
		}
		if time.Now().After(deadline.Add(10 * time.Second)) {
			return fmt.Errorf("%s (pid %d) did not start %s", c.name, pid, c.bin)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// alive reports whether pid is a live process. A zombie is not: it is reaped here when it is our
// child (the e2e tests start the lab from the test process), and by its parent otherwise.
func alive(pid int) bool {
	var ws syscall.WaitStatus
	if wpid, _ := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); wpid == pid {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may hold spaces.
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

// stopProcess ends a process by PID: SIGTERM, then SIGKILL after grace.
func stopProcess(pid int, grace time.Duration) {
	if pid <= 0 || !alive(pid) {
		return
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return
	}
	if waitGone(pid, grace) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	waitGone(pid, 5*time.Second)
}

func waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return !alive(pid)
}

// processesInNamespaces lists the processes living in any of the given network namespaces.
func processesInNamespaces(namespaces map[netnsID]string) map[int]string {
	out := map[int]string{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		id, ok := processNamespace(pid)
		if !ok {
			continue
		}
		if ns, ok := namespaces[id]; ok && alive(pid) {
			out[pid] = ns
		}
	}
	return out
}

// processName is the command name of a process, for messages.
func processName(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(data))
}

var errNotRoot = errors.New("the lab needs root: it makes network namespaces, veth links and nftables rules (run make lab, or go test ./test/e2e/, as root)")

// component finds one of the lab's components by name (see AnnouncerComponent, CCMComponent...).
func (l *Lab) component(name string) (component, error) {
	comps, err := l.components(true)
	if err != nil {
		return component{}, err
	}
	for _, c := range comps {
		if c.name == name {
			return c, nil
		}
	}
	return component{}, fmt.Errorf("no lab component %q", name)
}

// PID is the process ID of a running lab component, such as AnnouncerComponent("lab-node-2").
func (l *Lab) PID(name string) (int, error) {
	c, err := l.component(name)
	if err != nil {
		return 0, err
	}
	pid, state, _ := l.inspect(c)
	if state == stopped {
		return 0, fmt.Errorf("lab component %s is not running", name)
	}
	return pid, nil
}

// Kill sends sig to a running component (SIGKILL for a crash, SIGTERM for a planned stop) and
// waits up to timeout for it to exit. Start runs it again.
func (l *Lab) Kill(name string, sig syscall.Signal, timeout time.Duration) error {
	pid, err := l.PID(name)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signalling %s (pid %d): %w", name, pid, err)
	}
	if !waitGone(pid, timeout) {
		return fmt.Errorf("%s (pid %d) still runs %v after signal %v", name, pid, timeout, sig)
	}
	return nil
}

// Start starts a lab component that is not running (as Up would), and waits until it is ready.
func (l *Lab) Start(ctx context.Context, name string) error {
	c, err := l.component(name)
	if err != nil {
		return err
	}
	c.before = nil // Up has done it
	return l.ensure(ctx, c)
}

// StartAll starts several lab components that are not running at the same moment, each as
// Start does, and waits until all are ready: a cluster-wide restart, such as every announcer
// of a DaemonSet coming back at once.
func (l *Lab) StartAll(ctx context.Context, names ...string) error {
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { errs[i] = l.Start(ctx, name) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
