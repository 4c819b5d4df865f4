package membership

import (
	"errors"
	"strings"
	"testing"
)

// TestOpenRejectsMalformed seals malformed bodies under the key, as a key holder could: each one
// passes authentication and must be refused by the parser, with an error naming the problem.
func TestOpenRejectsMalformed(t *testing.T) {
	s := mustSealer(t, KeyRing{Current: keyA})
	if _, err := s.Open(sealRaw(keyA, empty())); err != nil {
		t.Fatalf("the reference body is refused: %v", err)
	}
	for name, tc := range malformed() {
		t.Run(name, func(t *testing.T) {
			_, err := s.Open(sealRaw(keyA, tc.body))
			if !errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("Open: %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open error %q, want it to contain %q", err, tc.want)
			}
			// decodeBody says the same of the bare body.
			if _, err2 := decodeBody(tc.body); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("decodeBody error %v, Open error %v", err2, err)
			}
		})
	}
}

// TestDecodeBodyRoundTrip checks that every sample decodes from its body and encodes back to
// the same bytes.
func TestDecodeBodyRoundTrip(t *testing.T) {
	for name, h := range samples() {
		body, err := encodeBody(nil, &h)
		if err != nil {
			t.Fatalf("%s: encodeBody: %v", name, err)
		}
		got, err := decodeBody(body)
		if err != nil {
			t.Fatalf("%s: decodeBody: %v", name, err)
		}
		if diff := heartbeatDiff(h, got); diff != "" {
			t.Errorf("%s (-encoded +decoded):\n%s", name, diff)
		}
		again, err := encodeBody(nil, &got)
		if err != nil || string(again) != string(body) {
			t.Errorf("%s: re-encoding: %v; %s", name, err, bytesDiff(again, body))
		}
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Joining: "joining", Active: "active", Leaving: "leaving", 0: "State(0)", 9: "State(9)"} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", uint8(s), got, want)
		}
	}
}

// malformed are bodies that must be refused, each with a part of the error naming the problem.
func malformed() map[string]struct {
	body wire
	want string
} {
	counts := func(w wire, n int) wire { // n empty lists
		for range n {
			w = w.u16(0)
		}
		return w
	}
	return map[string]struct {
		body wire
		want string
	}{
		"empty body":         {wire{}, "header: 34 bytes needed, 0 left"},
		"short header":       {fixed(2, 0)[:33], "header: 34 bytes needed, 33 left"},
		"state 0":            {append(fixed(0, 0), empty()[34:]...), "state 0"},
		"state 4":            {append(fixed(4, 0), empty()[34:]...), "state 4"},
		"state 255":          {append(fixed(255, 0), empty()[34:]...), "state 255"},
		"unknown flag 0x2":   {append(fixed(2, 2), empty()[34:]...), "unknown flags 0x2"},
		"unknown flags 0x81": {append(fixed(2, 0x81), empty()[34:]...), "unknown flags 0x81"},
		"no sender":          {fixed(1, 0), "sender name: 1 bytes needed, 0 left"},
		"empty sender":       {counts(fixed(1, 0).str("").str("b"), 5), "sender name of 0 bytes: want 1 to 253"},
		"sender of 254":      {fixed(1, 0).u8(254).u8(make([]byte, 254)...), "sender name of 254 bytes"},
		"sender of 255":      {fixed(1, 0).u8(255), "sender name of 255 bytes"},
		"sender cut short":   {fixed(1, 0).u8(10).u8('a', 'b', 'c'), "sender name: 10 bytes needed, 3 left"},
		"upper-case sender":  {counts(fixed(1, 0).str("Node").str("b"), 5), "byte 0x4e in sender name"},
		"sender with a NUL":  {counts(fixed(1, 0).str("a\x00").str("b"), 5), "byte 0x0 in sender name"},
		"receiver with _":    {counts(fixed(1, 0).str("a").str("b_c"), 5), "byte 0x5f in receiver name"},
		"empty receiver":     {counts(fixed(1, 0).str("a").str(""), 5), "receiver name of 0 bytes"},
		"no claim count":     {head(), "claims count: 2 bytes needed, 0 left"},
		"claim count 1, no room": {
			counts(head().u16(1), 4), "1 claims in 8 bytes"},
		"claim count 65535": {
			counts(head().u16(0xffff).claim("198.18.0.1", 0, 0), 4), "65535 claims in 18 bytes"},
		"claim count 2, room for 2 claims without flags": {
			head().u16(2).claim("198.18.0.1", 0, 0).u8(make([]byte, 8)...), "2 claims in 18 bytes"},
		"IPv6 claim cut short": {
			head().u16(1).u8(6).u8(make([]byte, 10)...), "claim: 16 bytes needed, 10 left"},
		"generation cut short": {
			head().u16(2).claim("2001:db8::1", 0, 1).u8(4, 1, 2, 3, 4).u16(0), "claim generation: 4 bytes needed, 2 left"},
		"claim flags cut short": {
			head().u16(1).addr("2001:db8::1").u32(0), "claim flags: 1 bytes needed, 0 left"},
		"second claim's flags cut short": {
			head().u16(2).claim("198.18.0.1", 0, 1).addr("2001:db8::1").u32(0), "claim flags: 1 bytes needed, 0 left"},
		"unknown claim flag 0x2": {
			counts(head().u16(1).claim("198.18.0.1", 1, 2), 4), "claim 198.18.0.1 has unknown flags 0x2"},
		"unknown claim flags 0x81": {
			counts(head().u16(2).claim("198.18.0.2", 1, 1).claim("2001:db8::1", 1, 0x81), 4), "claim 2001:db8::1 has unknown flags 0x81"},
		"unknown claim flags 0xff": {
			counts(head().u16(1).claim("2001:db8::2", 0, 0xff), 4), "claim 2001:db8::2 has unknown flags 0xff"},
		"claim flags 0x80": {
			counts(head().u16(1).claim("198.18.0.3", 0, 0x80), 4), "claim 198.18.0.3 has unknown flags 0x80"},
		"family tag 5": {
			counts(head().u16(1).u8(5, 1, 2, 3, 4).u32(0).u8(0), 4), "claim has family tag 5"},
		"family tag 0": {
			counts(head().u16(1).u8(0, 1, 2, 3, 4).u32(0).u8(0), 4), "claim has family tag 0"},
		"mapped IPv6 claim": {
			counts(head().u16(1).addr("::ffff:198.18.0.1").u32(0).u8(0), 4), "claim ::ffff:198.18.0.1 is an IPv4-mapped IPv6 address"},
		"duplicate IPv4 claim": {
			counts(head().u16(3).claim("198.18.0.1", 1, 0).claim("2001:db8::1", 1, 1).claim("198.18.0.1", 2, 0), 4), "198.18.0.1 claimed twice"},
		"duplicate IPv6 claim": {
			counts(head().u16(2).claim("2001:db8::1", 1, 0).claim("2001:db8::1", 1, 0), 4), "2001:db8::1 claimed twice"},
		"duplicate claim, one doubtful": {
			counts(head().u16(2).claim("198.18.0.7", 1, 1).claim("198.18.0.7", 1, 0), 4), "198.18.0.7 claimed twice"},
		"links beyond the body": {
			counts(head().u16(0).u16(4), 3), "4 links in 6 bytes"},
		"link of 65 bytes": {
			counts(head().u16(0).u16(1).str(strings.Repeat("x", 65)), 3), "link of 65 bytes: want 1 to 64"},
		"link with a space": {
			counts(head().u16(0).u16(1).str("ARP/eth 1"), 3), "byte 0x20 in link"},
		"link with DEL": {
			counts(head().u16(0).u16(1).str("ARP/\x7f"), 3), "byte 0x7f in link"},
		"hardware addresses beyond the body": {
			head().u16(0).u16(0).u16(2).u8(1, 2, 3, 4, 5, 6).u16(0).u16(0), "2 hardware addresses in 10 bytes"},
		"wanted VIPs beyond the body": {
			head().u16(0).u16(0).u16(0).u16(1).u8(4, 1, 2), "1 wanted VIPs in 3 bytes"},
		"wanted VIP family tag": {
			head().u16(0).u16(0).u16(0).u16(1).u8(7, 1, 2, 3, 4).u16(0), "wanted VIP has family tag 7"},
		"mapped wanted VIP": {
			head().u16(0).u16(0).u16(0).u16(1).addr("::ffff:10.0.0.1").u16(0), "wanted VIP ::ffff:10.0.0.1 is an IPv4-mapped IPv6 address"},
		"no wanted VIP count": {
			head().u16(0).u16(0).u16(0), "wanted VIPs count: 2 bytes needed, 0 left"},
		"no yielded VIP count (a body from before Yielded)": {
			head().u16(0).u16(0).u16(0).u16(1).addr("198.18.0.9"), "yielded VIPs count: 2 bytes needed, 0 left"},
		"yielded VIP count cut short": {
			head().u16(0).u16(0).u16(0).u16(0).u8(0), "yielded VIPs count: 2 bytes needed, 1 left"},
		"yielded VIPs beyond the body": {
			head().u16(0).u16(0).u16(0).u16(0).u16(2).addr("198.18.0.1"), "2 yielded VIPs in 5 bytes"},
		"yielded VIP count 65535": {
			head().u16(0).u16(0).u16(0).u16(0).u16(0xffff).addr("2001:db8::1"), "65535 yielded VIPs in 17 bytes"},
		"IPv6 yielded VIP cut short": {
			head().u16(0).u16(0).u16(0).u16(0).u16(1).u8(6).u8(make([]byte, 10)...), "yielded VIP: 16 bytes needed, 10 left"},
		"second yielded VIP cut short": {
			head().u16(0).u16(0).u16(0).u16(0).u16(2).addr("2001:db8::1").u8(4, 1, 2, 3), "yielded VIP: 4 bytes needed, 3 left"},
		"yielded VIP family tag 7": {
			head().u16(0).u16(0).u16(0).u16(0).u16(1).u8(7, 1, 2, 3, 4), "yielded VIP has family tag 7"},
		"yielded VIP family tag 0": {
			head().u16(0).u16(0).u16(0).u16(0).u16(2).addr("198.18.0.1").u8(0, 1, 2, 3, 4), "yielded VIP has family tag 0"},
		"mapped yielded VIP": {
			head().u16(0).u16(0).u16(0).u16(0).u16(1).addr("::ffff:10.0.0.1"), "yielded VIP ::ffff:10.0.0.1 is an IPv4-mapped IPv6 address"},
		"mapped yielded VIP after a valid one": {
			head().u16(0).u16(0).u16(0).u16(1).addr("198.18.0.9").u16(2).addr("198.18.0.9").addr("::ffff:198.18.0.9"),
			"yielded VIP ::ffff:198.18.0.9 is an IPv4-mapped IPv6 address"},
		"a byte after the yielded VIPs": {
			head().u16(0).u16(0).u16(0).u16(0).u16(1).addr("198.18.0.1").u8(0), "1 trailing bytes"},
		"one trailing byte": {
			append(empty(), 0), "1 trailing bytes"},
		"a second body": {
			append(empty(), empty()...), "58 trailing bytes"},
	}
}
