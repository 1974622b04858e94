package udp

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"sync"
	"time"
)

// Connection IDs are stateless: an ID is a MAC of the client's address and
// the current time bucket, so the tracker keeps nothing per client and an
// ID minted by one instance is good at every instance with the same key
// (udp_secret). An ID is accepted in the bucket it was minted in and the
// next, so it lives between one bucket (BEP 15's "at least a minute") and
// two.
const (
	idBucket   = time.Minute
	idLifetime = 2 * idBucket
)

// key is a SipHash-2-4 key.
type key struct{ k0, k1 uint64 }

// deriveKey turns udp_secret into a key; an empty secret gives a random
// key, good for this process only.
func deriveKey(secret string) key {
	var b [32]byte
	if secret == "" {
		rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	} else {
		b = sha256.Sum256([]byte("chihaya udp connection id\x00" + secret))
	}
	return key{binary.LittleEndian.Uint64(b[0:]), binary.LittleEndian.Uint64(b[8:])}
}

// bucketOf is the time bucket of t.
func bucketOf(t time.Time) uint64 { return uint64(t.Unix()) / uint64(idBucket/time.Second) }

// id is the connection ID of addr (an unmapped address) in bucket b.
func (k key) id(addr netip.Addr, b uint64) uint64 {
	a := addr.As16()
	return siphash24(k.k0, k.k1, binary.LittleEndian.Uint64(a[0:]), binary.LittleEndian.Uint64(a[8:]), b)
}

// valid reports whether id was minted by k for addr in bucket b or the one
// before.
func (k key) valid(id uint64, addr netip.Addr, b uint64) bool {
	return id == k.id(addr, b) || id == k.id(addr, b-1)
}

// siphash24 is SipHash-2-4 of the 24-byte message m0 m1 m2 (little-endian
// words), written out so that checking an ID neither allocates nor goes
// through a hash.Hash interface.
func siphash24(k0, k1, m0, m1, m2 uint64) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	for _, m := range [...]uint64{m0, m1, m2, 24 << 56} { // the last block: the length
		v3 ^= m
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0 ^= m
	}
	v2 ^= 0xff
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	return v0 ^ v1 ^ v2 ^ v3
}

// sipRound is SipHash's round; small enough to be inlined.
func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13) ^ v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16) ^ v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21) ^ v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17) ^ v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}

// keyring holds the key IDs are minted with and, for a while after a
// reload changed udp_secret, the previous one, whose IDs are still
// accepted until prevUntil so that no client sees its ID refused.
type keyring struct {
	secret    string // what cur was derived from
	cur, prev key
	prevUntil uint64 // the first bucket in which prev's IDs are refused
}

// mint returns addr's connection ID at time bucket b.
func (r *keyring) mint(addr netip.Addr, b uint64) uint64 { return r.cur.id(addr, b) }

// valid reports whether id is addr's, minted at bucket b or the one before.
func (r *keyring) valid(id uint64, addr netip.Addr, b uint64) bool {
	return r.cur.valid(id, addr, b) || (b < r.prevUntil && r.prev.valid(id, addr, b))
}

// keys is the server's keyring, shared by its readers. Each reader keeps a
// copy and comes back for a new one when the configuration changes.
type keys struct {
	mu   sync.Mutex
	ring keyring
}

// forSecret returns the keyring for secret at bucket b: the current one,
// or, if secret changed, a new one that still accepts the previous key's
// IDs for their lifetime.
func (k *keys) forSecret(secret string, b uint64) keyring {
	k.mu.Lock()
	defer k.mu.Unlock()
	if secret != k.ring.secret {
		k.ring = keyring{secret: secret, cur: deriveKey(secret), prev: k.ring.cur,
			prevUntil: b + uint64(idLifetime/idBucket)}
	}
	return k.ring
}
