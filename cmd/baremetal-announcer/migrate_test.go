package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runMainEnv makes the test binary run main() with the arguments after "--" instead of the
// tests, so that a test can check what the real command line does.
const runMainEnv = "BAREMETAL_ANNOUNCER_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"baremetal-announcer"}, os.Args[i+1:]...)
				break
			}
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const seedInput = `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: first-pool, namespace: metallb-system}
spec:
  addresses: [192.168.1.240-192.168.1.250]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: example, namespace: metallb-system}
spec:
  ipAddressPools: [first-pool]
`

// TestMigrateCommandLine runs the real main: "baremetal-announcer migrate-metallb" reads stdin
// and writes the converted objects on stdout, the summary on stderr, and exits 0.
func TestMigrateCommandLine(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "migrate-metallb")
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	cmd.Stdin = strings.NewReader(seedInput)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("migrate-metallb: %v\nstderr: %s", err, stderr.String())
	}
	for _, want := range []string{"kind: IPPool", "name: first-pool", "- 192.168.1.240-192.168.1.250", "l2: {}"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "1 IPPools, 0 BGPPeers, 0 Secrets from stdin") {
		t.Errorf("stderr: %s", stderr.String())
	}
}

func TestMigrateFiles(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "metallb.yaml"), filepath.Join(dir, "ours.yaml")
	input := seedInput + `---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor, namespace: metallb-system}
spec: {myASN: 64512, peerASN: 64512, peerAddress: 10.0.0.1, password: hunter2, bfdProfile: fast}
`
	if err := os.WriteFile(in, []byte(input), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runMigrateMetalLB([]string{"-f", in, "-o", out}, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("wrote stdout although -o was given: %s", stdout.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "# Converted from MetalLB") || !strings.Contains(string(data), "kind: BGPPeer") || !strings.Contains(string(data), "password: hunter2") {
		t.Errorf("output file:\n%s", data)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("output mode %v (%v): it holds a password, want 0600", fi.Mode(), err)
	}
	if !strings.Contains(stderr.String(), "not converted: BGPPeer metallb-system/tor spec.bfdProfile") {
		t.Errorf("stderr does not list what was not converted: %s", stderr.String())
	}
}

func TestMigrateErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		code  int
		want  string
	}{
		{"unknown flag", []string{"-x"}, "", 2, "flag provided but not defined"},
		{"stray argument", []string{"file.yaml"}, "", 2, `unexpected argument "file.yaml"`},
		{"missing file", []string{"-f", "/nonexistent/metallb.yaml"}, "", 1, "/nonexistent/metallb.yaml"},
		{"not YAML", nil, "a: [b\n", 1, "stdin: YAML document 1"},
	} {
		var stdout, stderr bytes.Buffer
		code := runMigrateMetalLB(tc.args, strings.NewReader(tc.stdin), &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", tc.name, code, stderr.String(), tc.code, tc.want)
		}
	}
}
