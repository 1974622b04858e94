package memory

import (
	"hash/maphash"

	"github.com/chihaya/chihaya/bittorrent"
)

// swarmIndex is a shard's table from info_hash to the swarm's slot in the
// slab: open addressing with linear probing over 8-byte entries, each the
// top half of the info_hash's hash (a tag) and slot+1, 0 for empty. It is
// kept at most seven-eighths full: a cache line holds eight entries, so
// even a long probe run costs little next to the miss that starts it. The
// info_hash itself is compared in the swarm, which the caller reads next
// anyway.
//
// Why not a Go map: a lookup in one is several dependent loads (map
// header, directory, table, group, slot) before the swarm. With a million
// peers in 1024 shards those missed the caches, and the map was a third
// of the store's time per announce. Here it is one entry, usually in the
// same cache line as its neighbours in the probe.
type swarmIndex struct {
	entries []uint64
	n       int // entries in use
}

const minSwarmIndex = 16

func (sh *shard) hashOf(h *bittorrent.InfoHash) uint64 { return maphash.Bytes(sh.seed, h[:]) }

// lookup returns the slot of the swarm of h, and whether there is one.
func (sh *shard) lookup(h *bittorrent.InfoHash) (int32, bool) {
	x := sh.index.entries
	if len(x) == 0 {
		return 0, false
	}
	hash := sh.hashOf(h)
	mask := uint64(len(x) - 1)
	for i := hash & mask; ; i = (i + 1) & mask {
		e := x[i]
		if e == 0 {
			return 0, false
		}
		if e>>32 == hash>>32 {
			if slot := int32(uint32(e)) - 1; idKeyOf(sh.swarms[slot].hash[:]) == idKeyOf(h[:]) {
				return slot, true
			}
		}
	}
}

// indexSwarm adds the swarm at slot, whose info_hash is not indexed yet,
// to the index. The swarm is marked used already.
func (sh *shard) indexSwarm(slot int32) {
	x := &sh.index
	x.n++
	if 8*x.n > 7*len(x.entries) {
		sh.rebuildIndex(max(minSwarmIndex, 2*len(x.entries))) // slot included
		return
	}
	sh.place(slot)
}

// place puts slot's entry in the first free place of its probe run.
func (sh *shard) place(slot int32) {
	x := sh.index.entries
	hash := sh.hashOf(&sh.swarms[slot].hash)
	mask := uint64(len(x) - 1)
	i := hash & mask
	for x[i] != 0 {
		i = (i + 1) & mask
	}
	x[i] = hash>>32<<32 | uint64(slot+1)
}

// unindexSwarm removes the entry of the swarm at slot from the index,
// shifting later entries of its probe run back so that no lookup stops
// early. The swarm is marked unused already, and still has its info_hash.
func (sh *shard) unindexSwarm(slot int32) {
	x := sh.index.entries
	mask := uint64(len(x) - 1)
	hole := sh.hashOf(&sh.swarms[slot].hash) & mask
	for uint32(x[hole]) != uint32(slot+1) {
		hole = (hole + 1) & mask
	}
	for i := (hole + 1) & mask; x[i] != 0; i = (i + 1) & mask {
		home := sh.hashOf(&sh.swarms[int32(uint32(x[i]))-1].hash) & mask
		// The entry at i may fill the hole unless its home lies
		// cyclically in (hole, i].
		if (i-home)&mask >= (i-hole)&mask {
			x[hole] = x[i]
			hole = i
		}
	}
	x[hole] = 0
	sh.index.n--
	if n := len(x); n > minSwarmIndex && 8*sh.index.n < n {
		sh.rebuildIndex(n / 2)
	}
}

// rebuildIndex indexes every swarm of the slab again in a table of size
// entries.
func (sh *shard) rebuildIndex(size int) {
	sh.index.entries = make([]uint64, size)
	for slot := range sh.swarms {
		if sh.swarms[slot].used {
			sh.place(int32(slot))
		}
	}
}
