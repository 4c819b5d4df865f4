package membership

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, h := range []Heartbeat{
		{Node: "n", Incarnation: 1, Seq: 1, State: Joining, Claims: []Claim{}},
		{Node: "lab-node-1", Incarnation: 1 << 62, Seq: 99, State: Active, Claims: []Claim{
			{Addr: netip.MustParseAddr("198.18.0.240"), View: 3},
			{Addr: netip.MustParseAddr("2001:db8:0:1::f0"), View: 2},
		}},
		{Node: strings.Repeat("a", MaxNodeName), State: Leaving, Claims: []Claim{}},
	} {
		b, err := Encode(nil, h)
		if err != nil {
			t.Fatalf("Encode(%+v): %v", h, err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)): %v", h, err)
		}
		if !reflect.DeepEqual(got, h) {
			t.Errorf("round trip: got %+v, want %+v", got, h)
		}
	}
}

func TestEncodeRefuses(t *testing.T) {
	for name, h := range map[string]Heartbeat{
		"empty name":   {State: Active},
		"long name":    {Node: strings.Repeat("a", MaxNodeName+1), State: Active},
		"zero address": {Node: "n", State: Active, Claims: []Claim{{}}},
		"zoned":        {Node: "n", State: Active, Claims: []Claim{{Addr: netip.MustParseAddr("fe80::1%eth0")}}},
	} {
		if _, err := Encode(nil, h); err == nil {
			t.Errorf("%s: Encode succeeded", name)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	valid, err := Encode(nil, Heartbeat{Node: "node-a", Incarnation: 7, Seq: 3, State: Active, Claims: []Claim{
		{Addr: netip.MustParseAddr("198.18.0.240"), View: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func([]byte) []byte) []byte { return f(append([]byte(nil), valid...)) }
	for name, tc := range map[string]struct {
		b    []byte
		want string
	}{
		"empty":         {nil, "shorter than"},
		"bad magic":     {mutate(func(b []byte) []byte { b[0] = 0; return b }), "magic"},
		"bad version":   {mutate(func(b []byte) []byte { b[1] = 9; return b }), "version 9"},
		"bad state":     {mutate(func(b []byte) []byte { b[2] = 0; return b }), "state 0"},
		"zero name":     {mutate(func(b []byte) []byte { b[3] = 0; return b }), "node name of 0 bytes"},
		"name too long": {mutate(func(b []byte) []byte { b[3] = 200; return b }), "node name of 200 bytes"},
		"bad name byte": {mutate(func(b []byte) []byte { b[headerLen] = 'A'; return b }), "byte 0x41"},
		"truncated":     {valid[:len(valid)-1], "truncated"},
		"trailing":      {append(append([]byte(nil), valid...), 0), "trailing"},
		"more claims":   {mutate(func(b []byte) []byte { b[21] = 2; return b }), "claim 1 of 2 missing"},
		"family tag":    {mutate(func(b []byte) []byte { b[headerLen+6] = 5; return b }), "family tag 5"},
		"duplicate claim": {func() []byte {
			b, _ := Encode(nil, Heartbeat{Node: "n", State: Active, Claims: []Claim{
				{Addr: netip.MustParseAddr("198.18.0.1")}, {Addr: netip.MustParseAddr("198.18.0.1")},
			}})
			return b
		}(), "claimed twice"},
		"mapped v6": {func() []byte {
			b, _ := Encode(nil, Heartbeat{Node: "n", State: Active, Claims: []Claim{{Addr: netip.MustParseAddr("2001:db8::1")}}})
			copy(b[headerLen+2:], netip.MustParseAddr("::ffff:198.18.0.1").AsSlice())
			return b
		}(), "IPv4-mapped"},
	} {
		_, err := Decode(tc.b)
		if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Decode error %v, want ErrMalformed containing %q", name, err, tc.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	seed, _ := Encode(nil, Heartbeat{Node: "lab-node-2", Incarnation: 5, Seq: 8, State: Active, Claims: []Claim{
		{Addr: netip.MustParseAddr("198.18.0.240"), View: 3}, {Addr: netip.MustParseAddr("2001:db8::f0"), View: 3},
	}})
	f.Add(seed)
	f.Add([]byte{magic, version, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'a'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again, err := Encode(nil, h)
		if err != nil {
			t.Fatalf("a decoded heartbeat does not encode: %v (%+v)", err, h)
		}
		if string(again) != string(b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b)
		}
	})
}
