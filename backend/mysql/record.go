package mysql

import (
	"errors"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/bittorrent"
)

// peerKey identifies a peer as Ocelot does: per torrent, user and peer_id
// (xbt_files_users' primary key).
type peerKey struct {
	tid, uid uint32
	peerID   [20]byte
}

// peerState is a peer's last announce: the baseline its next one is
// credited against.
type peerState struct {
	up, down, corrupt, left uint64
	first, last             int64 // unix seconds: session start, last announce
	announces               uint32
}

// torrentStats are the torrent figures Ocelot keeps in memory.
type torrentStats struct {
	balance  int64
	snatched int64
}

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
	mu      sync.Mutex
	closed  bool
	peers   map[peerKey]*peerState
	stats   map[uint32]torrentStats
	pending *batch
	limit   int
	dropped *atomic.Uint64
}

func (a *accumulator) init(limit int, dropped *atomic.Uint64) {
	a.peers = map[peerKey]*peerState{}
	a.stats = map[uint32]torrentStats{}
	a.pending = newBatch()
	a.limit = limit
	a.dropped = dropped
}

func (a *accumulator) close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
}

// take hands the pending rows over to a flush.
func (a *accumulator) take() *batch {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.pending
	a.pending = newBatch()
	return b
}

// giveBack queues the rows of a flush that did not happen again, before
// those queued since.
func (a *accumulator) giveBack(b *batch) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b.absorb(a.pending)
	a.pending = b
}

func (a *accumulator) depth() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pending.rows()
}

// tableDepths are the queue lengths per table, for the stats report.
func (a *accumulator) tableDepths() (users, torrents, peers, snatches, tokens int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.pending
	return len(p.users), len(p.torrents), len(p.peers), len(p.snatches), len(p.tokens)
}

func (a *accumulator) addStats(loaded map[uint32]torrentStats) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, s := range loaded {
		if _, ok := a.stats[id]; !ok {
			a.stats[id] = s
		}
	}
}

// evict forgets peers whose last announce is before horizon (unix).
func (a *accumulator) evict(horizon int64) int {
	a.mu.Lock()
	defer a.mu.Unlock()
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
	a.mu.Lock()
	defer a.mu.Unlock()
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

// ErrNoIDs is returned by RecordAnnounce for an announce without a user or
// torrent id: the mysql backend serves private trackers only.
var ErrNoIDs = errors.New("mysql backend: announce without user and torrent ids (the mysql backend needs private_tracker: true)")

// RecordAnnounce credits one announce as Ocelot would, in memory: the
// deltas since the peer's previous announce (its counters become the new
// baseline on "started" or when they went down), freeleech and tokens,
// the torrent's counts, a snatch. Rows are written by the next flush.
func (c *Conn) RecordAnnounce(a backend.Announce) error {
	if a.UserID == 0 || a.TorrentID == 0 {
		return ErrNoIDs
	}
	now := a.Time.Unix()
	if a.Time.IsZero() {
		now = time.Now().Unix()
	}

	// What the site says of the torrent and user.
	free, tokened, protected := backend.Normal, false, false
	var userMul, torMul *multipliers // nil: 1.0
	c.site.mu.RLock()
	if t, ok := c.site.torrents[a.InfoHash]; ok && t.id == a.TorrentID {
		free = t.free
		_, tokened = t.tokened[a.UserID]
		torMul = t.mul
	}
	if u, ok := c.site.byID[a.UserID]; ok {
		protected = u.protected
		userMul = u.mul
	}
	c.site.mu.RUnlock()

	addr := a.Addr.Addr().Unmap()
	if protected {
		addr = netip.Addr{}
	}

	acc := &c.acc
	acc.mu.Lock()
	if acc.closed {
		acc.mu.Unlock()
		return ErrClosed
	}
	pend := acc.pending
	key := peerKey{tid: a.TorrentID, uid: a.UserID, peerID: a.PeerID}
	p, known := acc.peers[key]
	stats := acc.stats[a.TorrentID]
	var upspeed, downspeed int64
	usedToken := false
	switch {
	case !known || a.Event == bittorrent.Started:
		// A new peer (or session): its counters are the baseline, no credit.
		if !known {
			p = &peerState{}
			acc.peers[key] = p
		}
		*p = peerState{up: a.Uploaded, down: a.Downloaded, corrupt: a.Corrupt, first: now, announces: 1}
	case a.Uploaded < p.up || a.Downloaded < p.down:
		// The client's counters went back: a restart without "started".
		p.announces++
		p.up, p.down = a.Uploaded, a.Downloaded
	default:
		p.announces++
		dUp := delta(a.Uploaded, p.up)
		dDown := delta(a.Downloaded, p.down)
		if a.Corrupt != p.corrupt {
			stats.balance = addSat(stats.balance, -delta(a.Corrupt, p.corrupt))
			p.corrupt = a.Corrupt
		}
		p.up, p.down = a.Uploaded, a.Downloaded
		if dUp != 0 || dDown != 0 {
			stats.balance = addSat(stats.balance, dUp-dDown)
			if now > p.last {
				upspeed, downspeed = dUp/(now-p.last), dDown/(now-p.last)
			}
			creditUp, creditDown := dUp, dDown
			switch {
			case free == backend.Neutral:
				creditUp, creditDown = 0, 0
			case free == backend.Free || tokened:
				if tokened {
					usedToken = true
					k := tokenKey{uid: a.UserID, tid: a.TorrentID}
					if _, ok := pend.tokens[k]; ok || !acc.full(len(pend.tokens)) {
						pend.tokens[k] = addSat(pend.tokens[k], dDown)
					}
				}
				creditDown = 0
			}
			// The multipliers (param multipliers) apply to what the rules
			// left; the token's bookkeeping above stays raw, as Ocelot's.
			if userMul != nil || torMul != nil {
				uu, ud := userMul.factors()
				tu, td := torMul.factors()
				creditUp = scaleCredit(creditUp, uu*tu)
				creditDown = scaleCredit(creditDown, ud*td)
			}
			if creditUp != 0 || creditDown != 0 {
				r, ok := pend.users[a.UserID]
				if ok || !acc.full(len(pend.users)) {
					pend.users[a.UserID] = userRow{up: addSat(r.up, creditUp), down: addSat(r.down, creditDown)}
				}
			}
		}
	}
	p.left = a.Left
	p.last = now

	if _, ok := pend.peers[key]; ok || !acc.full(len(pend.peers)) {
		pend.peers[key] = peerRow{
			active:    a.Event != bittorrent.Stopped,
			up:        a.Uploaded,
			down:      a.Downloaded,
			upspeed:   upspeed,
			downspeed: downspeed,
			left:      a.Left,
			corrupt:   a.Corrupt,
			timespent: now - p.first,
			announced: p.announces,
			mtime:     now,
			addr:      addr,
			userAgent: a.UserAgent,
		}
	}
	if a.Event == bittorrent.Stopped {
		delete(acc.peers, key)
	}

	snatch := int64(0)
	if a.Snatched {
		snatch = 1
		stats.snatched++
		if !acc.full(len(pend.snatches)) {
			pend.snatches = append(pend.snatches, snatchRow{uid: a.UserID, tid: a.TorrentID, at: now, addr: addr})
		}
	}
	acc.stats[a.TorrentID] = stats
	tr, ok := pend.torrents[a.TorrentID]
	if ok || !acc.full(len(pend.torrents)) {
		pend.torrents[a.TorrentID] = torRow{
			seeders:  a.Seeders,
			leechers: a.Leechers,
			snatched: tr.snatched + snatch,
			balance:  stats.balance,
		}
	}
	acc.mu.Unlock()

	// A token used to complete a download is spent: the site is told, and
	// the torrent is no longer freeleech for that user.
	if a.Snatched && usedToken {
		hash, uid := a.InfoHash, a.UserID
		c.site.apply(func(s *siteState) {
			if t, ok := s.torrents[hash]; ok {
				delete(t.tokened, uid)
			}
		})
		if c.comm != nil {
			c.comm.expire(a.UserID, a.TorrentID)
		}
	}
	return nil
}

// delta is now - before as a signed number, saturated: counters are
// unsigned 64-bit but the database's columns are signed.
func delta(now, before uint64) int64 {
	if now >= before {
		return int64(min(now-before, math.MaxInt64))
	}
	return -int64(min(before-now, math.MaxInt64))
}

// addSat adds without wrapping around.
func addSat(a, b int64) int64 {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && s >= 0:
		return math.MinInt64
	}
	return s
}

// Snatches is a torrent's snatch count as the site knows it (Snatched at
// load, plus the snatches recorded since), Ocelot's "downloaded" figure
// for announces and scrapes; ok is false for a torrent never loaded.
func (c *Conn) Snatches(torrentID uint32) (n int64, ok bool) {
	c.acc.mu.Lock()
	defer c.acc.mu.Unlock()
	s, ok := c.acc.stats[torrentID]
	return s.snatched, ok
}

// RecordSwarm records a torrent's counts when they change without an
// announce: Ocelot's reaper writes (id, 0, 0, 0, balance) for a torrent
// whose last peers timed out. Without it the database keeps the counts of
// the last announce.
func (c *Conn) RecordSwarm(torrentID uint32, seeders, leechers int) error {
	acc := &c.acc
	acc.mu.Lock()
	defer acc.mu.Unlock()
	if acc.closed {
		return ErrClosed
	}
	pend := acc.pending
	r, ok := pend.torrents[torrentID]
	if ok || !acc.full(len(pend.torrents)) {
		pend.torrents[torrentID] = torRow{seeders: seeders, leechers: leechers, snatched: r.snatched, balance: acc.stats[torrentID].balance}
	}
	return nil
}
