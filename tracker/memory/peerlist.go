package memory

import (
	"encoding/binary"
	"hash/maphash"

	"github.com/chihaya/chihaya/tracker"
)

// A peer record is a fixed-size run of bytes in a peerList, with nothing for
// the garbage collector to scan:
//
//	[0:20)        peer_id
//	[20:20+A)     address, A = 4 (IPv4) or 16 (IPv6)
//	[20+A:22+A)   port, big-endian: address and port together are the
//	              compact (BEP 23 / BEP 7) form of the peer
//	[22+A:26+A)   last announce, seconds since the store's epoch, little-endian;
//	              the top two bits are flagSnatched and flagTwin
//	[26+A:30+A)   user id, little-endian: private stores only
//
// So a public IPv4 peer costs 30 bytes, and every byte of the record is
// multiplied by the millions of peers a tracker holds.
const (
	offAddr      = 20
	flagSnatched = 1 << 31 // the peer's completed event has been counted
	// flagTwin marks the IPv6 record of a dual-stacked peer whose IPv4
	// record is in the swarm too: the peer is counted once, by that record.
	flagTwin  = 1 << 30
	flagsMask = flagSnatched | flagTwin
	maxStride = 26 + 16 + 4
)

// indexFrom is the list length from which a list keeps a hash index of its
// peer_ids; below it a linear scan over the records is as fast.
const (
	indexFrom  = 32
	indexUntil = 16 // an index is dropped when the list shrinks below this
)

// peerList holds the peers of one address family of one swarm. Records
// [0, seeders) are seeders, the rest leechers, so that a seeder's answer is
// drawn from the leechers directly.
type peerList struct {
	recs    []byte
	index   *peerIndex // nil while the list is short
	seeders int32
	stride  uint8
	addrLen uint8 // 4 or 16
	hasUID  bool
}

func newPeerList(v6, private bool) peerList {
	l := peerList{addrLen: 4, hasUID: private}
	if v6 {
		l.addrLen = 16
	}
	l.stride = 26 + l.addrLen
	if private {
		l.stride += 4
	}
	return l
}

func (l *peerList) len() int             { return len(l.recs) / int(l.stride) }
func (l *peerList) leechers() int        { return l.len() - int(l.seeders) }
func (l *peerList) rec(i int) []byte     { s := int(l.stride); return l.recs[i*s : i*s+s : i*s+s] }
func (l *peerList) id(i int) []byte      { return l.rec(i)[:offAddr] }
func (l *peerList) offSeen() int         { return offAddr + int(l.addrLen) + 2 }
func (l *peerList) addr(i int) []byte    { return l.rec(i)[offAddr : offAddr+int(l.addrLen)] }
func (l *peerList) compact(i int) []byte { return l.rec(i)[offAddr : offAddr+int(l.addrLen)+2] }

// seen returns record i's last announce time.
func (l *peerList) seen(i int) uint32 {
	return binary.LittleEndian.Uint32(l.rec(i)[l.offSeen():]) &^ flagsMask
}

// flag reports whether record i has flag f.
func (l *peerList) flag(i int, f uint32) bool {
	return binary.LittleEndian.Uint32(l.rec(i)[l.offSeen():])&f != 0
}

// setFlag sets or clears flag f of record i and reports whether it was set.
func (l *peerList) setFlag(i int, f uint32, on bool) (was bool) {
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
func (l *peerList) uid(i int) uint32 {
	if !l.hasUID {
		return 0
	}
	return binary.LittleEndian.Uint32(l.rec(i)[l.offSeen()+4:])
}

// set writes the announcer's address, port, user and time into record i,
// keeping its flags.
func (l *peerList) set(i int, a *tracker.Announce, now uint32) {
	r := l.rec(i)
	if l.addrLen == 4 {
		b := a.Addr.As4()
		copy(r[offAddr:], b[:])
	} else {
		b := a.Addr.As16()
		copy(r[offAddr:], b[:])
	}
	binary.BigEndian.PutUint16(r[offAddr+int(l.addrLen):], a.Port)
	seen := r[l.offSeen():]
	flags := binary.LittleEndian.Uint32(seen) & flagsMask
	binary.LittleEndian.PutUint32(seen, now&^flagsMask|flags)
	if l.hasUID {
		binary.LittleEndian.PutUint32(seen[4:], a.UserID)
	}
}

// find returns the position of the peer with id, or -1.
func (l *peerList) find(id *tracker.PeerID, seed maphash.Seed) int {
	if l.index != nil {
		return l.index.find(l, id, seed)
	}
	for i, n := 0, l.len(); i < n; i++ {
		if string(l.id(i)) == string(id[:]) {
			return i
		}
	}
	return -1
}

// add appends a new peer and returns its position.
func (l *peerList) add(a *tracker.Announce, now uint32, seed maphash.Seed) int {
	i := l.len()
	l.recs = l.grow(l.recs)
	r := l.rec(i)
	copy(r, a.PeerID[:])
	binary.LittleEndian.PutUint32(r[l.offSeen():], 0) // no flags
	l.set(i, a, now)
	if l.index != nil {
		l.index.insert(l, i, seed)
	} else if i+1 >= indexFrom {
		l.index = newPeerIndex(l, seed)
	}
	if a.Seeder() {
		return l.setSeeder(i, true, seed)
	}
	return i
}

// grow makes room for one more record, growing the backing array by about
// an eighth rather than doubling it: most of the store's memory is in these
// arrays, and announces are frequent enough that copying is cheap.
func (l *peerList) grow(recs []byte) []byte {
	s := int(l.stride)
	if len(recs)+s <= cap(recs) {
		return recs[:len(recs)+s]
	}
	n := len(recs)/s + 1
	n += n / 8
	bigger := make([]byte, len(recs)+s, n*s)
	copy(bigger, recs)
	return bigger
}

// setSeeder moves record i into the seeder or leecher part of the list and
// returns its new position.
func (l *peerList) setSeeder(i int, seeder bool, seed maphash.Seed) int {
	isSeeder := i < int(l.seeders)
	switch {
	case seeder && !isSeeder:
		j := int(l.seeders)
		l.swap(i, j, seed)
		l.seeders++
		return j
	case !seeder && isSeeder:
		j := int(l.seeders) - 1
		l.swap(i, j, seed)
		l.seeders--
		return j
	}
	return i
}

// remove deletes record i, keeping the seeder/leecher partition.
func (l *peerList) remove(i int, seed maphash.Seed) {
	if l.index != nil {
		l.index.delete(l, i, seed)
	}
	last := l.len() - 1
	if i < int(l.seeders) {
		// Fill the hole with the last seeder, and that one's place with the
		// last leecher.
		ls := int(l.seeders) - 1
		l.move(ls, i, seed)
		l.move(last, ls, seed)
		l.seeders--
	} else {
		l.move(last, i, seed)
	}
	l.recs = l.recs[:last*int(l.stride)]
	if l.index != nil && last < indexUntil {
		l.index = nil
	}
}

// move copies record from over record to and tells the index.
func (l *peerList) move(from, to int, seed maphash.Seed) {
	if from == to {
		return
	}
	copy(l.rec(to), l.rec(from))
	if l.index != nil {
		l.index.update(l, to, seed)
	}
}

// swap exchanges records i and j.
func (l *peerList) swap(i, j int, seed maphash.Seed) {
	if i == j {
		return
	}
	si, sj := -1, -1
	if l.index != nil { // find both entries while the records still match them
		si, sj = l.index.slot(l, l.id(i), seed), l.index.slot(l, l.id(j), seed)
	}
	var tmp [maxStride]byte
	ri, rj := l.rec(i), l.rec(j)
	copy(tmp[:], ri)
	copy(ri, rj)
	copy(rj, tmp[:len(ri)])
	if l.index != nil {
		l.index.slots[si], l.index.slots[sj] = int32(j+1), int32(i+1)
	}
}

// shrink gives back memory after many peers left.
func (l *peerList) shrink() {
	if cap(l.recs) > 2*len(l.recs)+4*int(l.stride) {
		l.recs = append([]byte(nil), l.recs...)
	}
}

// peerIndex is an open-addressing hash table from peer_id to position in a
// peerList, with linear probing. A slot holds position+1; 0 is empty. It is
// kept at most half full.
type peerIndex struct {
	slots []int32
}

func newPeerIndex(l *peerList, seed maphash.Seed) *peerIndex {
	n := 64
	for n < 2*l.len()+2 {
		n *= 2
	}
	x := &peerIndex{slots: make([]int32, n)}
	for i := range l.len() {
		x.insert(l, i, seed)
	}
	return x
}

func (x *peerIndex) home(id []byte, seed maphash.Seed) int {
	return int(maphash.Bytes(seed, id)) & (len(x.slots) - 1)
}

// slot returns the slot that holds id, or the empty slot where it would go.
func (x *peerIndex) slot(l *peerList, id []byte, seed maphash.Seed) int {
	mask := len(x.slots) - 1
	for s := x.home(id, seed); ; s = (s + 1) & mask {
		v := x.slots[s]
		if v == 0 || string(l.id(int(v-1))) == string(id) {
			return s
		}
	}
}

func (x *peerIndex) find(l *peerList, id *tracker.PeerID, seed maphash.Seed) int {
	return int(x.slots[x.slot(l, id[:], seed)]) - 1
}

func (x *peerIndex) insert(l *peerList, i int, seed maphash.Seed) {
	if 2*(l.len()+1) > len(x.slots) {
		*x = *newPeerIndex(l, seed) // rebuilt at double size, i included
		return
	}
	x.slots[x.slot(l, l.id(i), seed)] = int32(i + 1)
}

// update points the entry of the peer now at position i to i.
func (x *peerIndex) update(l *peerList, i int, seed maphash.Seed) {
	x.slots[x.slot(l, l.id(i), seed)] = int32(i + 1)
}

// delete removes the entry of the peer at position i, shifting later
// entries of its probe run back so that no lookup stops early.
func (x *peerIndex) delete(l *peerList, i int, seed maphash.Seed) {
	mask := len(x.slots) - 1
	hole := x.slot(l, l.id(i), seed)
	for s := (hole + 1) & mask; x.slots[s] != 0; s = (s + 1) & mask {
		h := x.home(l.id(int(x.slots[s]-1)), seed)
		// The entry at s may fill the hole unless its home lies cyclically
		// in (hole, s].
		if (s-h)&mask >= (s-hole)&mask {
			x.slots[hole] = x.slots[s]
			hole = s
		}
	}
	x.slots[hole] = 0
}
