package udp

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"testing"
)

// sipRef is SipHash-2-4 as the paper gives it, for any message length.
func sipRef(k0, k1 uint64, m []byte) uint64 {
	v := [4]uint64{k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d, k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573}
	round := func() {
		v[0] += v[1]
		v[1] = bits.RotateLeft64(v[1], 13) ^ v[0]
		v[0] = bits.RotateLeft64(v[0], 32)
		v[2] += v[3]
		v[3] = bits.RotateLeft64(v[3], 16) ^ v[2]
		v[0] += v[3]
		v[3] = bits.RotateLeft64(v[3], 21) ^ v[0]
		v[2] += v[1]
		v[1] = bits.RotateLeft64(v[1], 17) ^ v[2]
		v[2] = bits.RotateLeft64(v[2], 32)
	}
	compress := func(w uint64) { v[3] ^= w; round(); round(); v[0] ^= w }
	n := len(m)
	for ; len(m) >= 8; m = m[8:] {
		compress(binary.LittleEndian.Uint64(m))
	}
	var last [8]byte
	copy(last[:], m)
	last[7] = byte(n)
	compress(binary.LittleEndian.Uint64(last[:]))
	v[2] ^= 0xff
	round()
	round()
	round()
	round()
	return v[0] ^ v[1] ^ v[2] ^ v[3]
}

func TestSipHash(t *testing.T) {
	// The paper's test vector (appendix A): key 00..0f, message 00..0e.
	k0, k1 := uint64(0x0706050403020100), uint64(0x0f0e0d0c0b0a0908)
	msg := make([]byte, 15)
	for i := range msg {
		msg[i] = byte(i)
	}
	if got := sipRef(k0, k1, msg); got != 0xa129ca6149be45e5 {
		t.Fatalf("reference SipHash = %#x, want 0xa129ca6149be45e5", got)
	}
	// The written-out 24-byte form agrees with the reference.
	for _, m := range [][3]uint64{{0, 0, 0}, {1, 2, 3}, {^uint64(0), 0x0123456789abcdef, 29471234}} {
		b := binary.LittleEndian.AppendUint64(nil, m[0])
		b = binary.LittleEndian.AppendUint64(b, m[1])
		b = binary.LittleEndian.AppendUint64(b, m[2])
		if got, want := siphash24(k0, k1, m[0], m[1], m[2]), sipRef(k0, k1, b); got != want {
			t.Errorf("siphash24(%x) = %#x, want %#x", m, got, want)
		}
	}
}

// IDs depend on the key, the address and the bucket.
func TestConnectionIDInputs(t *testing.T) {
	k := deriveKey("0123456789abcdef0123456789abcdef")
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	id := k.id(a, 100)
	for _, other := range []uint64{k.id(b, 100), k.id(a, 101), deriveKey("0123456789abcdef0123456789abcdeF").id(a, 100), deriveKey("").id(a, 100)} {
		if other == id {
			t.Errorf("two inputs gave the ID %x", id)
		}
	}
	if deriveKey("0123456789abcdef0123456789abcdef").id(a, 100) != id {
		t.Error("one secret gave two keys")
	}
	if k1, k2 := deriveKey(""), deriveKey(""); k1 == k2 {
		t.Error("two random keys are equal")
	}
}

func BenchmarkConnectionIDValid(b *testing.B) {
	k := deriveKey("")
	addr := netip.MustParseAddr("2001:db8::1")
	id := k.id(addr, 99)
	for range b.N {
		if !k.valid(id, addr, 100) {
			b.Fatal("refused")
		}
	}
}
