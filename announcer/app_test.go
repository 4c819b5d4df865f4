package announcer

import (
	"net/netip"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestNodeIP(t *testing.T) {
	n := &v1.Node{Status: v1.NodeStatus{Addresses: []v1.NodeAddress{
		{Type: v1.NodeHostName, Address: "h"},
		{Type: v1.NodeInternalIP, Address: "2001:db8::11"},
		{Type: v1.NodeInternalIP, Address: "198.18.0.11"},
	}}}
	if got, ok := nodeIP(n); !ok || got != netip.MustParseAddr("198.18.0.11") {
		t.Errorf("nodeIP = %v %v, want the IPv4 InternalIP", got, ok)
	}
	if _, ok := nodeIP(&v1.Node{}); ok {
		t.Error("nodeIP found an address on a node without any")
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NodeName = "n1"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults with a node name: %v", err)
	}
	bad := cfg
	bad.NodeName = ""
	bad.FailureTimeout = bad.HeartbeatInterval
	bad.JoinGrace = 0
	err := bad.Validate()
	if err == nil {
		t.Fatal("a bad config validated")
	}
	for _, want := range []string{"node name", "failure timeout", "join grace"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestLocalMetricsURL(t *testing.T) {
	for addr, want := range map[string]string{
		":7472":            "http://127.0.0.1:7472/metrics",
		"0.0.0.0:7472":     "http://127.0.0.1:7472/metrics",
		"198.18.0.11:9100": "http://198.18.0.11:9100/metrics",
		"[::]:7472":        "http://127.0.0.1:7472/metrics",
		"":                 "",
		"nonsense":         "",
	} {
		if got := localMetricsURL(addr); got != want {
			t.Errorf("localMetricsURL(%q) = %q, want %q", addr, got, want)
		}
	}
}
