package memory

import "testing"

// TestArenaReusesHoles: a hole is handed out again to an allocation it
// fits, the smallest that fits first, with what is left of it kept; the
// holes' account follows; a compaction forgets them all.
func TestArenaReusesHoles(t *testing.T) {
	sh := &shard{}
	take := func(n int) uint32 { return sh.alloc(n) }
	a := &sh.arena
	big, small := take(10*unit), take(4*unit)
	take(unit) // keeps the holes below the top
	a.free(big, 10*unit)
	a.free(small, 4*unit)
	if a.holes != 14*unit {
		t.Fatalf("holes %d, want %d", a.holes, 14*unit)
	}
	for _, tc := range []struct {
		n     int
		want  uint32 // offset handed out
		holes int    // after
	}{
		{3 * unit, small, 11 * unit},    // the smallest hole that fits
		{unit + 1, big, 9 * unit},       // rounded up to 2 units, from the larger
		{8 * unit, big + 2, unit},       // the rest of it
		{unit, small + 3, 0},            // the last unit of the small one
		{unit, uint32(a.top / unit), 0}, // nothing kept: the top
	} {
		if got := take(tc.n); got != tc.want || a.holes != tc.holes {
			t.Fatalf("alloc(%d) = %d with %d bytes of holes, want %d with %d", tc.n, got, a.holes, tc.want, tc.holes)
		}
	}
	if a.nSpare != 0 {
		t.Fatalf("%d holes kept after all were used", a.nSpare)
	}

	// A full set keeps the largest holes.
	var offs []uint32
	for k := range maxSpare + 1 {
		offs = append(offs, take((k+1)*unit))
	}
	take(unit)
	for k, off := range offs {
		a.free(off, (k+1)*unit)
	}
	for k := range a.spare {
		if a.spare[k].units == 1 {
			t.Fatalf("the smallest hole was kept over a larger one: %v", a.spare)
		}
	}
	sh.compact(0)
	if a.nSpare != 0 || a.holes != 0 {
		t.Fatalf("after a compaction: %d holes kept, %d bytes of holes", a.nSpare, a.holes)
	}
	a.release()
}
