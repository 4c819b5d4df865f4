package membership

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"slices"
	"sync"
)

// MinKeySize is the shortest membership key accepted: 256 bits.
const MinKeySize = 32

// tagLen is the length of the truncated HMAC-SHA-256 tag (128 bits, as RFC 4868 truncates it).
const tagLen = 16

// domain separates our MACs from any other use of the same key.
const domain = "baremetal.dev/membership/v2\x00"

// ErrUnauthenticated is wrapped by every error of a datagram that does not carry a valid tag
// under a key of the ring: nothing in it was looked at beyond its prefix.
var ErrUnauthenticated = errors.New("unauthenticated heartbeat")

// KeyRing holds the cluster's membership keys. Heartbeats are sealed with Current and accepted
// under Current or Previous, so a key is rotated without a partition: put the new key in
// Current and the old one in Previous, wait until every announcer has it, then drop Previous.
type KeyRing struct {
	Current  []byte
	Previous []byte
}

type sealKey struct {
	id     uint32
	secret []byte
	macs   *sync.Pool // of keyed HMAC-SHA-256 states, so a datagram costs no key schedule
}

func newSealKey(secret []byte) *sealKey {
	k := &sealKey{id: keyID(secret), secret: secret}
	k.macs = &sync.Pool{New: func() any { return hmac.New(sha256.New, k.secret) }}
	return k
}

// tag computes the truncated HMAC of signed under the key.
func (k *sealKey) tag(signed []byte) []byte {
	m := k.macs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(domain))
	m.Write(signed)
	var sum [sha256.Size]byte
	out := m.Sum(sum[:0])[:tagLen]
	k.macs.Put(m)
	return out
}

// Sealer seals and opens heartbeats under a KeyRing. It is immutable, so safe for concurrent
// use; build a new one when the keys change.
type Sealer struct {
	current  *sealKey
	previous *sealKey
}

// NewSealer checks the ring and prepares it.
func NewSealer(ring KeyRing) (*Sealer, error) {
	if len(ring.Current) < MinKeySize {
		return nil, fmt.Errorf("the current membership key has %d bytes, want at least %d", len(ring.Current), MinKeySize)
	}
	// The keys are copied: the Sealer stays the same whatever the caller does with its buffers.
	s := &Sealer{current: newSealKey(slices.Clone(ring.Current))}
	if len(ring.Previous) > 0 {
		if len(ring.Previous) < MinKeySize {
			return nil, fmt.Errorf("the previous membership key has %d bytes, want at least %d", len(ring.Previous), MinKeySize)
		}
		if id := keyID(ring.Previous); id != s.current.id {
			s.previous = newSealKey(slices.Clone(ring.Previous))
		}
	}
	return s, nil
}

// KeyID names a key on the wire without revealing it: the first 32 bits of its SHA-256 under a
// fixed prefix. Operators see it in logs to tell which key a peer uses.
func KeyID(key []byte) uint32 { return keyID(key) }

func keyID(key []byte) uint32 {
	h := sha256.New()
	h.Write([]byte("baremetal.dev/membership/key-id\x00"))
	h.Write(key)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// CurrentID is the id of the key heartbeats are sealed with.
func (s *Sealer) CurrentID() uint32 { return s.current.id }

// Seal appends the authenticated wire form of h to b: magic, version, key id, body, tag.
func (s *Sealer) Seal(b []byte, h Heartbeat) ([]byte, error) {
	start := len(b)
	b = append(b, magic, version)
	b = binary.BigEndian.AppendUint32(b, s.current.id)
	b, err := encodeBody(b, &h)
	if err != nil {
		return nil, err
	}
	if len(b)-start+tagLen > MaxSize {
		return nil, fmt.Errorf("heartbeat of %d bytes exceeds %d: too many claims", len(b)-start+tagLen, MaxSize)
	}
	return append(b, s.current.tag(b[start:])...), nil
}

// Open authenticates one datagram and parses it. It checks the tag before it reads anything of
// the body, in time independent of where the tag differs, so a stranger without the key can
// make it spend one HMAC per datagram and nothing else.
func (s *Sealer) Open(b []byte) (Heartbeat, error) {
	if len(b) < prefixLen+tagLen || len(b) > MaxSize {
		return Heartbeat{}, fmt.Errorf("%w: %d bytes, want %d to %d", ErrUnauthenticated, len(b), prefixLen+tagLen, MaxSize)
	}
	if b[0] != magic || b[1] != version {
		return Heartbeat{}, fmt.Errorf("%w: magic %#x version %d, want %#x version %d", ErrUnauthenticated, b[0], b[1], magic, version)
	}
	id := binary.BigEndian.Uint32(b[2:6])
	var key *sealKey
	switch {
	case id == s.current.id:
		key = s.current
	case s.previous != nil && id == s.previous.id:
		key = s.previous
	default:
		return Heartbeat{}, fmt.Errorf("%w: unknown key id %08x (ours: %08x)", ErrUnauthenticated, id, s.current.id)
	}
	signed, got := b[:len(b)-tagLen], b[len(b)-tagLen:]
	if !hmac.Equal(got, key.tag(signed)) {
		return Heartbeat{}, fmt.Errorf("%w: bad tag under key %08x", ErrUnauthenticated, id)
	}
	return decodeBody(signed[prefixLen:])
}
