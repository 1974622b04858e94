// Package memory registers the "memory" tracker driver: swarms kept in this
// process, in a map sharded by info_hash so that announces to different
// torrents rarely wait on one another.
//
// Peers are stored as fixed-size, pointer-free records (see peerList), so a
// store of millions of peers costs tens of bytes each and gives the garbage
// collector almost nothing to scan.
//
// Parameters ("tracker.params"):
//
//	{"shards": 1024}   number of independently locked shards (a power of two)
package memory

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/tracker"
)

func init() { tracker.Register("memory", driver{}) }

type driver struct{}

// Params are the driver's configuration.
type Params struct {
	Shards int `json:"shards"`
	// Private stores keep each peer's user id (tracker.Options.Private).
	Private bool `json:"-"`
}

// Open creates an empty store.
func (driver) Open(opts tracker.Options) (tracker.Pool, error) {
	p := Params{Shards: 1024, Private: opts.Private}
	if err := config.DecodeParams("tracker.params", opts.Params, &p); err != nil {
		return nil, err
	}
	if p.Shards < 1 || p.Shards&(p.Shards-1) != 0 || p.Shards > 1<<16 {
		return nil, fmt.Errorf("tracker.params: shards: want a power of two from 1 to 65536, got %d", p.Shards)
	}
	return New(p), nil
}

// Store is an in-memory swarm store. It is its own Pool and Conn: Get
// returns the store itself and Close on it does nothing, so a request costs
// no allocation.
type Store struct {
	shards  []shard
	seed    maphash.Seed
	epoch   time.Time
	private bool
}

// New returns an empty store.
func New(p Params) *Store {
	return &Store{shards: make([]shard, p.Shards), seed: maphash.MakeSeed(), epoch: time.Now(), private: p.Private}
}

// shard is one lock's worth of swarms. Swarms live in a slab indexed by a
// map, so that the map holds no pointers and a swarm can be changed in place.
type shard struct {
	mu     sync.Mutex
	index  map[tracker.InfoHash]int32
	swarms []swarm
	free   []int32 // slab slots of removed swarms, for reuse
	_      [32]byte
}

type swarm struct {
	v4         peerList
	v6         *peerList // most swarms have no IPv6 peer
	downloaded uint32
}

func (s *Store) shard(h *tracker.InfoHash) *shard {
	return &s.shards[binary.LittleEndian.Uint32(h[:4])&uint32(len(s.shards)-1)]
}

// now is the store's clock: whole seconds since the epoch.
func (s *Store) now(t time.Time) uint32 { return uint32(t.Sub(s.epoch) / time.Second) }

// list returns the swarm's list for the address's family, creating it if
// create is set; it returns nil for a missing list otherwise.
func (w *swarm) list(v6, create, private bool) *peerList {
	if !v6 {
		return &w.v4
	}
	if w.v6 == nil && create {
		l := newPeerList(true, private)
		w.v6 = &l
	}
	return w.v6
}

func (w *swarm) counts() tracker.Counts {
	c := tracker.Counts{Complete: int(w.v4.seeders), Incomplete: w.v4.leechers(), Downloaded: int(w.downloaded)}
	if w.v6 != nil {
		c.Complete += int(w.v6.seeders)
		c.Incomplete += w.v6.leechers()
	}
	return c
}

func (w *swarm) empty() bool {
	return w.v4.len() == 0 && (w.v6 == nil || w.v6.len() == 0)
}

// Get returns the store itself.
func (s *Store) Get() (tracker.Conn, error) { return s, nil }

// Close does nothing: a Conn of this store holds no resources.
func (s *Store) Close() error { return nil }

// Announce implements tracker.Conn.
func (s *Store) Announce(_ context.Context, a *tracker.Announce, want int, resp *tracker.AnnounceResponse) error {
	now := s.now(time.Now())
	v6 := a.Addr.Is6()
	sh := s.shard(&a.InfoHash)
	sh.mu.Lock()
	defer sh.mu.Unlock()

	slot, ok := sh.index[a.InfoHash]
	if !ok {
		if a.Event == tracker.Stopped {
			resp.Counts = tracker.Counts{}
			return nil
		}
		slot = sh.add(a.InfoHash, s.private)
		resp.Change |= tracker.SwarmAdded
	}
	w := &sh.swarms[slot]
	l := w.list(v6, a.Event != tracker.Stopped, s.private)
	i := -1
	if l != nil {
		i = l.find(&a.PeerID, s.seed)
	}
	if i >= 0 && i < int(l.seeders) {
		resp.Change |= tracker.SeederBefore
	}

	if a.Event == tracker.Stopped {
		if i >= 0 {
			l.remove(i, s.seed)
			resp.Change |= tracker.PeerRemoved
		}
		resp.Counts = w.counts()
		return nil
	}

	seeder := a.Left == 0
	if i < 0 {
		i = l.add(a, now, s.seed)
		resp.Change |= tracker.PeerAdded
	} else {
		l.set(i, a, now)
		i = l.setSeeder(i, seeder, s.seed)
	}
	if seeder {
		resp.Change |= tracker.SeederAfter
	}
	if a.Event == tracker.Completed && !l.markSnatched(i) {
		w.downloaded++
		resp.Change |= tracker.Snatched
	}
	resp.Counts = w.counts()

	if want > 0 {
		// The announcer's own family first: those are the peers it can reach.
		resp.Peers = pick(resp.Peers, l, i, a.UserID, seeder, want)
		if other := w.list(!v6, false, s.private); other != nil && len(resp.Peers) < want {
			resp.Peers = pick(resp.Peers, other, -1, a.UserID, seeder, want)
		}
	}
	return nil
}

// pick appends peers of l to dst until dst holds want, skipping record self
// and, in a private store, every peer of user uid: leechers only for a
// seeder. It starts at a random record and walks on, so that every peer is
// handed out about as often.
func pick(dst []tracker.Peer, l *peerList, self int, uid uint32, seeder bool, want int) []tracker.Peer {
	lo, n := 0, l.len()
	if seeder {
		lo = int(l.seeders)
	}
	span := n - lo
	if span <= 0 {
		return dst
	}
	start := rand.IntN(span)
	for k := 0; k < span && len(dst) < want; k++ {
		j := lo + (start+k)%span
		if j != self && (uid == 0 || l.uid(j) != uid) {
			dst = append(dst, l.peer(j))
		}
	}
	return dst
}

// add puts a new, empty swarm in the shard and returns its slot.
func (sh *shard) add(h tracker.InfoHash, private bool) int32 {
	if sh.index == nil {
		sh.index = make(map[tracker.InfoHash]int32)
	}
	var slot int32
	if n := len(sh.free); n > 0 {
		slot = sh.free[n-1]
		sh.free = sh.free[:n-1]
	} else {
		slot = int32(len(sh.swarms))
		sh.swarms = append(sh.swarms, swarm{})
	}
	sh.swarms[slot] = swarm{v4: newPeerList(false, private)}
	sh.index[h] = slot
	return slot
}

// Scrape implements tracker.Conn.
func (s *Store) Scrape(_ context.Context, hashes []tracker.InfoHash, out []tracker.Scrape) ([]tracker.Scrape, error) {
	for i := range hashes {
		sc := tracker.Scrape{InfoHash: hashes[i]}
		sh := s.shard(&hashes[i])
		sh.mu.Lock()
		if slot, ok := sh.index[hashes[i]]; ok {
			sc.Counts = sh.swarms[slot].counts()
		}
		sh.mu.Unlock()
		out = append(out, sc)
	}
	return out, nil
}

// Purge implements tracker.Conn. It holds one shard's lock at a time.
func (s *Store) Purge(ctx context.Context, before time.Time, purgeEmpty bool) (tracker.Purged, error) {
	var p tracker.Purged
	cutoff := s.now(before)
	if before.Before(s.epoch) {
		cutoff = 0
	}
	for k := range s.shards {
		if err := ctx.Err(); err != nil {
			return p, err
		}
		sh := &s.shards[k]
		sh.mu.Lock()
		for h, slot := range sh.index {
			w := &sh.swarms[slot]
			for f, l := range []*peerList{&w.v4, w.v6} {
				if l == nil {
					continue
				}
				// Backwards, so that what remove moves into place was checked.
				for i := l.len() - 1; i >= 0; i-- {
					if l.seen(i) < cutoff {
						p.Peers[f]++
						if i < int(l.seeders) {
							p.Seeders[f]++
						}
						l.remove(i, s.seed)
					}
				}
				l.shrink()
			}
			if w.v6 != nil && w.v6.len() == 0 {
				w.v6 = nil
			}
			if purgeEmpty && w.empty() {
				delete(sh.index, h)
				sh.swarms[slot] = swarm{}
				sh.free = append(sh.free, slot)
				p.Swarms++
			}
		}
		sh.mu.Unlock()
	}
	return p, nil
}

// Len returns the number of swarms and peers in the store.
func (s *Store) Len() (swarms, peers int) {
	for k := range s.shards {
		sh := &s.shards[k]
		sh.mu.Lock()
		swarms += len(sh.index)
		for _, slot := range sh.index {
			c := sh.swarms[slot].counts()
			peers += c.Complete + c.Incomplete
		}
		sh.mu.Unlock()
	}
	return swarms, peers
}
