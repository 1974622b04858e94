// Package memory registers the "memory" tracker driver: swarms kept in this
// process, in a map sharded by info_hash so that announces to different
// torrents rarely wait on one another.
//
// Peers are stored as fixed-size, pointer-free records (see peerList) in
// one arena per shard, outside the Go heap (see arena), so a store of
// millions of peers costs tens of bytes each and gives the garbage
// collector nothing to scan or count.
//
// Parameters ("tracker.params"):
//
//	{"shards": 256}    number of independently locked shards (a power of two
//	                   up to 16384: each shard's arena is a memory mapping,
//	                   and Linux allows 65530 per process by default)
//	{"state_file": ""} a file that keeps the swarms across restarts (see
//	                   state.go): loaded by Open, written by Close and every
//	                   state_interval; "" (the default) keeps nothing
//	{"state_interval": "5m"}
//	                   how often the state file is written while the
//	                   tracker runs, so that a crash loses at most that
package memory

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/tracker"
	"github.com/golang/glog"
)

func init() { tracker.Register("memory", driver{}) }

type driver struct{}

// Params are the driver's configuration: Shards from "tracker.params", the
// rest from tracker.Options.
type Params struct {
	Shards int `json:"shards"`
	// StateFile keeps the swarms across restarts; "" keeps nothing.
	StateFile string `json:"state_file"`
	// StateInterval is how often Open's store writes StateFile.
	StateInterval   config.Duration `json:"state_interval"`
	tracker.Peering `json:"-"`
	// Private stores keep each peer's user id.
	Private bool `json:"-"`
	// Lifetime is tracker.Options.Lifetime: loading a state file drops
	// the peers silent for longer.
	Lifetime time.Duration `json:"-"`
}

// DefaultStateInterval is state_interval unless "tracker.params" says
// otherwise.
const DefaultStateInterval = 5 * time.Minute

// Open creates an empty store.
func (driver) Open(opts tracker.Options) (tracker.Pool, error) {
	p := Params{Shards: DefaultShards, StateInterval: config.Duration{Duration: DefaultStateInterval},
		Peering: opts.Peering, Private: opts.Private, Lifetime: opts.Lifetime}
	if err := config.DecodeParams("tracker.params", opts.Params, &p); err != nil {
		return nil, err
	}
	if p.Shards < 1 || p.Shards&(p.Shards-1) != 0 || p.Shards > maxShards {
		return nil, fmt.Errorf("tracker.params: shards: want a power of two from 1 to %d, got %d", maxShards, p.Shards)
	}
	if p.StateInterval.Duration <= 0 {
		return nil, fmt.Errorf("tracker.params: state_interval: must be positive, got %v", p.StateInterval)
	}
	if p.StateFile == "" {
		return New(p), nil
	}
	start := time.Now()
	s, err := Load(p, start)
	if err != nil {
		// Never fatal: a tracker that starts empty is what it was before
		// state files. A refused file is kept aside for the operator: the
		// next snapshot would replace it.
		kept := ""
		if errors.Is(err, errStateRefused) && os.Rename(p.StateFile, p.StateFile+".refused") == nil {
			kept = " (the file is kept as " + p.StateFile + ".refused)"
		}
		glog.Errorf("state_file: %v; starting empty%s", err, kept)
	} else if swarms, peers := s.Len(); swarms > 0 {
		glog.Infof("state_file: loaded %d swarms, %d peers from %s in %v", swarms, peers, p.StateFile, time.Since(start).Round(time.Millisecond))
	} else {
		glog.Infof("state_file: %s holds no swarm (yet): starting empty", p.StateFile)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.stopSnapshots = func() { cancel(); <-done }
	go s.runSnapshots(ctx, p.StateInterval.Duration, done)
	return s, nil
}

// DefaultShards is the number of shards unless "tracker.params" says
// otherwise. More shards do not make announces faster: a lock is held for
// about a microsecond, so even 32 cores announcing at once rarely meet on
// one of 256. They do cost memory: each shard's arena ends in a part-used
// page, and its swarm slab and index have their own growth room. At a
// million peers, 1024 shards kept 2-5 MB more resident than 256, for the
// same announce throughput.
const DefaultShards = 256

// maxShards keeps the arenas' mappings well below Linux's default limit
// of 65530 per process (vm.max_map_count), with room for the runtime's.
const maxShards = 1 << 14

// Store is an in-memory swarm store, and its own Pool. Its Conn is the
// store by another name, so that Get costs no allocation.
type Store struct {
	shards []shard
	epoch  time.Time
	p      Params
	conn   tracker.Conn // what Get hands out: the store, whose Close does nothing

	saving        sync.Mutex  // one Save at a time
	stopSnapshots func()      // stops the periodic saves; nil without them
	closed        atomic.Bool // Close was called: a second does nothing
	restored      tracker.Purged
}

// Restored counts what the store held when it was loaded, as
// tracker.Restorer's Restored does.
func (s *Store) Restored() tracker.Purged { return s.restored }

// New returns an empty store. Close gives back its memory.
func New(p Params) *Store {
	s := &Store{shards: make([]shard, p.Shards), epoch: time.Now(), p: p}
	s.conn = tracker.NopCloser(s)
	seed := maphash.MakeSeed()
	for k := range s.shards {
		s.shards[k].seed, s.shards[k].uid = seed, p.Private
	}
	// The arenas are outside the heap, where the collector cannot see
	// them: as os.File closes a file it finds unreachable, give them back
	// if the store is dropped without Close.
	runtime.AddCleanup(s, releaseArenas, s.shards)
	return s
}

// releaseArenas gives the shards' arenas back to the system. Only the
// cleanup of an unreachable store calls it, so nobody holds a lock.
func releaseArenas(shards []shard) {
	for k := range shards {
		shards[k].arena.release()
	}
}

// errClosed is the answer of a store's Conn after Close.
var errClosed = errors.New("tracker/memory: the store is closed")

// shard is one lock's worth of swarms. Swarms live in a slab indexed by
// info_hash (swarmIndex), so that a swarm can be changed in place; their
// peers are in the shard's arena. Nothing here holds a
// pointer the collector would follow into the peers.
type shard struct {
	mu     sync.Mutex
	index  swarmIndex
	swarms []swarm
	free   []int32   // slab slots of removed swarms, for reuse
	v6s    []v6Peers // IPv6 lists, which most swarms do not have
	freeV6 []int32
	arena  arena
	seed   maphash.Seed
	uid    bool // records carry a user id (private stores)
	closed bool // the store is closed: the shard holds nothing
	_      [32]byte
}

type swarm struct {
	hash       bittorrent.InfoHash
	v4         peerList
	v6         int32 // position+1 of the swarm's IPv6 list in v6s; 0: none
	downloaded uint32
	used       bool // false for a free slot of the slab
}

// v6Peers are a swarm's IPv6 peers, with the count of twins (records with
// flagTwin) among its leechers [0] and seeders [1]: dual-stacked peers
// already counted by their IPv4 record.
type v6Peers struct {
	peerList
	twins [2]int32
}

func (s *Store) shard(h *bittorrent.InfoHash) *shard {
	return &s.shards[binary.LittleEndian.Uint32(h[:4])&uint32(len(s.shards)-1)]
}

// now is the store's clock: whole seconds since the epoch.
func (s *Store) now(t time.Time) uint32 { return uint32(t.Sub(s.epoch) / time.Second) }

// view returns the working form of a list of the shard.
func (sh *shard) view(h *peerList, v6 bool) list {
	l := list{peerList: h, sh: sh, addrLen: ipv4Len}
	if v6 {
		l.addrLen = ipv6Len
	}
	l.stride = fixedLen + l.addrLen
	if sh.uid {
		l.hasUID = true
		l.stride += uidLen
	}
	return l
}

// list returns the swarm's list for the family, creating the IPv6 one if
// create is set; ok is false for a missing list otherwise.
func (sh *shard) list(w *swarm, v6, create bool) (l list, ok bool) {
	if !v6 {
		return sh.view(&w.v4, false), true
	}
	if w.v6 == 0 {
		if !create {
			return list{}, false
		}
		if n := len(sh.freeV6); n > 0 {
			w.v6 = sh.freeV6[n-1] + 1
			sh.freeV6 = sh.freeV6[:n-1]
		} else {
			sh.v6s = append(sh.v6s, v6Peers{})
			w.v6 = int32(len(sh.v6s))
		}
	}
	return sh.view(&sh.v6s[w.v6-1].peerList, true), true
}

// v6 returns the swarm's IPv6 peers, or nil.
func (sh *shard) v6(w *swarm) *v6Peers {
	if w.v6 == 0 {
		return nil
	}
	return &sh.v6s[w.v6-1]
}

// dropV6 gives back the swarm's IPv6 list, which is empty.
func (sh *shard) dropV6(w *swarm) {
	if w.v6 == 0 {
		return
	}
	l := sh.view(&sh.v6s[w.v6-1].peerList, true)
	l.release()
	sh.v6s[w.v6-1] = v6Peers{}
	sh.freeV6 = append(sh.freeV6, w.v6-1)
	w.v6 = 0
}

func (sh *shard) counts(w *swarm) tracker.Counts {
	c := tracker.Counts{Complete: int(w.v4.seeders), Incomplete: int(w.v4.n - w.v4.seeders), Downloaded: int(w.downloaded)}
	if v := sh.v6(w); v != nil {
		c.Complete += int(v.seeders - v.twins[1])
		c.Incomplete += int(v.n-v.seeders) - int(v.twins[0])
	}
	return c
}

func (sh *shard) empty(w *swarm) bool {
	v := sh.v6(w)
	return w.v4.n == 0 && (v == nil || v.n == 0)
}

// alloc returns n bytes of the arena: a kept hole they fit, or else the
// top, compacting first if the arena is full or holes waste too much of
// it. A compaction moves every block of the shard: a list's offsets must
// be read after any call that may allocate.
func (sh *shard) alloc(n int) uint32 {
	a := &sh.arena
	if off, ok := a.reuse(n); ok {
		return off
	}
	if !a.fits(n) || a.wantsCompaction() {
		sh.compact(n)
	}
	return a.take(n)
}

// compact copies every live block into a new mapping with room for twice
// what is live plus n more bytes, and releases the old one.
func (sh *shard) compact(n int) {
	var live int
	sh.eachList(func(l list) { live += l.footprint() })
	old := sh.arena.replace(max(2*(live+units(n)*unit), 64<<10))
	sh.eachList(func(l list) {
		if l.cap > 0 {
			off := sh.arena.take(int(l.cap) * l.stride)
			copy(sh.arena.bytesAt(off, l.len()*l.stride), old[int(l.off)*unit:])
			l.off = off
		}
		if l.ixBits > 0 {
			n := ixBytes(l.ixBits)
			off := sh.arena.take(n)
			copy(sh.arena.bytesAt(off, n), old[int(l.ix)*unit:])
			l.ix = off
		}
	})
	if old != nil {
		unmapBytes(old)
	}
}

// tidy gives memory back after a purge: an arena with nothing live in it
// is released, one with many holes compacted. (Otherwise only an
// allocation compacts, and a shard that lost its peers would keep its
// pages until it gains new ones.)
func (sh *shard) tidy() {
	switch a := &sh.arena; {
	case a.top == a.holes:
		a.release()
	case a.wantsCompaction():
		sh.compact(0)
	}
}

// eachList calls f with every list of the shard.
func (sh *shard) eachList(f func(list)) {
	for i := range sh.swarms {
		f(sh.view(&sh.swarms[i].v4, false))
	}
	for i := range sh.v6s {
		f(sh.view(&sh.v6s[i].peerList, true))
	}
}

// seederIndex is 1 for a seeder's position in l, 0 for a leecher's.
func seederIndex(l *list, i int) int {
	if i < int(l.seeders) {
		return 1
	}
	return 0
}

// twin marks or unmarks IPv6 record i as the twin of an IPv4 record,
// keeping the twin counts.
func (v *v6Peers) twin(l *list, i int, on bool) {
	if l.setFlag(i, flagTwin, on) != on {
		if on {
			v.twins[seederIndex(l, i)]++
		} else {
			v.twins[seederIndex(l, i)]--
		}
	}
}

// remove6 removes IPv6 record i, keeping the twin counts.
func (v *v6Peers) remove6(l *list, i int) {
	v.twin(l, i, false)
	l.remove(i)
}

// setSeeder6 moves IPv6 record i between seeders and leechers, keeping the
// twin counts, and returns its new position.
func (v *v6Peers) setSeeder6(l *list, i int, seeder bool) int {
	twin := l.flag(i, flagTwin)
	v.twin(l, i, false)
	i = l.setSeeder(i, seeder)
	v.twin(l, i, twin)
	return i
}

// ipv4Changed keeps the twin flag of a dual-stacked peer's IPv6 record in
// step with its IPv4 record, which was just added (present) or removed.
func (s *Store) ipv4Changed(sh *shard, w *swarm, id *bittorrent.PeerID, present bool) {
	if !s.p.DualStacked {
		return
	}
	if l, ok := sh.list(w, true, false); ok {
		if j := l.find(id); j >= 0 {
			sh.v6(w).twin(&l, j, present)
		}
	}
}

// Get returns a connection to the store, which allocates nothing: the
// store itself, whose Close leaves it open.
func (s *Store) Get() (tracker.Conn, error) { return s.conn, nil }

// Close writes the state file, if the store has one, and gives the
// store's memory back, at once rather than when the collector finds it
// unreachable; the Conns it handed out answer errClosed from then on.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.stopSnapshots != nil {
		s.stopSnapshots()
	}
	err := s.Save()
	for k := range s.shards {
		sh := &s.shards[k]
		sh.mu.Lock()
		sh.arena.release()
		sh.index, sh.swarms, sh.free, sh.v6s, sh.freeV6 = swarmIndex{}, nil, nil, nil, nil
		sh.closed = true
		sh.mu.Unlock()
	}
	return err
}

// Announce applies an announce, as tracker.Conn's Announce does.
func (s *Store) Announce(_ context.Context, a *tracker.Announce, u tracker.Update, resp *tracker.AnnounceResponse) error {
	now := s.now(a.When())
	v6 := a.Addr.Is6()
	sh := s.shard(&a.InfoHash)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return errClosed
	}

	stopped := u.Event == bittorrent.Stopped
	slot, ok := sh.lookup(&a.InfoHash)
	if !ok {
		if stopped {
			resp.Counts = tracker.Counts{}
			return nil
		}
		slot = sh.add(a.InfoHash)
		resp.Change |= bittorrent.SwarmAdded
	}
	w := &sh.swarms[slot]
	l, ok := sh.list(w, v6, !stopped)
	i := -1
	if ok {
		i = l.find(&a.PeerID)
	}
	if i >= 0 && i < int(l.seeders) {
		resp.Change |= bittorrent.SeederBefore
	}

	if stopped {
		if i >= 0 {
			if v6 {
				sh.v6(w).remove6(&l, i)
			} else {
				l.remove(i)
				s.ipv4Changed(sh, w, &a.PeerID, false)
			}
			resp.Change |= bittorrent.PeerRemoved
		}
		resp.Counts = sh.counts(w)
		if i >= 0 && u.PurgeEmpty && sh.empty(w) {
			sh.drop(slot)
			resp.Change |= bittorrent.SwarmRemoved
		}
		return nil
	}

	seeder := a.Seeder()
	switch {
	case i < 0:
		i = l.add(a, u.UserID, now)
		resp.Change |= bittorrent.PeerAdded
		if v6 {
			if v4 := sh.view(&w.v4, false); s.p.DualStacked && v4.find(&a.PeerID) >= 0 {
				sh.v6(w).twin(&l, i, true)
			}
		} else {
			s.ipv4Changed(sh, w, &a.PeerID, true)
		}
	case v6:
		l.set(i, a, u.UserID, now)
		i = sh.v6(w).setSeeder6(&l, i, seeder)
	default:
		l.set(i, a, u.UserID, now)
		i = l.setSeeder(i, seeder)
	}
	if seeder {
		resp.Change |= bittorrent.SeederAfter
	}
	if u.Event == bittorrent.Completed && !l.setFlag(i, flagSnatched, true) {
		w.downloaded++
		resp.Change |= bittorrent.Snatched
	}
	resp.Counts = sh.counts(w)

	if u.Want > 0 {
		p := picker{self: i, uid: u.UserID, seeder: seeder, want: u.Want, ids: a.PeerIDs}
		if bits := s.p.PreferredSubnet(v6); bits > 0 {
			p.subnet, p.bits = l.addr(i), bits
		}
		// The announcer's own family first: those are the peers it can reach.
		p.pick(resp, &l)
		if other, ok := sh.list(w, !v6, false); ok && p.n < u.Want && !s.p.RespectAF {
			p.self, p.subnet = -1, nil
			if s.p.DualStacked {
				// A dual-stacked peer was handed out by its own-family
				// address already, if at all.
				if v6 {
					p.twinsIn = &l
				} else {
					p.skipTwins = true
				}
			}
			p.pick(resp, &other)
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

	skipTwins bool  // skip records with flagTwin
	twinsIn   *list // skip records whose peer_id is in this list, if set
}

// pick appends peers of l to resp until p.want are handed out. It starts at
// a random record and walks on, so that every peer is handed out about as
// often; with a preferred subnet it walks twice, the subnet's peers first.
func (p *picker) pick(resp *tracker.AnnounceResponse, l *list) {
	lo, n := 0, l.len()
	if p.seeder {
		lo = int(l.seeders)
	}
	span := n - lo
	if span <= 0 {
		return
	}
	packed, ids := &resp.Peers4, &resp.IDs4
	if l.addrLen == ipv6Len {
		packed, ids = &resp.Peers6, &resp.IDs6
	}
	// The records once, not through the arena for each: this loop is most
	// of an announce's time in the store.
	recs, stride := l.records(), l.stride
	addrEnd, seenAt, uidAt := l.offPort(), l.offSeen(), l.offUID()
	// Room for every peer this list can give, so that the loop copies
	// fixed-size arrays into place (inline moves) where append would call
	// memmove for each peer.
	room := min(p.want-p.n, span)
	out := slices.Grow(*packed, room*(l.addrLen+portLen))
	idOut := *ids
	if p.ids {
		idOut = slices.Grow(idOut, room*idLen)
	}
	start := lo + rand.IntN(span)
	for pass := 0; pass < 2 && p.n < p.want; pass++ {
		for k, j := 0, start; k < span && p.n < p.want; k, j = k+1, j+1 {
			if j == n {
				j = lo
			}
			r := recs[j*stride : j*stride+stride]
			if p.subnet != nil && sameSubnet(r[offAddr:addrEnd], p.subnet, p.bits) != (pass == 0) {
				continue
			}
			if j == p.self || (p.uid != 0 && l.hasUID && binary.LittleEndian.Uint32(r[uidAt:]) == p.uid) ||
				(p.skipTwins && binary.LittleEndian.Uint32(r[seenAt:])&flagTwin != 0) ||
				(p.twinsIn != nil && p.twinsIn.find((*bittorrent.PeerID)(r[:idLen])) >= 0) {
				continue
			}
			// The record's address and port are the packed form already.
			k := len(out)
			if l.addrLen == ipv4Len {
				out = out[:k+bittorrent.PackedIPv4]
				*(*[bittorrent.PackedIPv4]byte)(out[k:]) = [bittorrent.PackedIPv4]byte(r[offAddr:])
			} else {
				out = out[:k+bittorrent.PackedIPv6]
				*(*[bittorrent.PackedIPv6]byte)(out[k:]) = [bittorrent.PackedIPv6]byte(r[offAddr:])
			}
			if p.ids {
				k := len(idOut)
				idOut = idOut[:k+idLen]
				*(*[idLen]byte)(idOut[k:]) = [idLen]byte(r)
			}
			p.n++
		}
		if p.subnet == nil {
			break
		}
	}
	*packed, *ids = out, idOut
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
func (sh *shard) add(h bittorrent.InfoHash) int32 {
	var slot int32
	if n := len(sh.free); n > 0 {
		slot = sh.free[n-1]
		sh.free = sh.free[:n-1]
	} else {
		if n := len(sh.swarms); n == cap(sh.swarms) {
			// By an eighth, not append's doubling: a shard's slab is
			// about 3% of the store's memory at 10 peers per swarm.
			sh.swarms = append(make([]swarm, 0, n+n/8+4), sh.swarms...)
		}
		slot = int32(len(sh.swarms))
		sh.swarms = append(sh.swarms, swarm{})
	}
	sh.swarms[slot] = swarm{hash: h, used: true}
	sh.indexSwarm(slot)
	return slot
}

// drop removes the swarm at slot, which has no peers.
func (sh *shard) drop(slot int32) {
	w := &sh.swarms[slot]
	w.used = false
	sh.unindexSwarm(slot)
	sh.dropV6(w)
	v4 := sh.view(&w.v4, false)
	v4.release()
	*w = swarm{}
	sh.free = append(sh.free, slot)
}

// Scrape appends the figures of each hash to out, as tracker.Conn's Scrape
// does.
func (s *Store) Scrape(_ context.Context, hashes []bittorrent.InfoHash, out []tracker.Scrape) ([]tracker.Scrape, error) {
	for i := range hashes {
		sc := tracker.Scrape{InfoHash: hashes[i]}
		sh := s.shard(&hashes[i])
		sh.mu.Lock()
		closed := sh.closed
		if slot, ok := sh.lookup(&hashes[i]); ok {
			sc.Counts = sh.counts(&sh.swarms[slot])
		}
		sh.mu.Unlock()
		if closed {
			return out, errClosed
		}
		out = append(out, sc)
	}
	return out, nil
}

// Purge runs an expiry pass, as tracker.Conn's Purge does. It holds one
// shard's lock at a time.
func (s *Store) Purge(ctx context.Context, before time.Time, purgeEmpty bool) (tracker.Purged, error) {
	var p tracker.Purged
	cutoff := s.now(before)
	if before.Before(s.epoch) {
		cutoff = 0
	}
	err := s.eachShard(ctx, func(sh *shard) {
		for slot := range sh.swarms {
			w := &sh.swarms[slot]
			if !w.used {
				continue
			}
			had := !sh.empty(w)
			v4 := sh.view(&w.v4, false)
			p.Add(s.purgeList(sh, w, &v4, 0, cutoff))
			if l, ok := sh.list(w, true, false); ok {
				p.Add(s.purgeList(sh, w, &l, 1, cutoff))
				if l.len() == 0 {
					sh.dropV6(w)
				}
			}
			if had && sh.empty(w) {
				p.Emptied = append(p.Emptied, w.hash)
			}
			if purgeEmpty && sh.empty(w) {
				sh.drop(int32(slot))
				p.Swarms++
			}
		}
		sh.tidy()
	})
	return p, err
}

// purgeList removes the records of l (family f) last seen before cutoff.
func (s *Store) purgeList(sh *shard, w *swarm, l *list, f int, cutoff uint32) (p tracker.Purged) {
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
			sh.v6(w).remove6(l, i)
		} else {
			id := bittorrent.PeerID(l.id(i))
			l.remove(i)
			s.ipv4Changed(sh, w, &id, false)
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
		swarms += sh.index.n
		for slot := range sh.swarms {
			c := sh.counts(&sh.swarms[slot])
			peers += c.Complete + c.Incomplete
		}
		sh.mu.Unlock()
	}
	return swarms, peers
}

// resident returns the bytes of peer records and indexes the store keeps
// in memory outside the Go heap (all of them where mmap is available).
func (s *Store) resident() int {
	n := 0
	for k := range s.shards {
		sh := &s.shards[k]
		sh.mu.Lock()
		n += sh.arena.resident()
		sh.mu.Unlock()
	}
	return n
}
