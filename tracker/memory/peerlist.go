package memory

import (
	"encoding/binary"
	"hash/maphash"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/tracker"
)

// A peer record is a fixed-size run of bytes in a shard's arena, with
// nothing for the garbage collector to scan:
//
//	[0:20)        peer_id (idLen)
//	[20:20+A)     address, A = ipv4Len (4) or ipv6Len (16)
//	[20+A:22+A)   port (portLen), big-endian: address and port together
//	              are the compact (BEP 23 / BEP 7) form of the peer
//	[22+A:26+A)   last announce (seenLen), seconds since the store's epoch,
//	              little-endian; the top two bits are flagSnatched and flagTwin
//	[26+A:30+A)   user id (uidLen), little-endian: private stores only
//
// So a public IPv4 peer costs 30 bytes, and every byte of the record is
// multiplied by the millions of peers a tracker holds. The fields' offsets
// after the address are list.offPort, offSeen and offUID.
const (
	idLen    = bittorrent.PeerIDSize
	ipv4Len  = bittorrent.PackedIPv4 - portLen // A of an IPv4 record
	ipv6Len  = bittorrent.PackedIPv6 - portLen // A of an IPv6 record
	portLen  = 2
	seenLen  = 4 // the last announce and the flags
	uidLen   = 4
	offAddr  = idLen
	fixedLen = idLen + portLen + seenLen // 26: all but the address and the user id
	// maxStride is the largest record: a private store's IPv6 one.
	maxStride = fixedLen + ipv6Len + uidLen
)

// The flags, in the top bits of a record's last announce.
const (
	flagSnatched = 1 << 31 // the peer's completed event has been counted
	// flagTwin marks the IPv6 record of a dual-stacked peer whose IPv4
	// record is in the swarm too: the peer is counted once, by that record.
	flagTwin  = 1 << 30
	flagsMask = flagSnatched | flagTwin
)

// A list of indexFrom records or more keeps a hash index of its peer_ids
// (see ixBytes); below, a linear scan over the records is as fast.
const (
	indexFrom  = 32
	indexUntil = 16 // an index is dropped when the list shrinks below this
	minIxBits  = 6  // the smallest index has 64 slots
)

// peerList is the header of the peers of one address family of one swarm:
// where in the shard's arena its records and index are. Records
// [0, seeders) are seeders, the rest leechers, so that a seeder's answer is
// drawn from the leechers directly. The zero value is an empty list.
type peerList struct {
	off     uint32 // records, in arena units
	n       int32  // records in use
	cap     int32  // records the block has room for
	seeders int32
	ix      uint32 // index slots, in arena units, while ixBits > 0
	ixBits  uint8  // log2 of the index's slot count; 0: no index
}

// list is a peerList at work, under its shard's lock: the header, the shard
// whose arena holds the records, and the record layout. It is made for one
// operation and not kept. Its methods take a pointer, as most of them
// change the list: its header (through the embedded pointer) or records.
type list struct {
	*peerList
	sh      *shard
	stride  int
	addrLen int
	hasUID  bool
}

func (l *list) len() int { return int(l.n) }
func (l *list) rec(i int) []byte {
	o := int(l.off)*unit + i*l.stride
	return l.sh.arena.buf[o : o+l.stride : o+l.stride]
}

// records returns the list's records, for a loop that allocates nothing.
func (l *list) records() []byte {
	o := int(l.off) * unit
	return l.sh.arena.buf[o : o+l.len()*l.stride]
}

// The offsets of a record's fields after the address, which depend on the
// address's length.
func (l *list) offPort() int { return offAddr + l.addrLen }
func (l *list) offSeen() int { return l.offPort() + portLen }
func (l *list) offUID() int  { return l.offSeen() + seenLen }

func (l *list) id(i int) []byte   { return l.rec(i)[:idLen] }
func (l *list) addr(i int) []byte { return l.rec(i)[offAddr:l.offPort()] }

// packed returns record i's address and port: the peer in compact form.
func (l *list) packed(i int) []byte { return l.rec(i)[offAddr : l.offPort()+portLen] }

// seen returns record i's last announce time.
func (l *list) seen(i int) uint32 {
	return binary.LittleEndian.Uint32(l.rec(i)[l.offSeen():]) &^ flagsMask
}

// flag reports whether record i has flag f.
func (l *list) flag(i int, f uint32) bool {
	return binary.LittleEndian.Uint32(l.rec(i)[l.offSeen():])&f != 0
}

// setFlag sets or clears flag f of record i and reports whether it was set.
func (l *list) setFlag(i int, f uint32, on bool) (was bool) {
	b := l.rec(i)[l.offSeen():]
	w := binary.LittleEndian.Uint32(b)
	if on {
		binary.LittleEndian.PutUint32(b, w|f)
	} else {
		binary.LittleEndian.PutUint32(b, w&^f)
	}
	return w&f != 0
}

// uid returns record i's user id (0 in a public store).
func (l *list) uid(i int) uint32 {
	if !l.hasUID {
		return 0
	}
	return binary.LittleEndian.Uint32(l.rec(i)[l.offUID():])
}

// set writes the announcer's address and port, its user and the time into
// record i, keeping its flags.
func (l *list) set(i int, a *tracker.Announce, uid, now uint32) {
	r := l.rec(i)
	if l.addrLen == ipv4Len {
		b := a.Addr.As4()
		copy(r[offAddr:], b[:])
	} else {
		b := a.Addr.As16()
		copy(r[offAddr:], b[:])
	}
	binary.BigEndian.PutUint16(r[l.offPort():], a.Port)
	seen := r[l.offSeen():]
	flags := binary.LittleEndian.Uint32(seen) & flagsMask
	binary.LittleEndian.PutUint32(seen, now&^flagsMask|flags)
	if l.hasUID {
		binary.LittleEndian.PutUint32(r[l.offUID():], uid)
	}
}

// find returns the position of the peer with id, or -1.
func (l *list) find(id *bittorrent.PeerID) int {
	if l.ixBits > 0 {
		return int(l.slotAt(l.slot(id[:]))) - 1
	}
	recs := l.records()
	k := idKeyOf(id[:])
	for i, o := 0, 0; o+idLen <= len(recs); i, o = i+1, o+l.stride {
		if idKeyOf(recs[o:]) == k {
			return i
		}
	}
	return -1
}

// An idKey is a peer_id or info_hash as the words it is compared by. The
// store compares these in its inner loops, and == on a [20]byte is a
// call to runtime.memequal with both arrays copied to the stack first;
// this is three loads and compares, inline.
type idKey struct {
	a, b uint64
	c    uint32
}

func idKeyOf(p []byte) idKey {
	_ = p[idLen-1]
	return idKey{binary.LittleEndian.Uint64(p), binary.LittleEndian.Uint64(p[8:]), binary.LittleEndian.Uint32(p[16:])}
}

// add appends a new peer, of user uid, and returns its position.
func (l *list) add(a *tracker.Announce, uid, now uint32) int {
	i := l.len()
	l.grow()
	r := l.rec(i)
	copy(r, a.PeerID[:])
	binary.LittleEndian.PutUint32(r[l.offSeen():], 0) // no flags
	l.set(i, a, uid, now)
	if l.ixBits > 0 {
		l.index(i)
	} else if i+1 >= indexFrom {
		l.buildIndex()
	}
	if a.Seeder() {
		return l.setSeeder(i, true)
	}
	return i
}

// grow makes room for one more record. A full block grows by about a
// sixteenth rather than doubling: most of the store's memory is records, and
// announces are frequent enough that copying is cheap.
func (l *list) grow() {
	if l.n < l.cap {
		l.n++
		return
	}
	c := l.n + 1
	c += c / 16
	l.resize(int(c))
	l.n++
}

// resize moves the records to a block with room for c records (c >= len).
func (l *list) resize(c int) {
	a := &l.sh.arena
	old := int(l.cap) * l.stride
	if l.cap > 0 && a.extend(l.off, old, c*l.stride) {
		l.cap = int32(c)
		return
	}
	off := l.sh.alloc(c * l.stride) // may compact: l.off is read after
	copy(a.bytesAt(off, c*l.stride), a.bytesAt(l.off, l.len()*l.stride))
	a.free(l.off, old)
	l.off, l.cap = off, int32(c)
}

// setSeeder moves record i into the seeder or leecher part of the list and
// returns its new position.
func (l *list) setSeeder(i int, seeder bool) int {
	isSeeder := i < int(l.seeders)
	switch {
	case seeder && !isSeeder:
		j := int(l.seeders)
		l.swap(i, j)
		l.seeders++
		return j
	case !seeder && isSeeder:
		j := int(l.seeders) - 1
		l.swap(i, j)
		l.seeders--
		return j
	}
	return i
}

// remove deletes record i, keeping the seeder/leecher partition.
func (l *list) remove(i int) {
	if l.ixBits > 0 {
		l.unindex(i)
	}
	last := l.len() - 1
	if i < int(l.seeders) {
		// Fill the hole with the last seeder, and that one's place with the
		// last leecher.
		ls := int(l.seeders) - 1
		l.move(ls, i)
		l.move(last, ls)
		l.seeders--
	} else {
		l.move(last, i)
	}
	l.n--
	if l.ixBits > 0 && last < indexUntil {
		l.dropIndex()
	}
}

// move copies record from over record to and tells the index.
func (l *list) move(from, to int) {
	if from == to {
		return
	}
	copy(l.rec(to), l.rec(from))
	if l.ixBits > 0 {
		l.setSlot(l.slot(l.id(to)), to)
	}
}

// swap exchanges records i and j.
func (l *list) swap(i, j int) {
	if i == j {
		return
	}
	si, sj := -1, -1
	if l.ixBits > 0 { // find both entries while the records still match them
		si, sj = l.slot(l.id(i)), l.slot(l.id(j))
	}
	var tmp [maxStride]byte
	ri, rj := l.rec(i), l.rec(j)
	copy(tmp[:], ri)
	copy(ri, rj)
	copy(rj, tmp[:len(ri)])
	if l.ixBits > 0 {
		l.setSlot(si, j)
		l.setSlot(sj, i)
	}
}

// shrink gives back the room of peers that left, in place: the block's
// tail becomes a hole, for the next compaction to take back.
func (l *list) shrink() {
	if l.cap-l.n <= l.n/4+1 {
		return
	}
	c := l.n + l.n/8
	keep := units(int(c) * l.stride)
	l.sh.arena.free(l.off+uint32(keep), units(int(l.cap)*l.stride)*unit-keep*unit)
	l.cap = c
	if c == 0 {
		l.off = 0
	}
}

// footprint returns the arena bytes the list holds: its records' block and
// its index.
func (l *list) footprint() int {
	n := units(int(l.cap)*l.stride) * unit
	if l.ixBits > 0 {
		n += units(ixBytes(l.ixBits)) * unit
	}
	return n
}

// release gives back everything the list holds.
func (l *list) release() {
	l.n, l.seeders = 0, 0
	if l.ixBits > 0 {
		l.dropIndex()
	}
	l.shrink()
}

// The index is an open-addressing hash table from peer_id to position, with
// linear probing, in the arena: slot k is a little-endian uint16 or uint32
// (see ixBytes) holding position+1, 0 for empty. It is kept at most
// three-quarters full: rebuilt at that, it starts about 3/8 full.

// ixBytes is the size of an index of 1<<bits slots: 2 bytes a slot up to
// 65536 slots (lists of 24k to 49k peers), where every position+1 fits 16
// bits, and 4 beyond. Half the width is half the index's memory in all but the
// largest swarms.
func ixBytes(bits uint8) int {
	if bits <= 16 {
		return 2 << bits
	}
	return 4 << bits
}

func (l *list) slotAt(k int) uint32 {
	o := int(l.ix) * unit
	if l.ixBits <= 16 {
		return uint32(binary.LittleEndian.Uint16(l.sh.arena.buf[o+2*k:]))
	}
	return binary.LittleEndian.Uint32(l.sh.arena.buf[o+4*k:])
}

// setSlot points slot k at position i.
func (l *list) setSlot(k, i int) { l.putSlot(k, uint32(i+1)) }

func (l *list) clearSlot(k int) { l.putSlot(k, 0) }

func (l *list) putSlot(k int, v uint32) {
	o := int(l.ix) * unit
	if l.ixBits <= 16 {
		binary.LittleEndian.PutUint16(l.sh.arena.buf[o+2*k:], uint16(v))
		return
	}
	binary.LittleEndian.PutUint32(l.sh.arena.buf[o+4*k:], v)
}

func (l *list) home(id []byte) int {
	return int(maphash.Bytes(l.sh.seed, id)) & (1<<l.ixBits - 1)
}

// slot returns the slot that holds id, or the empty slot where it would go.
func (l *list) slot(id []byte) int {
	mask := 1<<l.ixBits - 1
	key := idKeyOf(id)
	for k := l.home(id); ; k = (k + 1) & mask {
		v := l.slotAt(k)
		if v == 0 || idKeyOf(l.rec(int(v-1))) == key {
			return k
		}
	}
}

// buildIndex (re)builds the index at the size the list needs.
func (l *list) buildIndex() {
	bits := uint8(minIxBits)
	for 3<<bits < 4*(l.len()+1)*2 {
		bits++
	}
	size := ixBytes(bits)
	off := l.sh.alloc(size) // may compact: l.ix is read after
	if l.ixBits > 0 {
		l.sh.arena.free(l.ix, ixBytes(l.ixBits))
	}
	l.ix, l.ixBits = off, bits
	clear(l.sh.arena.bytesAt(off, size))
	for i := range l.len() {
		l.setSlot(l.slot(l.id(i)), i)
	}
}

func (l *list) dropIndex() {
	l.sh.arena.free(l.ix, ixBytes(l.ixBits))
	l.ix, l.ixBits = 0, 0
}

// index adds record i, which is new, to the index.
func (l *list) index(i int) {
	if 4*(l.len()+1) > 3<<l.ixBits {
		l.buildIndex() // at double size, i included
		return
	}
	l.setSlot(l.slot(l.id(i)), i)
}

// unindex removes record i's entry from the index, shifting later entries
// of its probe run back so that no lookup stops early.
func (l *list) unindex(i int) {
	mask := 1<<l.ixBits - 1
	hole := l.slot(l.id(i))
	for k := (hole + 1) & mask; l.slotAt(k) != 0; k = (k + 1) & mask {
		v := l.slotAt(k)
		h := l.home(l.id(int(v - 1)))
		// The entry at k may fill the hole unless its home lies cyclically
		// in (hole, k].
		if (k-h)&mask >= (k-hole)&mask {
			l.setSlot(hole, int(v-1))
			hole = k
		}
	}
	l.clearSlot(hole)
}
