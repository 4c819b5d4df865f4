package v1alpha1

import (
	"slices"
	"testing"
)

func TestAllocatedPoolOf(t *testing.T) {
	for _, tc := range []struct {
		value, vip string
		i          int
		want       string
	}{
		{"198.18.0.5=first,2001:db8::5=six", "198.18.0.5", 0, "first"},
		{"198.18.0.5=first,2001:db8::5=six", "2001:db8::5", 1, "six"},
		{"198.18.0.5=first,2001:db8::5=six", "2001:db8::5", 0, "six"},
		// Written for a VIP the status does not list (yet): nothing is known about this one.
		{"198.18.0.9=first", "198.18.0.5", 0, ""},
		// Positional values written by earlier versions.
		{"first,six", "2001:db8::5", 1, "six"},
		{" first ", "198.18.0.5", 0, "first"},
		{"first", "2001:db8::5", 1, ""},
		{"", "198.18.0.5", 0, ""},
		{"first", "198.18.0.5", -1, ""},
	} {
		if got := AllocatedPoolOf(tc.value, tc.vip, tc.i); got != tc.want {
			t.Errorf("AllocatedPoolOf(%q, %q, %d) = %q, want %q", tc.value, tc.vip, tc.i, got, tc.want)
		}
	}
}

func TestFormatAllocatedPoolsRoundTrip(t *testing.T) {
	vips, pools := []string{"198.18.0.5", "2001:db8::5"}, []string{"first", "six"}
	value := FormatAllocatedPools(vips, pools)
	if value != "198.18.0.5=first,2001:db8::5=six" {
		t.Fatalf("value = %q", value)
	}
	for i, vip := range vips {
		if got := AllocatedPoolOf(value, vip, 1-i); got != pools[i] {
			t.Errorf("pool of %s = %q, want %q", vip, got, pools[i])
		}
	}
}

func FuzzAllocatedPoolOf(f *testing.F) {
	f.Add("198.18.0.5=first,2001:db8::5=six", "198.18.0.5", 0)
	f.Add("first,,=,x=", "x", 3)
	f.Fuzz(func(t *testing.T, value, vip string, i int) {
		pool := AllocatedPoolOf(value, vip, i)
		if pool != "" && !contains(value, pool) {
			t.Fatalf("AllocatedPoolOf(%q, %q, %d) = %q, which the value does not contain", value, vip, i, pool)
		}
	})
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestAllocatedPoolVIPs(t *testing.T) {
	for value, want := range map[string][]string{
		"":                                 nil,
		"first,second":                     nil,
		"198.18.0.5=a, 2001:db8::5 = b":    {"198.18.0.5", "2001:db8::5"},
		"198.18.0.5=a,legacy,198.18.0.6=b": {"198.18.0.5", "198.18.0.6"},
	} {
		if got := AllocatedPoolVIPs(value); !slices.Equal(got, want) {
			t.Errorf("AllocatedPoolVIPs(%q) = %q, want %q", value, got, want)
		}
	}
}
