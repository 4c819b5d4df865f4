//go:build linux

package check

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// readSysctlInt reads an integer sysctl ("net/ipv4/conf/all/arp_ignore") of the calling
// thread's network namespace; -1 when it cannot be read. /proc/sys/net follows the namespace
// of the thread that opens it.
func readSysctlInt(name string) int {
	if strings.Contains(name, "..") {
		return -1
	}
	b, err := os.ReadFile(filepath.Join("/proc/sys", name))
	if err != nil {
		return -1
	}
	v, err := ParseSysctlInt(b)
	if err != nil {
		return -1
	}
	return v
}

// ipv6Present reports whether the kernel has IPv6 (the module loaded, not ipv6.disable=1).
func ipv6Present() bool {
	_, err := os.Stat("/proc/sys/net/ipv6")
	return err == nil
}

// rawSocketAllowed opens and closes an AF_PACKET socket bound to no interface: it fails with
// EPERM without NET_RAW, as the speakers' sockets do.
func rawSocketAllowed() error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket(AF_PACKET, SOCK_RAW)", err)
	}
	return unix.Close(fd)
}
