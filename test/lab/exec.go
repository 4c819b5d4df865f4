package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// commandTimeout bounds every command the lab runs for itself (ip, nft, sysctl writes).
const commandTimeout = 30 * time.Second

// run runs a command and returns its standard output; the error carries its standard error.
func run(ctx context.Context, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	return runNoTimeout(ctx, argv...)
}

func runNoTimeout(ctx context.Context, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return stdout.String(), &CommandError{Argv: argv, Stderr: msg, Err: err}
	}
	return stdout.String(), nil
}

// CommandError is a command that failed: what ran, what it printed on standard error, and how it
// ended (an *exec.ExitError for a non-zero exit status).
type CommandError struct {
	Argv   []string
	Stderr string
	Err    error
}

func (e *CommandError) Error() string {
	if e.Stderr == "" {
		return fmt.Sprintf("%s: %v", strings.Join(e.Argv, " "), e.Err)
	}
	return fmt.Sprintf("%s: %v: %s", strings.Join(e.Argv, " "), e.Err, e.Stderr)
}

func (e *CommandError) Unwrap() error { return e.Err }

// ExitCode is the command's exit status, or -1 if it did not exit normally.
func (e *CommandError) ExitCode() int {
	var exit *exec.ExitError
	if errors.As(e.Err, &exit) {
		return exit.ExitCode()
	}
	return -1
}

// Exec runs argv inside the network namespace ns (ip netns exec) and returns its standard output.
// A failure is a *CommandError holding the exit status and standard error.
func (l *Lab) Exec(ns string, argv ...string) (string, error) {
	return l.ExecContext(context.Background(), ns, argv...)
}

// ExecContext is Exec with a context that ends the command.
func (l *Lab) ExecContext(ctx context.Context, ns string, argv ...string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("lab: Exec needs a command")
	}
	return runNoTimeout(ctx, append([]string{"ip", "netns", "exec", ns}, argv...)...)
}

// writeSysctls sets sysctls inside namespace ns ("" for the host) through /proc/sys; kv holds
// key, value, key, value...
func writeSysctls(ctx context.Context, ns string, kv ...string) error {
	var script strings.Builder
	script.WriteString("set -e\n")
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&script, "echo %s > /proc/sys/%s\n", kv[i+1], strings.ReplaceAll(kv[i], ".", "/"))
	}
	argv := []string{"sh", "-c", script.String()}
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	_, err := run(ctx, argv...)
	return err
}

// lookPaths fails unless every command is installed.
func lookPaths(names ...string) error {
	var missing []string
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing commands %v: run hack/install-deps.sh lab (or make lab) as root", missing)
	}
	return nil
}
