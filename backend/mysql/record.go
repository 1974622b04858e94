package mysql

import (
	"errors"
	"net/netip"
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
	counters
	left        uint64
	first, last int64 // unix seconds: session start, last announce
	announces   uint32
}

// torrentStats are the torrent figures Ocelot keeps in memory.
type torrentStats struct {
	balance  int64
	snatched int64
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
	a.Lock()
	defer a.Unlock()
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
		in.known, in.prev = true, p.counters
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
	p.counters = out.baseline
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
	pend := a.Pending
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

// Snatches is a torrent's snatch count as the site knows it (Snatched at
// load, plus the snatches recorded since), Ocelot's "downloaded" figure
// for announces and scrapes; ok is false for a torrent never loaded.
func (c *Conn) Snatches(torrentID uint32) (n int64, ok bool) {
	c.acc.Lock()
	defer c.acc.Unlock()
	s, ok := c.acc.stats[torrentID]
	return s.snatched, ok
}

// RecordSwarm records a torrent's counts when they change without an
// announce: Ocelot's reaper writes (id, 0, 0, 0, balance) for a torrent
// whose last peers timed out. Without it the database keeps the counts of
// the last announce.
func (c *Conn) RecordSwarm(torrentID uint32, seeders, leechers int) error {
	acc := &c.acc
	acc.Lock()
	defer acc.Unlock()
	if acc.closed {
		return ErrClosed
	}
	pend := acc.Pending
	if room(acc, pend.torrents, torrentID) {
		pend.torrents[torrentID] = torRow{seeders: seeders, leechers: leechers, snatched: pend.torrents[torrentID].snatched, balance: acc.stats[torrentID].balance}
	}
	return nil
}
