package check

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParseSysctlInt: never panics, and what it accepts prints back the same (with the newline
// /proc adds).
func FuzzParseSysctlInt(f *testing.F) {
	for _, s := range []string{"0\n", "1\n", "2", "-1\n", "", "\n", "1 2\n", "4096\t87380\n", "99999999999999999999\n", "+1\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseSysctlInt(b)
		if err != nil {
			return
		}
		again, err := ParseSysctlInt([]byte(strconv.Itoa(v) + "\n"))
		if err != nil || again != v {
			t.Fatalf("%q parsed as %d, which does not parse back (%d, %v)", b, v, again, err)
		}
	})
}

// FuzzParseKubeProxyConfig: never panics; an accepted config has a mode that IsIPVS judges
// without trimming surprises.
func FuzzParseKubeProxyConfig(f *testing.F) {
	for _, s := range []string{kubeadmKubeProxy, "mode: ipvs\nipvs:\n  strictARP: true\n", `{"mode":"ipvs"}`, "- a\n", "mode: [\n", "ipvs: 1\n", "&a [*a, *a]\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseKubeProxyConfig(b)
		if err != nil {
			if c != nil {
				t.Fatalf("%q: error %v with a config", b, err)
			}
			return
		}
		if c.IsIPVS() != strings.EqualFold(strings.TrimSpace(c.Mode), "ipvs") {
			t.Fatalf("%q: IsIPVS %t for mode %q", b, c.IsIPVS(), c.Mode)
		}
	})
}

// FuzzParseMetrics: never panics; an accepted text had a member_state sample, and the counts
// it read are numbers, never NaN (which would make every comparison false).
func FuzzParseMetrics(f *testing.F) {
	f.Add(announcerMetrics)
	f.Add("baremetal_announcer_member_state 1\n")
	f.Add(`baremetal_announcer_heartbeats_dropped_total{reason="a\"b\\c\n"} NaN` + "\nbaremetal_announcer_member_state 2\n")
	f.Add(`baremetal_announcer_x{a="` + "\n")
	f.Add("baremetal_announcer_member_state +Inf 123\n")
	f.Fuzz(func(t *testing.T, text string) {
		m, err := ParseMetrics(text)
		if err != nil {
			return
		}
		if !strings.Contains(text, "baremetal_announcer_member_state") {
			t.Fatalf("%q accepted without a member_state sample", text)
		}
		for _, v := range append([]float64{m.MemberState, m.PeersAlive, m.PeersConnected}, values(m.Dropped)...) {
			if v != v {
				t.Fatalf("%q: NaN read", text)
			}
		}
	})
}

func values(m map[string]float64) []float64 {
	out := make([]float64, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
