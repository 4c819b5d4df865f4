package ipam_test

import (
	"errors"
	"testing"

	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

func TestParseAddresses(t *testing.T) {
	for _, tc := range []struct {
		in, from, to string
	}{
		// Single addresses.
		{"192.168.1.5", "192.168.1.5", "192.168.1.5"},
		{"  192.168.1.5\t", "192.168.1.5", "192.168.1.5"},
		{"2001:db8::5", "2001:db8::5", "2001:db8::5"},
		{"0.0.0.0", "0.0.0.0", "0.0.0.0"},
		{"::", "::", "::"},
		{"::1.2.3.4", "::102:304", "::102:304"}, // IPv4-compatible (not mapped) is plain IPv6
		// IPv4 CIDRs: network and broadcast excluded up to /30.
		{"192.168.1.0/24", "192.168.1.1", "192.168.1.254"},
		{"10.0.0.0/8", "10.0.0.1", "10.255.255.254"},
		{"192.168.1.0/30", "192.168.1.1", "192.168.1.2"},
		{"192.168.1.4/31", "192.168.1.4", "192.168.1.5"},
		{"192.168.1.7/32", "192.168.1.7", "192.168.1.7"},
		{"0.0.0.0/0", "0.0.0.1", "255.255.255.254"},
		{" 192.168.1.0/28 ", "192.168.1.1", "192.168.1.14"},
		// IPv6 CIDRs keep everything.
		{"2001:db8:1::/120", "2001:db8:1::", "2001:db8:1::ff"},
		{"2001:db8::/64", "2001:db8::", "2001:db8::ffff:ffff:ffff:ffff"},
		{"2001:db8::1/128", "2001:db8::1", "2001:db8::1"},
		{"::/0", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		// Ranges keep everything.
		{"192.168.1.240-192.168.1.250", "192.168.1.240", "192.168.1.250"},
		{"192.168.1.240 - 192.168.1.250", "192.168.1.240", "192.168.1.250"},
		{"192.168.1.240\t-  192.168.1.250", "192.168.1.240", "192.168.1.250"},
		{"192.168.1.0-192.168.1.255", "192.168.1.0", "192.168.1.255"},
		{"192.168.1.9-192.168.1.9", "192.168.1.9", "192.168.1.9"},
		{"2001:db8::1-2001:db8::ff", "2001:db8::1", "2001:db8::ff"},
		{"2001:db8::1 - 2001:db8:0:1::", "2001:db8::1", "2001:db8:0:1::"},
	} {
		r, err := ipam.ParseAddresses(tc.in)
		if err != nil {
			t.Errorf("ParseAddresses(%q): %v", tc.in, err)
			continue
		}
		if r.From().String() != tc.from || r.To().String() != tc.to {
			t.Errorf("ParseAddresses(%q) = %s, want %s-%s", tc.in, r, tc.from, tc.to)
		}
	}
}

func TestParseAddressesErrors(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"", `invalid address "": empty; expected an address (192.168.1.5), a CIDR (192.168.1.0/24) or a range (192.168.1.10-192.168.1.20)`},
		{"   ", `invalid address "   ": empty; expected an address (192.168.1.5), a CIDR (192.168.1.0/24) or a range (192.168.1.10-192.168.1.20)`},
		{"garbage", `invalid address "garbage": not an IP address, CIDR (192.168.1.0/24) or range (192.168.1.10-192.168.1.20)`},
		{"192.168.1", `invalid address "192.168.1": not an IP address, CIDR (192.168.1.0/24) or range (192.168.1.10-192.168.1.20)`},
		{"192.168.001.1", `invalid address "192.168.001.1": not an IP address, CIDR (192.168.1.0/24) or range (192.168.1.10-192.168.1.20)`},
		{"192.168.1.1 192.168.1.2", `invalid address "192.168.1.1 192.168.1.2": not an IP address, CIDR or range; put each address, CIDR or range in its own list item`},
		{"192.168.1.1,192.168.1.2", `invalid address "192.168.1.1,192.168.1.2": not an IP address, CIDR or range; put each address, CIDR or range in its own list item`},
		{"fe80::1%eth0", `invalid address "fe80::1%eth0": IPv6 zone "%eth0" is not allowed; pool addresses must not carry a zone`},
		{"fe80::1%eth0-fe80::2", `invalid address "fe80::1%eth0-fe80::2": IPv6 zone "%eth0" is not allowed; pool addresses must not carry a zone`},
		{"fe80::%eth0/64", `invalid address "fe80::%eth0/64": IPv6 zone "%eth0" is not allowed; pool addresses must not carry a zone`},
		{"192.168.1.1-fe80::1%eth0", `invalid address "192.168.1.1-fe80::1%eth0": IPv6 zone "%eth0" is not allowed; pool addresses must not carry a zone`},
		{"100%", `invalid address "100%": not an IP address, CIDR (192.168.1.0/24) or range (192.168.1.10-192.168.1.20)`},
		{"1.2.3.4%eth0", `invalid address "1.2.3.4%eth0": not an IP address, CIDR (192.168.1.0/24) or range (192.168.1.10-192.168.1.20)`},
		{"::ffff:1.2.3.4", `invalid address "::ffff:1.2.3.4": IPv4-mapped IPv6 address ::ffff:1.2.3.4 is not allowed; write the IPv4 address 1.2.3.4 instead`},
		{"::ffff:1.2.3.0/120", `invalid address "::ffff:1.2.3.0/120": IPv4-mapped IPv6 address ::ffff:1.2.3.0 is not allowed; write the IPv4 address 1.2.3.0 instead`},
		{"::ffff:1.2.3.4-::ffff:1.2.3.9", `invalid address "::ffff:1.2.3.4-::ffff:1.2.3.9": IPv4-mapped IPv6 address ::ffff:1.2.3.4 is not allowed; write the IPv4 address 1.2.3.4 instead`},
		{"192.168.1.5/24", `invalid address "192.168.1.5/24": 192.168.1.5/24 has host bits set; did you mean 192.168.1.0/24?`},
		{"2001:db8::1/64", `invalid address "2001:db8::1/64": 2001:db8::1/64 has host bits set; did you mean 2001:db8::/64?`},
		{"192.168.1.0/33", `invalid address "192.168.1.0/33": prefix length "/33" is not valid for IPv4; it must be a number from 0 to 32`},
		{"2001:db8::/129", `invalid address "2001:db8::/129": prefix length "/129" is not valid for IPv6; it must be a number from 0 to 128`},
		{"192.168.1.0/", `invalid address "192.168.1.0/": prefix length "/" is not valid for IPv4; it must be a number from 0 to 32`},
		{"192.168.1.0/024", `invalid address "192.168.1.0/024": prefix length "/024" is not valid for IPv4; it must be a number from 0 to 32`},
		{"192.168.1.0/+8", `invalid address "192.168.1.0/+8": prefix length "/+8" is not valid for IPv4; it must be a number from 0 to 32`},
		{"192.168.1.0/2x", `invalid address "192.168.1.0/2x": prefix length "/2x" is not valid for IPv4; it must be a number from 0 to 32`},
		{"/24", `invalid address "/24": CIDR address "" is not an IP address`},
		{"example.com/24", `invalid address "example.com/24": CIDR address "example.com" is not an IP address`},
		{"192.168.1.250-192.168.1.240", `invalid address "192.168.1.250-192.168.1.240": range end 192.168.1.240 is below its start 192.168.1.250; did you mean 192.168.1.240-192.168.1.250?`},
		{"2001:db8::9-2001:db8::1", `invalid address "2001:db8::9-2001:db8::1": range end 2001:db8::1 is below its start 2001:db8::9; did you mean 2001:db8::1-2001:db8::9?`},
		{"192.168.1.1-2001:db8::1", `invalid address "192.168.1.1-2001:db8::1": range mixes IPv4 start 192.168.1.1 with IPv6 end 2001:db8::1; both ends must be of the same family`},
		{"2001:db8::1-192.168.1.1", `invalid address "2001:db8::1-192.168.1.1": range mixes IPv6 start 2001:db8::1 with IPv4 end 192.168.1.1; both ends must be of the same family`},
		{"192.168.1.1-", `invalid address "192.168.1.1-": range has no end address; expected start-end, e.g. 192.168.1.10-192.168.1.20`},
		{"-192.168.1.1", `invalid address "-192.168.1.1": range has no start address; expected start-end, e.g. 192.168.1.10-192.168.1.20`},
		{"192.168.1.1-192.168.1.5-192.168.1.9", `invalid address "192.168.1.1-192.168.1.5-192.168.1.9": range end "192.168.1.5-192.168.1.9" is not an IP address`},
		{"192.168.1.0/24-192.168.2.0/24", `invalid address "192.168.1.0/24-192.168.2.0/24": range start "192.168.1.0/24" is not an IP address`},
		{"a-b", `invalid address "a-b": range start "a" is not an IP address`},
		{"1.2.3.4-b", `invalid address "1.2.3.4-b": range end "b" is not an IP address`},
	} {
		r, err := ipam.ParseAddresses(tc.in)
		if err == nil {
			t.Errorf("ParseAddresses(%q) = %s, want error", tc.in, r)
			continue
		}
		var pe *ipam.ParseError
		if !errors.As(err, &pe) {
			t.Errorf("ParseAddresses(%q): error %T is not a *ParseError", tc.in, err)
			continue
		}
		if pe.Input != tc.in {
			t.Errorf("ParseAddresses(%q): Input = %q", tc.in, pe.Input)
		}
		if err.Error() != tc.want {
			t.Errorf("ParseAddresses(%q):\n got %s\nwant %s", tc.in, err, tc.want)
		}
		if !r.IsZero() {
			t.Errorf("ParseAddresses(%q): non-zero range %s with error", tc.in, r)
		}
	}
}
