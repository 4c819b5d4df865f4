//go:build !linux

package ndpspeaker

import (
	"errors"
	"fmt"
	"runtime"
)

// nsOpener would open membership sockets in the interface's namespace; see the Linux version.
type nsOpener struct{ ifindex int }

func newNSOpener(ifindex int) *nsOpener        { return &nsOpener{ifindex: ifindex} }
func (o *nsOpener) open() (groupSocket, error) { return newMembership(o.ifindex) }
func (o *nsOpener) close() error               { return nil }

// newMembership would open a multicast membership socket; Listen uses it only on Linux, where
// the speaker's AF_PACKET socket exists.
func newMembership(int) (groupSocket, error) {
	return nil, fmt.Errorf("multicast membership sockets on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
