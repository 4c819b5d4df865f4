// Package membership is the announcers' failure detector: every announcer sends a small UDP
// heartbeat to every other candidate node at a fixed interval, and a peer not heard from within
// the timeout is dead. Heartbeats also carry the VIPs the sender answers for right now (its
// claims), which is what makes the owner election sticky and lets a node that returns from a
// network cut see who took its VIPs before it answers for anything.
//
// The wire format is versioned and parsed defensively (see Decode); the detector is pure (time
// is passed in); Transport moves heartbeats over UDP. Heartbeats are not authenticated: like ARP
// itself, they trust the LAN.
package membership
