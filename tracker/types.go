package tracker

import (
	"net/netip"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
)

// Errors returned to clients. Every one of them leaves all state unchanged.
var (
	ErrNoInfoHash        = bittorrent.ClientError("no info_hash given")
	ErrTooManyInfoHashes = bittorrent.ClientError("too many info_hash values in one scrape")
	ErrNoAddress         = bittorrent.ClientError("no usable peer address")
)

// Announce is one announce, independent of the transport it came over.
type Announce struct {
	InfoHash bittorrent.InfoHash
	PeerID   bittorrent.PeerID
	// Addr is the peer's address: an IPv4 address (never IPv4-mapped IPv6)
	// or an IPv6 address.
	Addr       netip.Addr
	Port       uint16
	Uploaded   uint64
	Downloaded uint64
	Left       uint64
	Event      bittorrent.Event
	// NumWant is the number of peers asked for; negative means "not given".
	NumWant int
	// PeerIDs asks for the peers' ids too (AnnounceResponse.IDs4, IDs6),
	// for answers that carry them.
	PeerIDs bool
	// Corrupt is the bytes that failed the hash check (libtorrent, Transmission).
	Corrupt uint64

	// Passkey is the passkey from the URL, in private mode.
	Passkey string
	// UserAgent is the client's own name for itself, for the backend.
	UserAgent string
	// Time is when the announce arrived, as the frontend's clock read it
	// once for the whole request; the zero Time means now.
	Time time.Time
}

// When returns a.Time, or the current time if it is not set.
func (a *Announce) When() time.Time {
	if a.Time.IsZero() {
		return time.Now()
	}
	return a.Time
}

// Seeder reports whether the announcer has the whole torrent.
func (a *Announce) Seeder() bool { return a.Left == 0 }

// Update is what the tracker asks a store to do with one announce, as it
// decided from its configuration and the site's rules. It travels beside
// the Announce, so that the caller's Announce is never changed.
type Update struct {
	// Event is the event to apply: the announce's own, or Stopped for a
	// peer the tracker keeps out of the swarm (a user who may not leech).
	Event bittorrent.Event
	// Want is the most peers to hand out.
	Want int
	// UserID is the announcer's user in a private tracker, 0 in a public
	// one (see Options.Private).
	UserID uint32
	// PurgeEmpty removes a swarm once a stopped announce takes its last
	// peer ("purge_inactive_torrents"), as Purge's purgeEmpty does for
	// the swarms expiry empties.
	PurgeEmpty bool
}

// Peer is a peer as handed to an announcer.
type Peer struct {
	ID   bittorrent.PeerID
	Addr netip.AddrPort
}

// Counts are a swarm's public figures.
type Counts struct {
	Complete   int // seeders
	Incomplete int // leechers
	Downloaded int // completed downloads since the swarm was created
}

// AnnounceResponse is the tracker's answer to an announce.
//
// Peers are handed over packed, in the compact form of BEP 23 and BEP 7
// (address then port, big-endian), which is how stores keep them and how
// nearly every client wants them: a store copies bytes, and a frontend
// writes them out as they are.
type AnnounceResponse struct {
	Interval    time.Duration
	MinInterval time.Duration
	Counts
	// Peers4 holds IPv4 peers, 6 bytes each; Peers6 IPv6 peers, 18 bytes each.
	Peers4, Peers6 []byte
	// IDs4 and IDs6 hold the peer_ids of Peers4 and Peers6, 20 bytes each,
	// in the same order; only filled when the announce asked for PeerIDs.
	IDs4, IDs6 []byte
	// Change says what the announce did, for statistics.
	Change bittorrent.Change
}

// NumPeers returns the number of peers in the response.
func (r *AnnounceResponse) NumPeers() int {
	return len(r.Peers4)/bittorrent.PackedIPv4 + len(r.Peers6)/bittorrent.PackedIPv6
}

// Reset empties the response, keeping its buffers for reuse.
func (r *AnnounceResponse) Reset() {
	*r = AnnounceResponse{Peers4: r.Peers4[:0], Peers6: r.Peers6[:0], IDs4: r.IDs4[:0], IDs6: r.IDs6[:0]}
}

// PeerList unpacks the response's peers, IPv4 first. Meant for tests and
// tools: it allocates.
func (r *AnnounceResponse) PeerList() []Peer {
	var out []Peer
	unpack := func(packed, ids []byte, size int) {
		for i := 0; i+size <= len(packed); i += size {
			e := packed[i : i+size]
			port := uint16(e[size-2])<<8 | uint16(e[size-1])
			var p Peer
			if size == bittorrent.PackedIPv4 {
				p.Addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte(e)), port)
			} else {
				p.Addr = netip.AddrPortFrom(netip.AddrFrom16([16]byte(e)), port)
			}
			if n := i / size * bittorrent.PeerIDSize; n+bittorrent.PeerIDSize <= len(ids) {
				p.ID = bittorrent.PeerID(ids[n : n+bittorrent.PeerIDSize])
			}
			out = append(out, p)
		}
	}
	unpack(r.Peers4, r.IDs4, bittorrent.PackedIPv4)
	unpack(r.Peers6, r.IDs6, bittorrent.PackedIPv6)
	return out
}

// Scrape holds one torrent's figures in a scrape answer.
type Scrape struct {
	InfoHash bittorrent.InfoHash
	Counts
}

// Purged counts what one expiry pass removed.
type Purged struct {
	Swarms int
	// Peers and Seeders are indexed by family: 0 for IPv4, 1 for IPv6.
	// Seeders is the part of Peers that were seeders.
	Peers   [2]int
	Seeders [2]int
	// Emptied lists the swarms the pass left without peers, kept or not.
	Emptied []bittorrent.InfoHash
}

// Add adds q's counts to p.
func (p *Purged) Add(q Purged) {
	p.Swarms += q.Swarms
	p.Emptied = append(p.Emptied, q.Emptied...)
	for f := range p.Peers {
		p.Peers[f] += q.Peers[f]
		p.Seeders[f] += q.Seeders[f]
	}
}
