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

// Params are the driver's configuration: Shards from "tracker.params", the
// rest from tracker.Options.
type Params struct {
	Shards          int `json:"shards"`
	tracker.Peering `json:"-"`
	// Private stores keep each peer's user id.
	Private bool `json:"-"`
}

// Open creates an empty store.
func (driver) Open(opts tracker.Options) (tracker.Pool, error) {
	p := Params{Shards: 1024, Peering: opts.Peering, Private: opts.Private}
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
	shards []shard
	seed   maphash.Seed
	epoch  time.Time
	p      Params
}

// New returns an empty store.
func New(p Params) *Store {
	return &Store{shards: make([]shard, p.Shards), seed: maphash.MakeSeed(), epoch: time.Now(), p: p}
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
	v6         *v6Peers // most swarms have no IPv6 peer
	downloaded uint32
}

// v6Peers are a swarm's IPv6 peers, with the count of twins (records with
// flagTwin) among its leechers [0] and seeders [1]: dual-stacked peers
// already counted by their IPv4 record.
type v6Peers struct {
	peerList
	twins [2]int32
}

func (s *Store) shard(h *tracker.InfoHash) *shard {
	return &s.shards[binary.LittleEndian.Uint32(h[:4])&uint32(len(s.shards)-1)]
}

// now is the store's clock: whole seconds since the epoch.
func (s *Store) now(t time.Time) uint32 { return uint32(t.Sub(s.epoch) / time.Second) }

// list returns the swarm's list for the family, creating the IPv6 one if
// create is set; it returns nil for a missing list otherwise.
func (w *swarm) list(v6, create, private bool) *peerList {
	if !v6 {
		return &w.v4
	}
	if w.v6 == nil {
		if !create {
			return nil
		}
		w.v6 = &v6Peers{peerList: newPeerList(true, private)}
	}
	return &w.v6.peerList
}

func (w *swarm) counts() tracker.Counts {
	c := tracker.Counts{Complete: int(w.v4.seeders), Incomplete: w.v4.leechers(), Downloaded: int(w.downloaded)}
	if w.v6 != nil {
		c.Complete += int(w.v6.seeders - w.v6.twins[1])
		c.Incomplete += w.v6.leechers() - int(w.v6.twins[0])
	}
	return c
}

func (w *swarm) empty() bool {
	return w.v4.len() == 0 && (w.v6 == nil || w.v6.len() == 0)
}

// seederIndex is 1 for a seeder's position in l, 0 for a leecher's.
func seederIndex(l *peerList, i int) int {
	if i < int(l.seeders) {
		return 1
	}
	return 0
}

// twin marks or unmarks IPv6 record i as the twin of an IPv4 record,
// keeping the twin counts.
func (v *v6Peers) twin(i int, on bool) {
	if v.setFlag(i, flagTwin, on) != on {
		if on {
			v.twins[seederIndex(&v.peerList, i)]++
		} else {
			v.twins[seederIndex(&v.peerList, i)]--
		}
	}
}

// remove6 removes IPv6 record i, keeping the twin counts.
func (v *v6Peers) remove6(i int, seed maphash.Seed) {
	v.twin(i, false)
	v.remove(i, seed)
}

// setSeeder6 moves IPv6 record i between seeders and leechers, keeping the
// twin counts, and returns its new position.
func (v *v6Peers) setSeeder6(i int, seeder bool, seed maphash.Seed) int {
	twin := v.flag(i, flagTwin)
	v.twin(i, false)
	i = v.setSeeder(i, seeder, seed)
	v.twin(i, twin)
	return i
}

// ipv4Changed keeps the twin flag of a dual-stacked peer's IPv6 record in
// step with its IPv4 record, which was just added (present) or removed.
func (s *Store) ipv4Changed(w *swarm, id *tracker.PeerID, present bool) {
	if !s.p.DualStacked || w.v6 == nil {
		return
	}
	if j := w.v6.find(id, s.seed); j >= 0 {
		w.v6.twin(j, present)
	}
}

// Get returns the store itself.
func (s *Store) Get() (tracker.Conn, error) { return s, nil }

// Close does nothing: a Conn of this store holds no resources.
func (s *Store) Close() error { return nil }

// Announce implements tracker.Conn.
func (s *Store) Announce(_ context.Context, a *tracker.Announce, want int, resp *tracker.AnnounceResponse) error {
	now := s.now(a.When())
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
		slot = sh.add(a.InfoHash, s.p.Private)
		resp.Change |= tracker.SwarmAdded
	}
	w := &sh.swarms[slot]
	l := w.list(v6, a.Event != tracker.Stopped, s.p.Private)
	i := -1
	if l != nil {
		i = l.find(&a.PeerID, s.seed)
	}
	if i >= 0 && i < int(l.seeders) {
		resp.Change |= tracker.SeederBefore
	}

	if a.Event == tracker.Stopped {
		if i >= 0 {
			if v6 {
				w.v6.remove6(i, s.seed)
			} else {
				l.remove(i, s.seed)
				s.ipv4Changed(w, &a.PeerID, false)
			}
			resp.Change |= tracker.PeerRemoved
		}
		resp.Counts = w.counts()
		return nil
	}

	seeder := a.Seeder()
	switch {
	case i < 0:
		i = l.add(a, now, s.seed)
		resp.Change |= tracker.PeerAdded
		if v6 {
			if s.p.DualStacked && w.v4.find(&a.PeerID, s.seed) >= 0 {
				w.v6.twin(i, true)
			}
		} else {
			s.ipv4Changed(w, &a.PeerID, true)
		}
	case v6:
		l.set(i, a, now)
		i = w.v6.setSeeder6(i, seeder, s.seed)
	default:
		l.set(i, a, now)
		i = l.setSeeder(i, seeder, s.seed)
	}
	if seeder {
		resp.Change |= tracker.SeederAfter
	}
	if a.Event == tracker.Completed && !l.setFlag(i, flagSnatched, true) {
		w.downloaded++
		resp.Change |= tracker.Snatched
	}
	resp.Counts = w.counts()

	if want > 0 {
		p := picker{self: i, uid: a.UserID, seeder: seeder, want: want, ids: a.PeerIDs}
		if bits := s.p.PreferredSubnet(v6); bits > 0 {
			p.subnet, p.bits = l.addr(i), bits
		}
		// The announcer's own family first: those are the peers it can reach.
		p.pick(resp, l)
		if other := w.list(!v6, false, false); other != nil && p.n < want && !s.p.RespectAF {
			p.self, p.subnet = -1, nil
			if s.p.DualStacked {
				// A dual-stacked peer was handed out by its own-family
				// address already, if at all.
				if v6 {
					p.twinsIn, p.seed = l, s.seed
				} else {
					p.skipTwins = true
				}
			}
			p.pick(resp, other)
		}
	}
	return nil
}

// picker chooses the peers an announcer gets from one list.
type picker struct {
	self   int    // the announcer's own record, or -1
	uid    uint32 // the announcer's user: its other peers are skipped (private stores)
	seeder bool   // a seeder gets leechers only
	want   int
	ids    bool // hand out peer_ids too
	n      int  // peers handed out so far

	// Preferred subnet: peers whose address shares the first bits bits with
	// subnet come first.
	subnet []byte
	bits   int

	skipTwins bool      // skip records with flagTwin
	twinsIn   *peerList // skip records whose peer_id is in this list
	seed      maphash.Seed
}

// pick appends peers of l to resp until p.want are handed out. It starts at
// a random record and walks on, so that every peer is handed out about as
// often; with a preferred subnet it walks twice, the subnet's peers first.
func (p *picker) pick(resp *tracker.AnnounceResponse, l *peerList) {
	lo, n := 0, l.len()
	if p.seeder {
		lo = int(l.seeders)
	}
	span := n - lo
	if span <= 0 {
		return
	}
	packed, ids := &resp.Peers4, &resp.IDs4
	if l.addrLen == 16 {
		packed, ids = &resp.Peers6, &resp.IDs6
	}
	start := rand.IntN(span)
	for pass := 0; pass < 2 && p.n < p.want; pass++ {
		for k := 0; k < span && p.n < p.want; k++ {
			j := lo + (start+k)%span
			if p.subnet != nil && sameSubnet(l.addr(j), p.subnet, p.bits) != (pass == 0) {
				continue
			}
			if j == p.self || (p.uid != 0 && l.uid(j) == p.uid) ||
				(p.skipTwins && l.flag(j, flagTwin)) ||
				(p.twinsIn != nil && p.twinsIn.find((*tracker.PeerID)(l.id(j)), p.seed) >= 0) {
				continue
			}
			// The record's address and port are the packed form already.
			*packed = append(*packed, l.compact(j)...)
			if p.ids {
				*ids = append(*ids, l.id(j)...)
			}
			p.n++
		}
		if p.subnet == nil {
			break
		}
	}
}

// sameSubnet reports whether addresses a and b share their first bits bits.
func sameSubnet(a, b []byte, bits int) bool {
	full := bits / 8
	if string(a[:full]) != string(b[:full]) {
		return false
	}
	if rest := bits % 8; rest != 0 {
		mask := byte(0xff << (8 - rest))
		return a[full]&mask == b[full]&mask
	}
	return true
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
			had := !w.empty()
			p.Add(s.purgeList(w, &w.v4, 0, cutoff))
			if w.v6 != nil {
				p.Add(s.purgeList(w, &w.v6.peerList, 1, cutoff))
				if w.v6.len() == 0 {
					w.v6 = nil
				}
			}
			if had && w.empty() {
				p.Emptied = append(p.Emptied, h)
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

// purgeList removes the records of l (family f) last seen before cutoff.
func (s *Store) purgeList(w *swarm, l *peerList, f int, cutoff uint32) (p tracker.Purged) {
	// Backwards, so that what remove moves into place was checked.
	for i := l.len() - 1; i >= 0; i-- {
		if l.seen(i) >= cutoff {
			continue
		}
		p.Peers[f]++
		if i < int(l.seeders) {
			p.Seeders[f]++
		}
		if f == 1 {
			w.v6.remove6(i, s.seed)
		} else {
			id := tracker.PeerID(l.id(i))
			l.remove(i, s.seed)
			s.ipv4Changed(w, &id, false)
		}
	}
	l.shrink()
	return p
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
