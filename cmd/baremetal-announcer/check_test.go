package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestRunCheckFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--heartbeat-port", "0"},
		{"--heartbeat-port", "70000"},
		{"--vip", "198.18.0.300"},
		{"--node-ip", "nope"},
		{"--output", "yaml"},
		{"--fail-on", "fatal"},
		{"extra"},
		{"--vip", "224.0.0.1"}, // not unicast: Config.Validate
	} {
		var stdout, stderr bytes.Buffer
		if code := runCheck(args, &stdout, &stderr); code != 2 {
			t.Errorf("runCheck(%q) = %d, want 2 (usage); stderr: %s", args, code, stderr.String())
		}
	}
}

// TestRunCheckWithoutAPI runs the command as an operator would on a host without a kubeconfig.
// With no node address, no --vip and no metrics URL it sends nothing on any network.
func TestRunCheckWithoutAPI(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	var stdout, stderr bytes.Buffer
	code := runCheck([]string{"--node-name", "node-a", "--metrics-url", "", "--output", "json", "--fail-on", "error"}, &stdout, &stderr)
	var out struct {
		Node     string `json:"node"`
		Findings []struct {
			Severity string `json:"severity"`
			Reason   string `json:"reason"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
	}
	reasons := ""
	for _, f := range out.Findings {
		reasons += f.Severity + " " + f.Reason + "\n"
	}
	for _, want := range []string{"warning APIUnreachable", "warning NodeIPUnknown", "info HeartbeatLimits"} {
		if !strings.Contains(reasons, want+"\n") {
			t.Errorf("no %q in:\n%s", want, reasons)
		}
	}
	// Errors only when the process may not open raw sockets (not root): exit 1 then, else 0.
	wantCode := 0
	if strings.Contains(reasons, "error ") {
		wantCode = 1
	}
	if code != wantCode || out.Node != "node-a" {
		t.Errorf("exit %d node %q, want %d node-a; stderr: %s", code, out.Node, wantCode, stderr.String())
	}
}
