// Package frr runs a real FRR router (zebra, bgpd and optionally bfdd from Debian's frr package)
// inside an existing network namespace, with every file it writes under one private directory,
// and reads its state back through vtysh's JSON output. It exists so that the BGP tests talk to
// a real router (STYLE.md #11), and it never touches /etc/frr or the host's /var/run/frr.
//
// The daemons run in the foreground as children of the calling process, so the Router knows
// their PIDs and stops exactly them. Each one starts as `ip netns exec <ns> <daemon>`: `ip`
// enters the namespace and execs the daemon in place, so the PID is the daemon's own.
package frr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Paths of the Debian frr package.
const (
	DaemonDir = "/usr/lib/frr"
	VTYSH     = "/usr/bin/vtysh"
)

// Config says where and how to run the router.
type Config struct {
	Namespace string // existing network namespace to run in
	// Dir is the private state directory (config, PID files, vty sockets, logs), created if
	// missing. The daemons run as user frr, so every parent must be searchable by it (t.TempDir's
	// are not: use PrivateDir in tests).
	Dir  string
	BGPD string // frr.conf-style configuration; zebra, bgpd (and bfdd) all read it with -f
	BFD  bool   // also run bfdd, with its control socket in Dir
}

// Router is a running FRR instance.
type Router struct {
	cfg   Config
	mu    sync.Mutex
	procs []*proc // in start order
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when Wait returned
	err  error         // Wait's result, valid after done
	log  *os.File
}

// daemons returns the daemons to run, in start order: zebra first, since the others connect to
// its zserv socket.
func (c Config) daemons() []string {
	d := []string{"zebra", "bgpd"}
	if c.BFD {
		d = append(d, "bfdd")
	}
	return d
}

// ConfigPath is the file the daemons read.
func (r *Router) ConfigPath() string { return filepath.Join(r.cfg.Dir, "frr.conf") }

// Dir is the router's private state directory.
func (r *Router) Dir() string { return r.cfg.Dir }

// Namespace is the network namespace the router runs in.
func (r *Router) Namespace() string { return r.cfg.Namespace }

// LogPath is the file a daemon's stdout and stderr go to.
func (r *Router) LogPath(daemon string) string { return filepath.Join(r.cfg.Dir, daemon+".log") }

// Start starts zebra, bgpd (and bfdd) as user frr in cfg.Namespace and waits until vtysh gets
// answers from all of them. On failure it stops what it started.
func Start(ctx context.Context, cfg Config) (*Router, error) {
	if cfg.Namespace == "" || cfg.Dir == "" {
		return nil, fmt.Errorf("frr: Namespace %q and Dir %q must both be set", cfg.Namespace, cfg.Dir)
	}
	if _, err := os.Stat(filepath.Join("/run/netns", cfg.Namespace)); err != nil {
		return nil, fmt.Errorf("frr: network namespace %q: %w", cfg.Namespace, err)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cfg.Dir = dir
	r := &Router{cfg: cfg}
	if err := r.prepareDir(); err != nil {
		return nil, err
	}
	// bgpd started before zebra listens loses its first messages to zebra (nexthop
	// registrations: "zclient_send_message() failed"), and its routes then miss the kernel.
	for i, d := range cfg.daemons() {
		if err := r.startDaemon(d); err != nil {
			_ = r.Stop()
			return nil, err
		}
		if i == 0 {
			if err := r.waitReady(ctx); err != nil {
				_ = r.Stop()
				return nil, err
			}
		}
	}
	if err := r.waitReady(ctx); err != nil {
		_ = r.Stop()
		return nil, err
	}
	return r, nil
}

// prepareDir creates Dir, writes the configuration and hands both to user frr, which the
// daemons switch to after start (they create their sockets and PID files there).
func (r *Router) prepareDir() error {
	if err := os.MkdirAll(r.cfg.Dir, 0o750); err != nil {
		return fmt.Errorf("frr: %w", err)
	}
	uid, gid, err := frrIDs()
	if err != nil {
		return err
	}
	// Sockets of an earlier run in the same directory would make waitReady succeed early.
	for _, d := range []string{"zebra", "bgpd", "bfdd"} {
		_ = os.Remove(filepath.Join(r.cfg.Dir, d+".vty"))
	}
	if err := os.WriteFile(r.ConfigPath(), []byte(r.cfg.BGPD), 0o640); err != nil {
		return fmt.Errorf("frr: %w", err)
	}
	for _, p := range []string{r.cfg.Dir, r.ConfigPath()} {
		if err := os.Chown(p, uid, gid); err != nil {
			return fmt.Errorf("frr: %w", err)
		}
	}
	return nil
}

// PrivateDir returns a fresh directory under the system's temporary directory that user frr
// can reach, for tests; the caller removes it.
func PrivateDir(prefix string) (string, error) {
	d, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", fmt.Errorf("frr: %w", err)
	}
	// MkdirTemp makes it 0700; the daemons only need to traverse it to reach Dir.
	if err := os.Chmod(d, 0o711); err != nil {
		return "", fmt.Errorf("frr: %w", err)
	}
	return d, nil
}

func frrIDs() (uid, gid int, err error) {
	u, err := user.Lookup("frr")
	if err != nil {
		return 0, 0, fmt.Errorf("frr: user frr (is the Debian frr package installed?): %w", err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid, nil
}

func (r *Router) startDaemon(name string) error {
	d := r.cfg.Dir
	args := []string{"netns", "exec", r.cfg.Namespace, filepath.Join(DaemonDir, name),
		"-f", r.ConfigPath(),
		"-i", filepath.Join(d, name+".pid"),
		"-z", filepath.Join(d, "zserv.api"),
		"--vty_socket", d,
		"-P", "0", // no TCP vty: vtysh uses the sockets in Dir
		"-u", "frr", "-g", "frr",
		"--log", "stdout",
	}
	if name == "bfdd" {
		args = append(args, "--bfdctl", filepath.Join(d, "bfdd.sock"))
	}
	logf, err := os.OpenFile(r.LogPath(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("frr: %w", err)
	}
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that a terminal's Ctrl-C reaches the test, which then stops the
	// daemons by PID, rather than the daemons directly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("frr: starting %s in %s: %w", name, r.cfg.Namespace, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: logf}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	r.mu.Lock()
	r.procs = append(r.procs, p)
	r.mu.Unlock()
	return nil
}

// waitReady polls until every daemon answers on its vty socket, or one exits.
func (r *Router) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		r.mu.Lock()
		procs := append([]*proc(nil), r.procs...)
		r.mu.Unlock()
		ready := true
		for _, p := range procs {
			select {
			case <-p.done:
				return fmt.Errorf("frr: %s exited during start (%w); its log %s:\n%s", p.name, p.err, r.LogPath(p.name), tail(r.LogPath(p.name)))
			default:
			}
			if _, err := os.Stat(filepath.Join(r.cfg.Dir, p.name+".vty")); err != nil {
				ready = false
			}
			if _, err := os.Stat(filepath.Join(r.cfg.Dir, "zserv.api")); err != nil && p.name == "zebra" {
				ready = false
			}
		}
		if ready {
			if _, err := r.VTY(ctx, "show version"); err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("frr: daemons in %s did not answer vtysh: %w", r.cfg.Dir, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// PIDs returns the daemons' process IDs by name.
func (r *Router) PIDs() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]int, len(r.procs))
	for _, p := range r.procs {
		m[p.name] = p.cmd.Process.Pid
	}
	return m
}

// Stop sends SIGTERM to every daemon (bgpd then sends a Cease to its peers), waits for them,
// uses SIGKILL on any still running after 5 s, and removes the sockets. The directory, config
// and logs stay; Start may use it again.
func (r *Router) Stop() error { return r.stop(syscall.SIGTERM) }

// Kill stops the daemons with SIGKILL: no notification reaches the peers, the kernel closes the
// TCP sessions (what a crashed router does).
func (r *Router) Kill() error { return r.stop(syscall.SIGKILL) }

func (r *Router) stop(sig syscall.Signal) error {
	r.mu.Lock()
	procs := r.procs
	r.procs = nil
	r.mu.Unlock()
	var errs []error
	// Reverse start order: bgpd leaves before zebra, so it does not log zebra's loss.
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		select {
		case <-p.done:
			continue
		default:
		}
		if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, fmt.Errorf("frr: signalling %s (pid %d): %w", p.name, p.cmd.Process.Pid, err))
		}
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			errs = append(errs, fmt.Errorf("frr: %s (pid %d) ignored %v for 5 s and was killed", p.name, p.cmd.Process.Pid, sig))
		}
	}
	for _, name := range []string{"zebra.vty", "bgpd.vty", "bfdd.vty", "zserv.api", "bfdd.sock"} {
		_ = os.Remove(filepath.Join(r.cfg.Dir, name))
	}
	return errors.Join(errs...)
}

// VTY runs vtysh against this router's sockets with one -c per command and returns its output.
func (r *Router) VTY(ctx context.Context, cmds ...string) (string, error) {
	args := []string{"--vty_socket", r.cfg.Dir}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	cmd := exec.CommandContext(ctx, VTYSH, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("frr: vtysh %q in %s: %w: %s", cmds, r.cfg.Dir, err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// JSON runs one show command with " json" appended (unless it ends with it already) and decodes
// the output into v.
func (r *Router) JSON(ctx context.Context, cmd string, v any) error {
	if !strings.HasSuffix(cmd, " json") {
		cmd += " json"
	}
	out, err := r.VTY(ctx, cmd)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("frr: decoding %q: %w: %.500s", cmd, err, out)
	}
	return nil
}

// Reload writes conf as the new configuration file (used by the next Start) and applies each of
// its lines to the running daemons in one `configure terminal` session. It adds and changes
// configuration; it removes nothing that conf does not negate with a "no ..." line.
func (r *Router) Reload(ctx context.Context, conf string) error {
	if err := os.WriteFile(r.ConfigPath(), []byte(conf), 0o640); err != nil {
		return fmt.Errorf("frr: %w", err)
	}
	cmds := []string{"configure terminal"}
	for line := range strings.SplitSeq(conf, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line == "!" || strings.HasPrefix(line, "#") {
			continue
		}
		cmds = append(cmds, line)
	}
	out, err := r.VTY(ctx, cmds...)
	if err != nil {
		return err
	}
	// vtysh exits 0 even when a line is rejected; it prints the reason.
	if strings.Contains(out, "% ") {
		return fmt.Errorf("frr: reload of %s: %s", r.cfg.Dir, strings.TrimSpace(out))
	}
	return nil
}
