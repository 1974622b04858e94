package memory

import (
	"hash/maphash"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/chihaya/chihaya/tracker"
	"github.com/chihaya/chihaya/tracker/trackertest"
)

// TestRecordLayout: the records are the sizes the layout comment in
// peerlist.go gives, in each kind of store.
func TestRecordLayout(t *testing.T) {
	for _, tc := range []struct {
		private, v6 bool
		stride      int
	}{
		{false, false, 30},
		{false, true, 42},
		{true, false, 34},
		{true, true, 46},
	} {
		sh := &shard{uid: tc.private}
		if l := sh.view(&peerList{}, tc.v6); l.stride != tc.stride || l.stride > maxStride || l.hasUID != tc.private {
			t.Errorf("private %v, IPv6 %v: %d-byte records with user id %v, want %d", tc.private, tc.v6, l.stride, l.hasUID, tc.stride)
		}
	}
}

// TestPeerListAgainstModel churns several lists of one shard across the
// sizes where the index is built and dropped, so that their blocks move,
// leave holes and get compacted. After every step each peer is found where
// it is, seeders stay in front, nothing else is found, and the arena's
// account of its holes matches what the lists hold.
func TestPeerListAgainstModel(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		rng := rand.New(rand.NewPCG(1, 2))
		sh := &shard{seed: maphash.MakeSeed(), uid: v6} // private on one, public on the other
		// The lists are the shard's, so that its compactions move them.
		var headers []*peerList
		sh.swarms, sh.v6s = make([]swarm, 0, 5), make([]v6Peers, 0, 5)
		for k := range 5 {
			if v6 {
				sh.v6s = append(sh.v6s, v6Peers{})
				headers = append(headers, &sh.v6s[k].peerList)
			} else {
				sh.swarms = append(sh.swarms, swarm{})
				headers = append(headers, &sh.swarms[k].v4)
			}
		}
		models := make([]map[int]bool, len(headers)) // peer -> seeder
		for k := range models {
			models[k] = map[int]bool{}
		}
		addr := netip.MustParseAddr("10.0.0.1")
		if v6 {
			addr = netip.MustParseAddr("2001:db8::1")
		}
		const universe = 60
		for step := range 20000 {
			k := rng.IntN(len(headers))
			l, model := sh.view(headers[k], v6), models[k]
			n := rng.IntN(universe)
			// Drift the size up and down through the index thresholds.
			grow := (step/2000)%2 == 0
			id := trackertest.ID(n)
			i := l.find(&id)
			if _, ok := model[n]; ok != (i >= 0) {
				t.Fatalf("step %d: peer %d found at %d, in model %v", step, n, i, ok)
			}
			switch {
			case rng.IntN(500) == 0:
				sh.compact(0)
			case rng.IntN(200) == 0:
				l.shrink()
			case i >= 0 && (!grow || rng.IntN(3) == 0) && rng.IntN(2) == 0:
				l.remove(i)
				delete(model, n)
			case i >= 0:
				seeder := rng.IntN(2) == 0
				l.setSeeder(i, seeder)
				model[n] = seeder
			case grow || rng.IntN(4) == 0:
				a := &tracker.Announce{PeerID: id, Addr: addr, Port: uint16(n + 1), Left: uint64(rng.IntN(2))}
				l.add(a, uint32(n+7), uint32(step))
				model[n] = a.Left == 0
			}
			for k := range headers {
				check(t, step, sh.view(headers[k], v6), models[k])
			}
			live := 0
			for k := range headers {
				l := sh.view(headers[k], v6)
				live += l.footprint()
			}
			if got := sh.arena.top - sh.arena.holes; got != live {
				t.Fatalf("step %d: arena accounts %d live bytes, lists hold %d", step, got, live)
			}
		}
		for k := range headers {
			l := sh.view(headers[k], v6)
			l.release()
		}
		if sh.arena.top != sh.arena.holes {
			t.Fatalf("released lists left %d of %d bytes in use", sh.arena.top-sh.arena.holes, sh.arena.top)
		}
		sh.arena.release()
	}
}

func check(t *testing.T, step int, l list, model map[int]bool) {
	t.Helper()
	if l.len() != len(model) {
		t.Fatalf("step %d: %d records, model has %d", step, l.len(), len(model))
	}
	if l.ixBits > 0 && l.len() < indexUntil {
		t.Fatalf("step %d: index kept at %d records", step, l.len())
	}
	if l.ixBits == 0 && l.len() >= indexFrom {
		t.Fatalf("step %d: no index at %d records", step, l.len())
	}
	seeders := 0
	for n, seeder := range model {
		id := trackertest.ID(n)
		i := l.find(&id)
		if i < 0 {
			t.Fatalf("step %d: peer %d lost", step, n)
		}
		if got := l.packed(i); string(l.id(i)) != string(id[:]) || got[len(got)-1] != byte(n+1) {
			t.Fatalf("step %d: peer %d found as %q %q", step, n, l.id(i), got)
		}
		if l.hasUID && l.uid(i) != uint32(n+7) {
			t.Fatalf("step %d: peer %d has user %d", step, n, l.uid(i))
		}
		if (i < int(l.seeders)) != seeder {
			t.Fatalf("step %d: peer %d at %d, seeders %d, seeder %v", step, n, i, l.seeders, seeder)
		}
		if seeder {
			seeders++
		}
	}
	if seeders != int(l.seeders) {
		t.Fatalf("step %d: %d seeders counted, model has %d", step, l.seeders, seeders)
	}
}

// TestLargeListIndex takes one list past 65536 index slots, where its
// index widens from 16-bit to 32-bit slots, and back down, checking that
// every peer is found at each stage.
func TestLargeListIndex(t *testing.T) {
	sh := &shard{seed: maphash.MakeSeed(), swarms: make([]swarm, 1)}
	l := sh.view(&sh.swarms[0].v4, false)
	addr := netip.MustParseAddr("10.0.0.1")
	const n = 70_000
	checkAll := func(from, to int) {
		t.Helper()
		for p := from; p < to; p++ {
			id := trackertest.ID(p)
			if i := l.find(&id); i < 0 || [idLen]byte(l.id(i)) != id {
				t.Fatalf("peer %d not found (found at %d) among %d", p, i, l.len())
			}
		}
	}
	for p := range n {
		l.add(&tracker.Announce{PeerID: trackertest.ID(p), Addr: addr, Port: 1, Left: uint64(p % 2)}, 0, 1)
		if p == 20_000 {
			if l.ixBits > 16 {
				t.Fatalf("%d slots at %d peers: want 16-bit slots still", 1<<l.ixBits, l.len())
			}
			checkAll(0, p+1)
		}
	}
	if l.ixBits <= 16 {
		t.Fatalf("%d slots at %d peers: want 32-bit slots", 1<<l.ixBits, l.len())
	}
	checkAll(0, n)
	for p := 0; p < n; p += 2 {
		id := trackertest.ID(p)
		l.remove(l.find(&id))
	}
	checkAll(n/2, n/2) // nothing
	for p := 1; p < n; p += 2 {
		id := trackertest.ID(p)
		if i := l.find(&id); i < 0 {
			t.Fatalf("peer %d lost after removals", p)
		}
	}
	for p := 0; p < n; p += 2 {
		if id := trackertest.ID(p); l.find(&id) >= 0 {
			t.Fatalf("removed peer %d still found", p)
		}
	}
	sh.arena.release()
}
