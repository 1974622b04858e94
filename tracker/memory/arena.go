package memory

import (
	"fmt"
	"os"
)

// An arena holds one shard's peer records and peer_id indexes in a single
// block of memory outside the Go heap (see mapBytes), handed out bottom-up
// in 8-byte units and addressed by offset.
//
// Why not a []byte per list: with a slice each, a million peers are a
// hundred thousand small arrays on the Go heap, and every array a list
// outgrows leaves a hole in a size-class span that larger arrays cannot use.
// Measured at 1M peers, that fragmentation plus the collector's headroom
// made the resident size about twice the live records. Here a block a list
// leaves is a hole until the shard compacts: it copies what is live into a
// new mapping, in one pass, when the holes pass a 32nd of what it
// touched, or when the mapping is full. Only the touched pages are
// resident, the collector neither scans nor counts any of it, and no pointer
// into it survives a compaction because lists hold offsets.
//
// The largest recent holes are also kept aside (spare) for allocations
// they fit. While swarms fill, lists outgrow their blocks all the time, and
// with nothing reused a shard compacted after every few kilobytes of
// growth: loading a million peers took 4.7s, 3.4s of it copying (1.4s
// with reuse).
type arena struct {
	buf    []byte
	top    int // bytes handed out, holes included
	holes  int // bytes below top that nothing uses any more
	spare  [maxSpare]block
	nSpare int
}

// A block is a run of units of an arena.
type block struct{ off, units uint32 }

// maxSpare is how many holes an arena keeps for reuse.
const maxSpare = 16

const (
	unit = 8 // allocation granularity and alignment, in bytes
	// compactFrom is the least size of the holes that makes a shard compact
	// before its mapping is full: below it, copying costs more than the
	// memory is worth.
	compactFrom = 4 << 10
	// maxArena bounds a shard's arena so that offsets fit a uint32 of units.
	maxArena = 1 << 32 * unit
)

// units rounds n bytes up to whole units.
func units(n int) int { return (n + unit - 1) / unit }

// bytesAt returns the n bytes at unit offset off.
func (a *arena) bytesAt(off uint32, n int) []byte {
	o := int(off) * unit
	return a.buf[o : o+n : o+n]
}

// extend grows the block at off, of old bytes, to new bytes in place if it
// ends at the top and the mapping has room, and reports whether it did.
func (a *arena) extend(off uint32, old, new int) bool {
	start := int(off) * unit
	if start+units(old)*unit != a.top || start+units(new)*unit > len(a.buf) {
		return false
	}
	a.top = start + units(new)*unit
	return true
}

// free gives back the block of n bytes at unit offset off.
func (a *arena) free(off uint32, n int) {
	u := units(n)
	if u == 0 {
		return
	}
	a.holes += u * unit
	b := block{off, uint32(u)}
	if a.nSpare < maxSpare {
		a.spare[a.nSpare] = b
		a.nSpare++
		return
	}
	// Full: the hole replaces the smallest kept one, if larger.
	small := 0
	for k := range a.spare {
		if a.spare[k].units < a.spare[small].units {
			small = k
		}
	}
	if b.units > a.spare[small].units {
		a.spare[small] = b
	}
}

// reuse hands out n bytes from the smallest kept hole they fit, and
// reports whether one did. The rest of the hole stays kept.
func (a *arena) reuse(n int) (uint32, bool) {
	u := uint32(units(n))
	best := -1
	for k := range a.nSpare {
		if b := a.spare[k]; b.units >= u && (best < 0 || b.units < a.spare[best].units) {
			best = k
		}
	}
	if best < 0 {
		return 0, false
	}
	b := &a.spare[best]
	off := b.off
	a.holes -= int(u) * unit
	if b.units -= u; b.units > 0 {
		b.off += u
	} else {
		a.nSpare--
		*b = a.spare[a.nSpare]
	}
	return off, true
}

// wantsCompaction reports whether the holes are worth a compaction.
func (a *arena) wantsCompaction() bool {
	return a.holes >= compactFrom && a.holes*32 > a.top
}

// take hands out n bytes at the top, which the caller made sure fit.
func (a *arena) take(n int) uint32 {
	off := a.top / unit
	a.top += units(n) * unit
	return uint32(off)
}

// fits reports whether n more bytes fit the mapping.
func (a *arena) fits(n int) bool { return a.top+units(n)*unit <= len(a.buf) }

// replace swaps in a new mapping of size bytes at least, with nothing in it,
// and returns the old one, which the caller copies from and then releases.
func (a *arena) replace(size int) (old []byte) {
	if size > maxArena {
		panic(fmt.Sprintf("tracker/memory: a shard needs %d bytes; more than %d is not supported (use more shards)", size, maxArena))
	}
	old = a.buf
	*a = arena{buf: mapBytes(pageRound(size))}
	return old
}

// release returns the arena's memory to the system.
func (a *arena) release() {
	if a.buf != nil {
		unmapBytes(a.buf)
	}
	*a = arena{}
}

// resident returns the bytes of the arena's mapping that were touched.
func (a *arena) resident() int { return pageRound(a.top) }

var pageSize = os.Getpagesize()

func pageRound(n int) int { return (n + pageSize - 1) &^ (pageSize - 1) }
