package mysql

import (
	"net/netip"
	"sync/atomic"

	"github.com/chihaya/chihaya/backend/sqlbatch"
)

// This file is the in-memory queue between announces and flushes: rows
// aggregated per key, bounded by queue_limit, handed to a flush and given
// back when it fails; and the peers' baselines, under the same lock.

// Rows queued for the database, aggregated per key: a user's deltas add
// up, a torrent's and a peer's latest state wins.
type (
	userRow struct{ up, down int64 }
	torRow  struct {
		seeders, leechers int
		snatched          int64 // increments
		balance           int64
	}
	tokenKey struct{ uid, tid uint32 }
	peerRow  struct {
		active             bool
		up, down           uint64
		upspeed, downspeed int64
		left, corrupt      uint64
		timespent          int64
		announced          uint32
		mtime              int64
		addr               netip.Addr // formatted at flush time; invalid: ""
		userAgent          string     // raw; cleaned at flush time
	}
	snatchRow struct {
		uid, tid uint32
		at       int64
		addr     netip.Addr
	}
)

// batch is a set of queued rows.
type batch struct {
	users    map[uint32]userRow
	torrents map[uint32]torRow
	tokens   map[tokenKey]int64
	peers    map[peerKey]peerRow
	snatches []snatchRow
}

func newBatch() *batch {
	return &batch{
		users:    map[uint32]userRow{},
		torrents: map[uint32]torRow{},
		tokens:   map[tokenKey]int64{},
		peers:    map[peerKey]peerRow{},
	}
}

func (b *batch) rows() int {
	return len(b.users) + len(b.torrents) + len(b.tokens) + len(b.peers) + len(b.snatches)
}

// absorb merges newer rows into b (b being the older): deltas add up,
// states are replaced, snatches are appended.
func (b *batch) absorb(newer *batch) {
	for k, r := range newer.users {
		o := b.users[k]
		b.users[k] = userRow{up: addSat(o.up, r.up), down: addSat(o.down, r.down)}
	}
	for k, r := range newer.torrents {
		r.snatched = addSat(r.snatched, b.torrents[k].snatched)
		b.torrents[k] = r
	}
	for k, d := range newer.tokens {
		b.tokens[k] = addSat(b.tokens[k], d)
	}
	for k, r := range newer.peers {
		b.peers[k] = r
	}
	b.snatches = append(b.snatches, newer.snatches...)
}

// accumulator turns announces into rows, under one mutex held for a few
// map operations: never across any I/O.
type accumulator struct {
	sqlbatch.Queue[*batch] // its mutex guards the fields below too
	closed                 bool
	peers                  map[peerKey]*peerState
	stats                  map[uint32]torrentStats
	limit                  int
	dropped                *atomic.Uint64
}

func (a *accumulator) init(limit int, dropped *atomic.Uint64) {
	a.peers = map[peerKey]*peerState{}
	a.stats = map[uint32]torrentStats{}
	a.Init(newBatch)
	a.limit = limit
	a.dropped = dropped
}

func (a *accumulator) close() {
	a.Lock()
	a.closed = true
	a.Unlock()
}

// tableDepths are the queue lengths per table, for the stats report.
func (a *accumulator) tableDepths() (users, torrents, peers, snatches, tokens int) {
	a.Lock()
	defer a.Unlock()
	p := a.Pending
	return len(p.users), len(p.torrents), len(p.peers), len(p.snatches), len(p.tokens)
}

func (a *accumulator) addStats(loaded map[uint32]torrentStats) {
	a.Lock()
	defer a.Unlock()
	for id, s := range loaded {
		if _, ok := a.stats[id]; !ok {
			a.stats[id] = s
		}
	}
}

// evict forgets peers whose last announce is before horizon (unix).
func (a *accumulator) evict(horizon int64) int {
	a.Lock()
	defer a.Unlock()
	n := 0
	for k, p := range a.peers {
		if p.last < horizon {
			delete(a.peers, k)
			n++
		}
	}
	return n
}

// peerCounts counts the peers that announced since horizon (unix), per
// user (uid 0: everybody).
func (a *accumulator) peerCounts(uid uint32, horizon int64) (leeching, seeding int) {
	a.Lock()
	defer a.Unlock()
	for k, p := range a.peers {
		if (uid != 0 && k.uid != uid) || p.last < horizon {
			continue
		}
		if p.left > 0 {
			leeching++
		} else {
			seeding++
		}
	}
	return leeching, seeding
}

// full reports whether a table holding n rows may take no new key; the
// row is then dropped and counted.
func (a *accumulator) full(n int) bool {
	if n < a.limit {
		return false
	}
	a.dropped.Add(1)
	return true
}

// room reports whether table m may take a row for key k: it has one for k
// already (rows aggregate per key), or it is below the queue limit.
func room[K comparable, V any](a *accumulator, m map[K]V, k K) bool {
	if _, ok := m[k]; ok {
		return true
	}
	return !a.full(len(m))
}

// restore sets a peer's baseline to what was last flushed of it (loaded at
// start from xbt_files_users), so that its next announce is credited
// against it.
func (a *accumulator) restore(k peerKey, p peerState) {
	a.Lock()
	defer a.Unlock()
	a.peers[k] = &p
}
