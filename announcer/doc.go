// Package announcer is the baremetal-announcer application: it watches Services, EndpointSlices,
// Nodes and IPPools, runs the failure detector (announcer/membership) and the owner election
// (announcer/election) on every node, and drives one speaker per protocol and interface
// (announcer/arpspeaker, announcer/ndpspeaker) with the set of VIPs this node owns.
//
// It never answers for a VIP it does not own, and never withdraws because the API server is
// unreachable: ownership depends only on the cached objects and on the heartbeats between
// announcers.
package announcer
