package unit3d

import (
	"math"
	"net/netip"
	"time"

	"github.com/chihaya/chihaya/backend/sqlbatch"
	"github.com/chihaya/chihaya/bittorrent"
)

// This file is the write queue: UNIT3D-Announce's six queues as one batch,
// rows merged per key by each table's rule, handed to a flush and given
// back (merged again) when it fails.

type (
	peerRowKey struct {
		uid, tid uint32
		id       bittorrent.PeerID
	}
	peerRow struct {
		addr                              netip.AddrPort
		agent                             string
		uploaded, downloaded, left        uint64
		active, seeder, visible, connects bool
		created, updated                  time.Time
	}
	histKey struct{ uid, tid uint32 }
	histRow struct {
		agent                              string
		uploaded, actualUp, clientUp       uint64
		downloaded, actualDown, clientDown uint64
		seeder, active, immune             bool
		created, updated                   time.Time
		completed                          time.Time // zero: NULL
	}
	torRow struct {
		seeders, leechers, completed, balance int64
	}
	userRow struct{ uploaded, downloaded uint64 }
	uihKey  struct {
		hash bittorrent.InfoHash
		uid  uint32
	}
	uihRow struct{ created, updated time.Time }
	annRow struct {
		uid, tid                            uint32
		uploaded, downloaded, left, corrupt uint64
		peerID                              bittorrent.PeerID
		port                                uint16
		numwant                             int
		created                             time.Time
		event, key                          string
	}
)

// batch is the rows queued for every table.
type batch struct {
	peers     map[peerRowKey]peerRow
	history   map[histKey]histRow
	torrents  map[uint32]torRow
	users     map[uint32]userRow
	uih       map[uihKey]uihRow
	announces []annRow
}

func newBatch() *batch {
	return &batch{
		peers:    map[peerRowKey]peerRow{},
		history:  map[histKey]histRow{},
		torrents: map[uint32]torRow{},
		users:    map[uint32]userRow{},
		uih:      map[uihKey]uihRow{},
	}
}

// Rows is the number of rows in b.
func (b *batch) Rows() int {
	return len(b.peers) + len(b.history) + len(b.torrents) + len(b.users) + len(b.uih) + len(b.announces)
}

// Absorb merges newer's rows into b, the older, by each table's rule.
func (b *batch) Absorb(newer *batch) {
	for k, r := range newer.peers {
		b.addPeer(k, r)
	}
	for k, r := range newer.history {
		b.addHistory(k, r)
	}
	for k, r := range newer.torrents {
		b.addTorrent(k, r)
	}
	for k, r := range newer.users {
		b.addUser(k, r)
	}
	for k, r := range newer.uih {
		b.addUIH(k, r)
	}
	b.announces = append(b.announces, newer.announces...)
}

// addPeer: the newer state wins (by updated_at), created_at is the earlier.
func (b *batch) addPeer(k peerRowKey, r peerRow) {
	if o, ok := b.peers[k]; ok {
		if r.updated.Before(o.updated) {
			r, o = o, r
		}
		if o.created.Before(r.created) {
			r.created = o.created
		}
	}
	b.peers[k] = r
}

// addHistory: the latest agent, flags and client counters; deltas add up;
// the first completion time is kept (UNIT3D-Announce keeps the last,
// losing a completion followed by another announce within one flush).
func (b *batch) addHistory(k histKey, r histRow) {
	if o, ok := b.history[k]; ok {
		r.uploaded = addU(o.uploaded, r.uploaded)
		r.actualUp = addU(o.actualUp, r.actualUp)
		r.downloaded = addU(o.downloaded, r.downloaded)
		r.actualDown = addU(o.actualDown, r.actualDown)
		r.immune = o.immune // the first queued value, as UNIT3D-Announce
		if !o.completed.IsZero() {
			r.completed = o.completed
		}
		if o.created.Before(r.created) {
			r.created = o.created
		}
		if o.updated.After(r.updated) {
			r.updated = o.updated
		}
	}
	b.history[k] = r
}

func (b *batch) addTorrent(k uint32, r torRow) {
	o := b.torrents[k]
	b.torrents[k] = torRow{
		seeders:   sqlbatch.AddSat(o.seeders, r.seeders),
		leechers:  sqlbatch.AddSat(o.leechers, r.leechers),
		completed: sqlbatch.AddSat(o.completed, r.completed),
		balance:   sqlbatch.AddSat(o.balance, r.balance),
	}
}

func (b *batch) addUser(k uint32, r userRow) {
	o := b.users[k]
	b.users[k] = userRow{uploaded: addU(o.uploaded, r.uploaded), downloaded: addU(o.downloaded, r.downloaded)}
}

func (b *batch) addUIH(k uihKey, r uihRow) {
	if o, ok := b.uih[k]; ok {
		if o.created.Before(r.created) {
			r.created = o.created
		}
		if o.updated.After(r.updated) {
			r.updated = o.updated
		}
	}
	b.uih[k] = r
}

// addU adds without wrapping around.
func addU(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}
