package ipam_test

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

func ExampleParseAddresses() {
	for _, s := range []string{
		"192.168.1.5",
		"192.168.1.0/24",
		"192.168.1.4/31",
		"2001:db8:1::/120",
		"192.168.1.240 - 192.168.1.250",
		"192.168.1.5/24",
		"fe80::1%eth0",
	} {
		r, err := ipam.ParseAddresses(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%-30s %s\n", s, r)
	}
	// Output:
	// 192.168.1.5                    192.168.1.5-192.168.1.5
	// 192.168.1.0/24                 192.168.1.1-192.168.1.254
	// 192.168.1.4/31                 192.168.1.4-192.168.1.5
	// 2001:db8:1::/120               2001:db8:1::-2001:db8:1::ff
	// 192.168.1.240 - 192.168.1.250  192.168.1.240-192.168.1.250
	// invalid address "192.168.1.5/24": 192.168.1.5/24 has host bits set; did you mean 192.168.1.0/24?
	// invalid address "fe80::1%eth0": IPv6 zone "%eth0" is not allowed; pool addresses must not carry a zone
}

func ExampleAllocator_Allocate_sharing() {
	pool, err := ipam.NewPool("first-pool", []string{"192.168.1.240-192.168.1.250"})
	if err != nil {
		panic(err)
	}
	a := ipam.NewAllocator()
	a.SetPool(pool)

	dnsTCP := ipam.Claim{Service: "kube-system/dns-tcp", SharingKey: "dns", Ports: []ipam.Port{{Protocol: "TCP", Number: 53}}}
	dnsUDP := ipam.Claim{Service: "kube-system/dns-udp", SharingKey: "dns", Ports: []ipam.Port{{Protocol: "UDP", Number: 53}}}
	dnsAgain := ipam.Claim{Service: "other/dns", SharingKey: "dns", Ports: []ipam.Port{{Protocol: "UDP", Number: 53}}}
	web := ipam.Claim{Service: "default/web", Ports: []ipam.Port{{Protocol: "TCP", Number: 80}}}

	for _, c := range []ipam.Claim{dnsTCP, dnsUDP, dnsAgain, web} {
		addr, err := a.Allocate("first-pool", ipam.IPv4, c)
		fmt.Println(c.Service, addr, err)
	}
	fmt.Println(ipam.Compatible(dnsUDP, dnsAgain))
	u := a.Usage("first-pool")
	fmt.Println("used", u.Used4, "free", u.Free(ipam.IPv4))
	// Output:
	// kube-system/dns-tcp 192.168.1.240 <nil>
	// kube-system/dns-udp 192.168.1.240 <nil>
	// other/dns 192.168.1.241 <nil>
	// default/web 192.168.1.242 <nil>
	// the address is held by kube-system/dns-udp with sharing key "dns"; ports 53/UDP overlap
	// used 3 free 8
}

func ExamplePoolExhaustedError() {
	pool, err := ipam.NewPool("first-pool", []string{"192.168.1.240-192.168.1.250"})
	if err != nil {
		panic(err)
	}
	a := ipam.NewAllocator()
	a.SetPool(pool)
	for i := 0; ; i++ {
		_, err := a.Allocate("first-pool", ipam.IPv4, ipam.Claim{Service: fmt.Sprintf("default/svc-%d", i)})
		var exhausted *ipam.PoolExhaustedError
		if errors.As(err, &exhausted) {
			fmt.Println(err)
			fmt.Println(exhausted.Used, exhausted.Size)
			break
		}
	}
	_, err = a.Allocate("first-pool", ipam.IPv6, ipam.Claim{Service: "default/v6"})
	fmt.Println(err)
	// Output:
	// pool "first-pool" is exhausted: 11 of 11 IPv4 addresses in use
	// 11 11
	// pool "first-pool" has no IPv6 addresses
}

func ExampleUnusable() {
	for _, s := range []string{"192.0.2.1", "224.0.0.251", "169.254.1.1", "2001:db8::", "2001:db8::1", "fe80::1"} {
		fmt.Printf("%-12s %q\n", s, ipam.Unusable(netip.MustParseAddr(s)))
	}
	_, err := ipam.NewPool("p", []string{"192.0.2.0/24", "224.0.0.0/24"})
	fmt.Println(err)
	// Output:
	// 192.0.2.1    ""
	// 224.0.0.251  "multicast"
	// 169.254.1.1  "link-local"
	// 2001:db8::   "subnet-router anycast"
	// 2001:db8::1  ""
	// fe80::1      "link-local"
	// spec.addresses[1]: invalid address "224.0.0.0/24": every address in it is multicast (224.0.0.0/4); none can be a VIP
}

// A Service may draw from several pools: look for an address to share in all of them before
// taking a free one from the first.
func ExampleAllocator_Share() {
	a := ipam.NewAllocator()
	for name, cidr := range map[string]string{"first": "192.0.2.0/28", "second": "198.51.100.0/28"} {
		pool, err := ipam.NewPool(name, []string{cidr})
		if err != nil {
			panic(err)
		}
		a.SetPool(pool)
	}
	dnsTCP := ipam.Claim{Service: "kube-system/dns-tcp", SharingKey: "dns", Ports: []ipam.Port{{Protocol: "TCP", Number: 53}}}
	if _, err := a.Allocate("second", ipam.IPv4, dnsTCP); err != nil {
		panic(err)
	}

	dnsUDP := ipam.Claim{Service: "kube-system/dns-udp", SharingKey: "dns", Ports: []ipam.Port{{Protocol: "UDP", Number: 53}}}
	candidates := []string{"first", "second"}
	addr, err := func() (netip.Addr, error) {
		for _, pool := range candidates {
			if addr, ok, err := a.Share(pool, ipam.IPv4, dnsUDP); err != nil || ok {
				return addr, err
			}
		}
		return a.Allocate(candidates[0], ipam.IPv4, dnsUDP)
	}()
	fmt.Println(addr, err)
	// Output:
	// 198.51.100.1 <nil>
}
