package election

import (
	"hash/fnv"
	"net/netip"
	"testing"
)

// TestScoreIsFNV1a checks the hash against the standard library's FNV-1a before finalizing.
func TestScoreIsFNV1a(t *testing.T) {
	for _, s := range []string{"198.18.0.1", "198.19.255.255", "2001:db8::1", "fd00::abcd", "::ffff:198.18.0.1"} {
		addr := netip.MustParseAddr(s)
		for _, name := range []string{"", "n", "node-a", "worker-17.example.internal"} {
			h := fnv.New64a()
			h.Write([]byte(name))
			if addr.Is4() {
				h.Write([]byte{4})
			} else {
				h.Write([]byte{6})
			}
			a16 := addr.As16()
			h.Write(a16[:])
			if got, want := Score(addr, name), mix64(h.Sum64()); got != want {
				t.Errorf("Score(%s, %q) = %#x; want %#x", addr, name, got, want)
			}
		}
	}
}

func TestRankBeats(t *testing.T) {
	tests := []struct {
		a, b rank
		want bool
	}{
		{rank{gen: 2, score: 1, name: "z"}, rank{gen: 1, score: 9, name: "a"}, true},
		{rank{gen: 1, score: 9, name: "z"}, rank{gen: 1, score: 1, name: "a"}, true},
		{rank{gen: 1, score: 5, name: "a"}, rank{gen: 1, score: 5, name: "b"}, true},
		{rank{gen: 1, score: 5, name: "b"}, rank{gen: 1, score: 5, name: "a"}, false},
		{rank{gen: 1, score: 5, name: "a"}, rank{gen: 1, score: 5, name: "a"}, false},
		{rank{gen: -1, score: 9, name: "a"}, rank{gen: 0, score: 1, name: "b"}, false},
	}
	for _, tt := range tests {
		if got := tt.a.beats(tt.b); got != tt.want {
			t.Errorf("%+v.beats(%+v) = %v; want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
