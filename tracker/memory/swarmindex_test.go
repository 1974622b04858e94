package memory

import (
	"hash/maphash"
	"math/rand/v2"
	"testing"

	"github.com/chihaya/chihaya/bittorrent"
)

// TestSwarmIndexAgainstModel adds and drops swarms of one shard at random,
// growing the index past several doublings and shrinking it back, and
// checks after every step that each swarm is found at its slot and that
// no other info_hash is.
func TestSwarmIndexAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	sh := &shard{seed: maphash.MakeSeed()}
	model := map[bittorrent.InfoHash]int32{}
	hash := func(n int) (h bittorrent.InfoHash) {
		h[0], h[1], h[19] = byte(n), byte(n>>8), 7 // a shared suffix, as in the wild
		return h
	}
	const universe = 2000
	for step := range 40000 {
		// Drift the population up to about the universe and back down.
		grow := (step/10000)%2 == 0
		n := rng.IntN(universe)
		h := hash(n)
		slot, ok := sh.lookup(&h)
		if want, in := model[h]; in != ok || (ok && slot != want) {
			t.Fatalf("step %d: swarm %d found=%v at %d, model has %v at %d", step, n, ok, slot, in, want)
		}
		switch {
		case !ok && (grow || rng.IntN(3) == 0):
			model[h] = sh.add(h)
		case ok && (!grow || rng.IntN(3) == 0):
			sh.drop(slot)
			delete(model, h)
		}
		if sh.index.n != len(model) {
			t.Fatalf("step %d: index counts %d swarms, model has %d", step, sh.index.n, len(model))
		}
		if step%500 == 0 {
			for h, want := range model {
				if slot, ok := sh.lookup(&h); !ok || slot != want {
					t.Fatalf("step %d: swarm %x found=%v at %d, want %d", step, h[:2], ok, slot, want)
				}
			}
			if 8*sh.index.n > 7*len(sh.index.entries) {
				t.Fatalf("step %d: %d swarms in %d entries", step, sh.index.n, len(sh.index.entries))
			}
		}
	}
	if len(model) == 0 || len(sh.index.entries) > 8*len(model)+minSwarmIndex {
		t.Fatalf("%d swarms left in %d entries: the index did not shrink", len(model), len(sh.index.entries))
	}
	sh.arena.release()
}
