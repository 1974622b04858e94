package unit3d

import (
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
)

// This file is the site as the tracker keeps it in memory: torrents with
// their peers, users, groups and the freeleech lists, loaded at start and
// kept current by the site's API calls, as UNIT3D-Announce keeps them.

// Torrent statuses, UNIT3D's values; anything else loads as statusUnknown.
const (
	statusPending   = 0
	statusApproved  = 1
	statusRejected  = 2
	statusPostponed = 3
	statusUnknown   = 4
)

var statusNames = [...]string{"Pending", "Approved", "Rejected", "Postponed", "Unknown"}

type peerKey struct {
	uid uint32
	id  bittorrent.PeerID
}

type peer struct {
	addr                       netip.AddrPort // the last announce's
	seeder, active, visible    bool
	connectable, sentCompleted bool
	updated                    time.Time
	uploaded, downloaded       uint64 // the client's last counters
	// other is a dual-stacked peer's address of the other family, from
	// its last announce over that family at otherAt (zero: none).
	other   netip.AddrPort
	otherAt time.Time
	// v6 is the family of the peer's first address: the statistics count
	// the peer in that family's figures, once, whatever it announces over.
	v6 bool
}

// lastFrom is when the peer last announced over the family of a (zero:
// never, or not since it announced over the other family while not
// dual-stacked).
func (q *peer) lastFrom(a netip.AddrPort) time.Time {
	switch {
	case q.addr.Addr().Is6() == a.Addr().Is6():
		return q.updated
	case q.other.IsValid():
		return q.otherAt
	}
	return time.Time{}
}

// setAddr records a as the peer's address, before q.updated moves on: a
// dual-stacked peer keeps its address of the other family; otherwise a
// replaces it, as in UNIT3D-Announce (one address per peer).
func (q *peer) setAddr(a netip.AddrPort, dualStacked bool) {
	switch {
	case !dualStacked:
		q.other, q.otherAt = netip.AddrPort{}, time.Time{}
	case q.addr.IsValid() && q.addr.Addr().Is6() != a.Addr().Is6():
		q.other, q.otherAt = q.addr, q.updated
	}
	q.addr = a
}

// addrFor is the address handed to an announcer of family v6: the peer's
// address of that family if it has one from the last maxAge, else its
// last address.
func (q *peer) addrFor(v6 bool, now time.Time, maxAge time.Duration) netip.AddrPort {
	if q.other.IsValid() && q.other.Addr().Is6() == v6 && now.Sub(q.otherAt) <= maxAge {
		return q.other
	}
	return q.addr
}

type torrent struct {
	id                           uint32
	status                       int16
	deleted                      bool
	seeders, leechers, completed uint32
	downFactor, upFactor         uint8
	peers                        map[peerKey]*peer
	// listed is the number of peers in the peer list: the swarm as the
	// statistics count it (seeders and leechers may be the site's figures).
	listed int
}

type user struct {
	id                           uint32
	group                        int32
	passkey                      string
	canDownload, donor, lifetime bool
	seeding, leeching            uint32
	seedList, leechList          *limiter
}

type group struct {
	id                   int32
	slug                 string
	slots                int64 // -1: unlimited
	immune               bool
	downFactor, upFactor uint8
}

type tokenKey struct{ uid, tid uint32 }

// state is the site in memory, under one mutex: every announce changes it.
type state struct {
	mu        sync.Mutex
	torrents  map[uint32]*torrent
	hashes    map[bittorrent.InfoHash]uint32
	users     map[uint32]*user
	passkeys  map[string]uint32
	groups    map[int32]*group
	apiAgents map[string]struct{} // peer_id prefixes the site's API sent
	dbAgents  map[string]struct{} // blacklist_clients.peer_id_prefix, as last read
	tokens    map[tokenKey]struct{}
	personal  map[uint32]struct{}
	featured  map[uint32]struct{}
	reachable map[netip.AddrPort]reach // connectivity check cache
}

type reach struct {
	ok bool
	at time.Time
}

func newState() *state {
	return &state{
		torrents:  map[uint32]*torrent{},
		hashes:    map[bittorrent.InfoHash]uint32{},
		users:     map[uint32]*user{},
		passkeys:  map[string]uint32{},
		groups:    map[int32]*group{},
		apiAgents: map[string]struct{}{},
		dbAgents:  map[string]struct{}{},
		tokens:    map[tokenKey]struct{}{},
		personal:  map[uint32]struct{}{},
		featured:  map[uint32]struct{}{},
		reachable: map[netip.AddrPort]reach{},
	}
}

// blacklisted reports whether id starts with a blacklisted prefix (an
// empty prefix matches every client, as in UNIT3D-Announce).
func (s *state) blacklisted(id bittorrent.PeerID) bool {
	for _, set := range [2]map[string]struct{}{s.apiAgents, s.dbAgents} {
		for p := range set {
			if len(p) <= len(id) && string(id[:len(p)]) == p {
				return true
			}
		}
	}
	return false
}

// limiter is a peer-list rate limit: one decaying counter per window.
type limiter struct{ rates []rate }

type rate struct {
	count, max, window float64
	updated            float64 // unix seconds
}

func newLimiter(limits []rateLimit, now time.Time) *limiter {
	l := &limiter{rates: make([]rate, len(limits))}
	for i, r := range limits {
		l.rates[i] = rate{max: r.max, window: r.window, updated: unixFloat(now)}
	}
	return l
}

// under reports whether every window's count, as of its last tick, is at
// most its max (UNIT3D-Announce does not decay it to now first).
func (l *limiter) under() bool {
	for _, r := range l.rates {
		if r.count > r.max {
			return false
		}
	}
	return true
}

// tick counts one list handed out (or asked for) at now.
func (l *limiter) tick(now time.Time) {
	t := unixFloat(now)
	for i := range l.rates {
		r := &l.rates[i]
		r.count = r.count*math.Exp(-(t-r.updated)/r.window) + 1
		r.updated = t
	}
}

func unixFloat(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// satAdd adds a signed delta to an unsigned counter, saturating at 0 and
// at the maximum, as UNIT3D-Announce's counters do.
func satAdd(n uint32, d int) uint32 {
	v := int64(n) + int64(d)
	return uint32(min(max(v, 0), math.MaxUint32))
}
