// Package membership is the announcers' authenticated, two-way failure detector.
//
// Every announcer sends a small UDP heartbeat to every other member node at a fixed interval.
// Heartbeats are sealed with HMAC-SHA-256 (RFC 2104, truncated to 128 bits as in RFC 4868) under
// the cluster's membership key (KeyRing: the current key and, during a rotation, the previous
// one), addressed to one receiver, and checked before anything in them is parsed, so a sender
// without the key changes nothing and a flood of garbage costs one HMAC per datagram.
//
// The Detector accepts a heartbeat only from a member Node's own address, with a sequence number
// above the last one of the same incarnation; a new incarnation (a restart, whatever its clock)
// must echo one of our recent heartbeats first. A peer is alive while its heartbeats arrive and
// connected while they echo ours: only a connected peer is known to hear us. Heartbeats also
// carry the VIPs the sender answers for (its claims), the links it cannot serve, its hardware
// addresses and the VIPs it contests: the inputs of announcer/l2's decisions.
package membership
