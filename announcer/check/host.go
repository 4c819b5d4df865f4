package check

import (
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"syscall"
)

// gatherHost reads the host's interfaces and their ARP and IPv6 sysctls.
func gatherHost(f *Facts) {
	f.AllARPIgnore = readSysctlInt("net/ipv4/conf/all/arp_ignore")
	f.AllARPAnnounce = readSysctlInt("net/ipv4/conf/all/arp_announce")
	f.NoIPv6 = !ipv6Present()
	ifaces, err := net.Interfaces()
	if err != nil {
		f.ProbeErrors = append(f.ProbeErrors, "listing network interfaces: "+err.Error())
		return
	}
	for _, ifi := range ifaces {
		i := Interface{
			Name: ifi.Name, Index: ifi.Index, MAC: ifi.HardwareAddr,
			Up: ifi.Flags&net.FlagUp != 0, Running: ifi.Flags&net.FlagRunning != 0,
			ARPIgnore:   readSysctlInt("net/ipv4/conf/" + ifi.Name + "/arp_ignore"),
			ARPAnnounce: readSysctlInt("net/ipv4/conf/" + ifi.Name + "/arp_announce"),
		}
		i.IPv6Disabled = readSysctlInt("net/ipv6/conf/"+ifi.Name+"/disable_ipv6") == 1
		addrs, err := ifi.Addrs()
		if err == nil {
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok {
					if addr, ok := netip.AddrFromSlice(n.IP); ok {
						ones, _ := n.Mask.Size()
						i.Addrs = append(i.Addrs, netip.PrefixFrom(addr.Unmap(), ones))
					}
				}
			}
		}
		f.Interfaces = append(f.Interfaces, i)
	}
}

// bindUDP tries the announcer's heartbeat socket: binds addr and closes it at once.
func bindUDP(addr netip.AddrPort) BindResult {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err == nil {
		_ = c.Close()
	}
	return bindResult(addr, err)
}

// bindTCP tries a listening TCP socket on addr and closes it at once.
func bindTCP(addr netip.AddrPort) BindResult {
	l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
	if err == nil {
		_ = l.Close()
	}
	return bindResult(addr, err)
}

func bindResult(addr netip.AddrPort, err error) BindResult {
	r := BindResult{Addr: addr}
	if err != nil {
		r.Err = err.Error()
		r.InUse = errors.Is(err, syscall.EADDRINUSE)
		r.Denied = denied(err)
	}
	return r
}

// denied reports whether the kernel refused for want of a capability (EPERM, EACCES).
func denied(err error) bool { return errors.Is(err, fs.ErrPermission) }
