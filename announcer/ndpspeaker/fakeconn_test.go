package ndpspeaker

import "github.com/baremetal-dev/cloud-provider-baremetal/announcer/internal/packettest"

type fakeConn = packettest.Conn

func newFakeConn() *fakeConn { return packettest.NewConn() }

// handleFrame handles one frame as Run does, without a reading goroutine.
func (s *Speaker) handleFrame(b []byte) { s.e.Handle(b) }
