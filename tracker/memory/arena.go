package memory

import "fmt"

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
type arena struct {
	buf   []byte
	top   int // bytes handed out, holes included
	holes int // bytes below top that nothing uses any more
}

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

// free gives back a block of n bytes.
func (a *arena) free(n int) { a.holes += units(n) * unit }

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
	a.buf, a.top, a.holes = mapBytes(pageRound(size)), 0, 0
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

func pageRound(n int) int { return (n + pageSize - 1) &^ (pageSize - 1) }
