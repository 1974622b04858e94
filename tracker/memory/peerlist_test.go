package memory

import (
	"hash/maphash"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/chihaya/chihaya/tracker"
	"github.com/chihaya/chihaya/tracker/trackertest"
)

// TestPeerListAgainstModel churns one list across the sizes where the
// index is built and dropped, checking after every step that each peer is
// found where it is, seeders stay in front, and nothing else is found.
func TestPeerListAgainstModel(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		seed := maphash.MakeSeed()
		rng := rand.New(rand.NewPCG(1, 2))
		list := newPeerList(v6, v6) // private on one, public on the other
		l := &list
		addr := netip.MustParseAddr("10.0.0.1")
		if v6 {
			addr = netip.MustParseAddr("2001:db8::1")
		}
		model := map[int]bool{} // peer -> seeder
		const universe = 60
		for step := range 20000 {
			n := rng.IntN(universe)
			// Drift the size up and down through the index thresholds.
			grow := (step/2000)%2 == 0
			id := trackertest.ID(n)
			i := l.find(&id, seed)
			if _, ok := model[n]; ok != (i >= 0) {
				t.Fatalf("step %d: peer %d found at %d, in model %v", step, n, i, ok)
			}
			switch {
			case i >= 0 && (!grow || rng.IntN(3) == 0) && rng.IntN(2) == 0:
				l.remove(i, seed)
				delete(model, n)
			case i >= 0:
				seeder := rng.IntN(2) == 0
				l.setSeeder(i, seeder, seed)
				model[n] = seeder
			case grow || rng.IntN(4) == 0:
				a := &tracker.Announce{PeerID: id, Addr: addr, Port: uint16(n + 1), Left: uint64(rng.IntN(2)), UserID: uint32(n + 7)}
				l.add(a, uint32(step), seed)
				model[n] = a.Left == 0
			}
			check(t, step, l, model, seed)
		}
	}
}

func check(t *testing.T, step int, l *peerList, model map[int]bool, seed maphash.Seed) {
	t.Helper()
	if l.len() != len(model) {
		t.Fatalf("step %d: %d records, model has %d", step, l.len(), len(model))
	}
	if (l.index != nil) && l.len() < indexUntil {
		t.Fatalf("step %d: index kept at %d records", step, l.len())
	}
	if l.index == nil && l.len() >= indexFrom {
		t.Fatalf("step %d: no index at %d records", step, l.len())
	}
	seeders := 0
	for n, seeder := range model {
		id := trackertest.ID(n)
		i := l.find(&id, seed)
		if i < 0 {
			t.Fatalf("step %d: peer %d lost", step, n)
		}
		if got := l.compact(i); string(l.id(i)) != string(id[:]) || got[len(got)-1] != byte(n+1) {
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
