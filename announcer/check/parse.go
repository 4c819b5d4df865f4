package check

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/yaml"
)

// ParseSysctlInt reads an integer sysctl as /proc/sys prints it: decimal, one trailing
// newline. Multi-valued sysctls (tab-separated) are refused.
func ParseSysctlInt(b []byte) (int, error) {
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" || strings.ContainsAny(s, " \t\n") {
		return 0, fmt.Errorf("sysctl value %q: want one integer", b)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("sysctl value %q: %w", b, err)
	}
	return n, nil
}

// KubeProxyConfig is what the check reads of kube-proxy's KubeProxyConfiguration.
type KubeProxyConfig struct {
	// Mode is "ipvs", "iptables", "nftables" or "" (the platform default: iptables on Linux).
	Mode string `json:"mode"`
	IPVS struct {
		// StrictARP makes kube-proxy set arp_ignore=1 and arp_announce=2 on all interfaces.
		StrictARP bool `json:"strictARP"`
	} `json:"ipvs"`
}

// IsIPVS reports whether kube-proxy runs in IPVS mode.
func (c *KubeProxyConfig) IsIPVS() bool { return strings.EqualFold(strings.TrimSpace(c.Mode), "ipvs") }

// ParseKubeProxyConfig reads the config.conf key of the kube-system/kube-proxy ConfigMap (a
// KubeProxyConfiguration, YAML or JSON) as kubeadm writes it. Fields the check does not need
// are ignored; a document that is not a mapping, or a mode or strictARP of the wrong type, is
// an error.
func ParseKubeProxyConfig(b []byte) (*KubeProxyConfig, error) {
	if strings.TrimSpace(string(b)) == "" {
		return nil, errors.New("kube-proxy configuration is empty")
	}
	var c KubeProxyConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("parsing kube-proxy's configuration: %w", err)
	}
	return &c, nil
}

// AnnouncerMetrics is what the check reads of a running announcer's Prometheus metrics.
type AnnouncerMetrics struct {
	// MemberState is baremetal_announcer_member_state: 1 joining, 2 active, 3 leaving.
	MemberState float64
	// PeersAlive and PeersConnected are the peers heard, and heard two-way.
	PeersAlive, PeersConnected float64
	// Dropped is baremetal_announcer_heartbeats_dropped_total by reason.
	Dropped map[string]float64
	// WireConflicts is baremetal_announcer_wire_conflicts_total by kind.
	WireConflicts map[string]float64
}

// maxMetricsLine bounds one line of the metrics text.
const maxMetricsLine = 64 << 10

// ParseMetrics reads the samples the check needs from the Prometheus text exposition format
// (version 0.0.4): comments and other metrics are skipped; a sample line it needs that does
// not parse is an error. It returns an error too when the text has no
// baremetal_announcer_member_state (not an announcer).
func ParseMetrics(text string) (*AnnouncerMetrics, error) {
	m := &AnnouncerMetrics{Dropped: map[string]float64{}, WireConflicts: map[string]float64{}}
	var sawState bool
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 4096), maxMetricsLine)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || !strings.HasPrefix(line, "baremetal_announcer_") {
			continue
		}
		name, labels, value, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w", n, err)
		}
		switch name {
		case "baremetal_announcer_member_state":
			m.MemberState, sawState = value, true
		case "baremetal_announcer_peers_alive":
			m.PeersAlive = value
		case "baremetal_announcer_peers_connected":
			m.PeersConnected = value
		case "baremetal_announcer_heartbeats_dropped_total":
			m.Dropped[labels["reason"]] += value
		case "baremetal_announcer_wire_conflicts_total":
			m.WireConflicts[labels["kind"]] += value
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading metrics: %w", err)
	}
	if !sawState {
		return nil, errors.New("no baremetal_announcer_member_state in the metrics: not an announcer")
	}
	return m, nil
}

// parseSample reads `name{label="value",...} value [timestamp]`.
func parseSample(line string) (name string, labels map[string]string, value float64, err error) {
	end := strings.IndexAny(line, "{ \t")
	if end <= 0 {
		return "", nil, 0, fmt.Errorf("sample %q has no value", line)
	}
	name, rest := line[:end], line[end:]
	labels = map[string]string{}
	if rest[0] == '{' {
		rest, err = parseLabels(rest[1:], labels)
		if err != nil {
			return "", nil, 0, fmt.Errorf("sample %q: %w", line, err)
		}
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 || len(fields) > 2 {
		return "", nil, 0, fmt.Errorf("sample %q: want a value and an optional timestamp", line)
	}
	value, err = strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return "", nil, 0, fmt.Errorf("sample %q: %w", line, err)
	}
	if math.IsNaN(value) || math.IsInf(value, 0) {
		value = 0 // no count the check reads is legitimately NaN or infinite; sums must stay numbers
	}
	return name, labels, value, nil
}

// parseLabels reads `label="value",...}` into labels and returns what follows the brace.
// Values may hold the escapes \\, \" and \n.
func parseLabels(s string, labels map[string]string) (string, error) {
	for {
		s = strings.TrimLeft(s, " \t")
		if strings.HasPrefix(s, "}") {
			return s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return "", errors.New("label without a value")
		}
		key := strings.TrimSpace(s[:eq])
		s = strings.TrimLeft(s[eq+1:], " \t")
		if !strings.HasPrefix(s, `"`) {
			return "", fmt.Errorf("label %q: value not quoted", key)
		}
		var v strings.Builder
		i := 1
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					v.WriteByte('\n')
				default:
					v.WriteByte(s[i])
				}
				continue
			}
			v.WriteByte(s[i])
		}
		if i >= len(s) {
			return "", fmt.Errorf("label %q: unterminated value", key)
		}
		labels[key] = v.String()
		s = strings.TrimLeft(s[i+1:], " \t")
		s = strings.TrimPrefix(s, ",")
	}
}
