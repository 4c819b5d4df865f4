package ndpspeaker

import "github.com/baremetal-dev/cloud-provider-baremetal/announcer/internal/packettest"

type (
	fakeConn = packettest.Conn
	written  = packettest.Written
)

func newFakeConn() *fakeConn { return packettest.NewConn() }
