package bgpspeaker

import (
	"fmt"
	"strconv"
	"strings"
)

// GracefulShutdownCommunity is GRACEFUL_SHUTDOWN, 65535:0 (RFC 8326).
const GracefulShutdownCommunity uint32 = 0xFFFF0000

// wellKnown are the IANA well-known communities, by the names FRR prints.
var wellKnown = map[string]uint32{
	"graceful-shutdown":   GracefulShutdownCommunity, // RFC 8326
	"accept-own":          0xFFFF0001,                // RFC 7611
	"llgr-stale":          0xFFFF0006,                // RFC 9494
	"no-llgr":             0xFFFF0007,                // RFC 9494
	"blackhole":           0xFFFF029A,                // RFC 7999
	"no-export":           0xFFFFFF01,                // RFC 1997
	"no-advertise":        0xFFFFFF02,                // RFC 1997
	"no-export-subconfed": 0xFFFFFF03,                // RFC 1997
	"no-peer":             0xFFFFFF04,                // RFC 3765
}

// ParseCommunity parses a standard community (RFC 1997): "asn:value" with two 16-bit numbers,
// or a well-known name such as "no-export".
func ParseCommunity(s string) (uint32, error) {
	if v, ok := wellKnown[strings.ToLower(s)]; ok {
		return v, nil
	}
	hi, lo, ok := strings.Cut(s, ":")
	if !ok {
		return 0, fmt.Errorf("community %q: want asn:value (two numbers up to 65535) or a well-known name such as no-export", s)
	}
	a, err1 := strconv.ParseUint(hi, 10, 16)
	b, err2 := strconv.ParseUint(lo, 10, 16)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("community %q: both halves must be numbers from 0 to 65535", s)
	}
	return uint32(a)<<16 | uint32(b), nil
}

// LargeCommunity is an RFC 8092 large community.
type LargeCommunity struct{ GlobalAdmin, Local1, Local2 uint32 }

func (c LargeCommunity) String() string {
	return fmt.Sprintf("%d:%d:%d", c.GlobalAdmin, c.Local1, c.Local2)
}

// ParseLargeCommunity parses "a:b:c" with three 32-bit numbers (RFC 8092).
func ParseLargeCommunity(s string) (LargeCommunity, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return LargeCommunity{}, fmt.Errorf("large community %q: want three numbers a:b:c", s)
	}
	var v [3]uint32
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return LargeCommunity{}, fmt.Errorf("large community %q: %q is not a number from 0 to 4294967295", s, p)
		}
		v[i] = uint32(n)
	}
	return LargeCommunity{v[0], v[1], v[2]}, nil
}

// communityString formats a community as FRR prints it: a well-known name or "asn:value".
func communityString(c uint32) string {
	for name, v := range wellKnown {
		if v == c {
			return name
		}
	}
	return fmt.Sprintf("%d:%d", c>>16, c&0xFFFF)
}
