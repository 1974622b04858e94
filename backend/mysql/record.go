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
	a.mu.Lock()
	defer a.mu.Unlock()
	a.peers[k] = &p
}

// ErrNoIDs is returned by RecordAnnounce for an announce without a user or
// torrent id: the mysql backend serves private trackers only.
var ErrNoIDs = errors.New("mysql backend: announce without user and torrent ids (the mysql backend needs private_tracker: true)")

// RecordAnnounce credits one announce as Ocelot would, in memory (see
// creditAnnounce for the rules), and queues its rows: the user's credit,
// token use, the torrent's counts, a snatch, the peer's xbt_files_users
// row. The next flush writes them.
func (c *Conn) RecordAnnounce(a backend.Announce) error {
	if a.UserID == 0 || a.TorrentID == 0 {
		return ErrNoIDs
	}
	now := a.Time.Unix()
	if a.Time.IsZero() {
		now = time.Now().Unix()
	}
	terms, protected := c.site.creditTerms(a.InfoHash, a.TorrentID, a.UserID)
	addr := a.Addr.Addr().Unmap()
	if protected {
		addr = netip.Addr{}
	}
	usedToken, err := c.acc.record(a, now, addr, terms)
	if err != nil {
		return err
	}
	if a.Snatched && usedToken {
		c.spendToken(a.InfoHash, a.UserID, a.TorrentID)
	}
	return nil
}

// record credits one announce and queues its rows: baseline lookup, the
// credit rules, queueing. The three are one step under the lock, so that
// two announces of one peer never credit the same bytes twice.
func (a *accumulator) record(ann backend.Announce, now int64, addr netip.Addr, terms creditTerms) (usedToken bool, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false, ErrClosed
	}
	key := peerKey{tid: ann.TorrentID, uid: ann.UserID, peerID: ann.PeerID}
	in, p := a.baseline(key, ann, terms)
	out := creditAnnounce(in)
	peer := a.advance(key, p, ann, out, now)
	peer.addr = addr
	a.queue(key, ann, out, peer)
	return out.token, nil
}

// baseline is the announce as the credit rules take it: with the peer's
// previous counters (p, nil for a peer not known) and the torrent's
// balance.
func (a *accumulator) baseline(key peerKey, ann backend.Announce, terms creditTerms) (creditIn, *peerState) {
	in := creditIn{
		now:     counters{up: ann.Uploaded, down: ann.Downloaded, corrupt: ann.Corrupt},
		event:   ann.Event,
		balance: a.stats[key.tid].balance,
		terms:   terms,
	}
	p, known := a.peers[key]
	if known {
		in.known, in.prev = true, counters{up: p.up, down: p.down, corrupt: p.corrupt}
	}
	return in, p
}

// advance moves the peer p (nil: new) on to the announce, as the credit
// rules decided, and returns its xbt_files_users row. A stopped peer is
// forgotten: its next announce starts a session.
func (a *accumulator) advance(key peerKey, p *peerState, ann backend.Announce, out creditOut, now int64) peerRow {
	if p == nil {
		p = &peerState{}
		a.peers[key] = p
	}
	var upspeed, downspeed int64
	if out.session {
		*p = peerState{first: now}
	} else if now > p.last {
		upspeed, downspeed = out.rawUp/(now-p.last), out.rawDown/(now-p.last)
	}
	p.up, p.down, p.corrupt = out.baseline.up, out.baseline.down, out.baseline.corrupt
	p.announces++
	p.left, p.last = ann.Left, now
	if ann.Event == bittorrent.Stopped {
		delete(a.peers, key)
	}
	return peerRow{
		active:    ann.Event != bittorrent.Stopped,
		up:        ann.Uploaded,
		down:      ann.Downloaded,
		upspeed:   upspeed,
		downspeed: downspeed,
		left:      ann.Left,
		corrupt:   ann.Corrupt,
		timespent: now - p.first,
		announced: p.announces,
		mtime:     now,
		userAgent: ann.UserAgent,
	}
}

// queue adds the announce's rows to the pending batch, each within the
// queue limit (room): the user's credit and the token's download add up,
// the peer's and the torrent's latest state wins, a snatch is appended.
// The torrent's balance and snatch count move on in memory either way.
func (a *accumulator) queue(key peerKey, ann backend.Announce, out creditOut, peer peerRow) {
	pend := a.pending
	if tk := (tokenKey{uid: key.uid, tid: key.tid}); out.token && room(a, pend.tokens, tk) {
		pend.tokens[tk] = addSat(pend.tokens[tk], out.tokenDown)
	}
	if (out.up != 0 || out.down != 0) && room(a, pend.users, key.uid) {
		r := pend.users[key.uid]
		pend.users[key.uid] = userRow{up: addSat(r.up, out.up), down: addSat(r.down, out.down)}
	}
	if room(a, pend.peers, key) {
		pend.peers[key] = peer
	}
	stats := a.stats[key.tid]
	stats.balance = out.balance
	snatch := int64(0)
	if ann.Snatched {
		snatch = 1
		stats.snatched++
		if !a.full(len(pend.snatches)) {
			pend.snatches = append(pend.snatches, snatchRow{uid: key.uid, tid: key.tid, at: peer.mtime, addr: peer.addr})
		}
	}
	a.stats[key.tid] = stats
	if room(a, pend.torrents, key.tid) {
		pend.torrents[key.tid] = torRow{
			seeders:  ann.Seeders,
			leechers: ann.Leechers,
			snatched: pend.torrents[key.tid].snatched + snatch,
			balance:  stats.balance,
		}
	}
}

// spendToken: a token used to complete a download is spent. The site is
// told, and the torrent is no longer freeleech for that user.
func (c *Conn) spendToken(hash bittorrent.InfoHash, uid, tid uint32) {
	c.site.apply(func(s *siteState) {
		if t, ok := s.torrents[hash]; ok {
			delete(t.tokened, uid)
		}
	})
	if c.comm != nil {
		c.comm.expire(uid, tid)
	}
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
	if room(acc, pend.torrents, torrentID) {
		pend.torrents[torrentID] = torRow{seeders: seeders, leechers: leechers, snatched: pend.torrents[torrentID].snatched, balance: acc.stats[torrentID].balance}
	}
	return nil
}
