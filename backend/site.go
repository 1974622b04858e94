package backend

import (
	"context"
	"net/url"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
)

// Site is what a private tracker must know of its site: who may announce,
// which torrents exist, which clients are allowed. A backend that can serve
// private mode implements it besides Conn; the tracker asks it on every
// private announce, so its methods must answer from memory, never from the
// database.
type Site interface {
	// User returns the enabled user with passkey.
	User(passkey string) (User, bool)
	// Torrent returns the registered torrent with the info_hash. For one
	// that is not registered, reason is why it went, if the site said so
	// recently (Ocelot's "Unregistered torrent: <reason>"), or "".
	Torrent(infoHash bittorrent.InfoHash) (t Torrent, ok bool, reason string)
	// ClientAllowed reports whether a peer_id's client may announce. An empty
	// whitelist allows every client.
	ClientAllowed(peerID bittorrent.PeerID) bool
}

// User is a site user as the tracker sees one.
type User struct {
	ID       uint32
	CanLeech bool
	// Protected users' addresses are never written to the database.
	Protected bool
}

// FreeType is a torrent's freeleech state.
type FreeType uint8

// Freeleech states, with Gazelle's FreeTorrent values.
const (
	Normal  FreeType = iota // '0': everything counts
	Free                    // '1': downloads are not counted
	Neutral                 // '2': nothing is counted
)

// Torrent is a registered torrent as the tracker sees one.
type Torrent struct {
	ID   uint32
	Free FreeType
}

// Updater is implemented by backends that accept a site's pushed changes:
// Ocelot's protocol, where the site calls
// GET /<secret>/update?action=...&... and GET /<report secret>/report?get=...
// The HTTP frontend checks the secrets and hands the rest over.
type Updater interface {
	// Update applies one action with its raw (still escaped) query, as
	// Ocelot reads it, and returns the answer's body; nil means Ocelot's
	// "success". An unknown action is not an error: Ocelot answers
	// "success" to those too.
	Update(action string, rawQuery string) ([]byte, error)
	// Report answers a report query (get=stats, get=user&key=...).
	Report(query url.Values) ([]byte, error)
}

// The interfaces below are optional: the tracker checks for them with a
// type assertion, as database/sql checks its drivers' optional interfaces.

// Reloader re-reads the site's users, torrents and whitelist on demand:
// the daemon calls it on SIGUSR1, as Ocelot reloads its lists.
type Reloader interface {
	Reload(ctx context.Context) error
}

// Intervals lets the site set the announce interval and its jitter
// (Ocelot's update_announce_interval and update_announce_jitter); ok is
// false until the site has.
type Intervals interface {
	AnnounceInterval() (d time.Duration, ok bool)
	AnnounceJitter() (d time.Duration, ok bool)
}

// SnatchCounter gives a torrent's completed downloads as the site counts
// them, which private announces and scrapes report as "downloaded".
type SnatchCounter interface {
	Snatches(torrentID uint32) (n int64, ok bool)
}

// SwarmRecorder is told of swarm counts that changed without an announce:
// when expiry took a torrent's last peers, as Ocelot's reaper records.
type SwarmRecorder interface {
	RecordSwarm(torrentID uint32, seeders, leechers int) error
}

// QueueReporter is implemented by backends that queue writes. The admin
// listener exports its figures when the configured backend implements it.
type QueueReporter interface {
	// QueueDepth is the number of writes queued and not yet flushed.
	QueueDepth() int
	// FlushErrors is the number of flushes that failed since start.
	FlushErrors() uint64
}

// Announcer is implemented by a site backend that keeps its swarms itself
// and answers announces by its site's own rules, as UNIT3D-Announce does
// for UNIT3D (backend/unit3d): which peers are listed, per-user caps,
// download slots and warnings are the site's contract, not the tracker's.
// The HTTP frontend hands such a backend the announces of its site's URL
// form (UNIT3D's /announce/<passkey>) and writes the reply as the site's
// clients expect it.
type Announcer interface {
	// Announce answers one announce; reply's buffers are reused (their
	// contents replaced). It must not wait on the database.
	Announce(req *AnnounceRequest, reply *AnnounceReply)
}

// AnnounceRequest is an announce for an Announcer: the client's counters
// as in Announce (UserID and TorrentID unset), and what only the site's
// rules read.
type AnnounceRequest struct {
	Announce
	// Passkey is the URL's passkey segment, as sent (any length).
	Passkey string
	// NumWant is the number of peers asked for; negative means not given.
	NumWant int
	// Key is the client's raw "key" parameter.
	Key string
	// DualStacked is the configuration's dual_stacked_peers: a peer_id
	// announcing over IPv4 and IPv6 keeps both addresses (BEP 7).
	DualStacked bool
}

// AnnounceReply is an Announcer's answer.
type AnnounceReply struct {
	// Failure, when not empty, is the failure reason; Interval is then
	// the interval the failure tells, and nothing else is set.
	Failure string
	// Warning is the reply's "warning message", or "".
	Warning  string
	Interval time.Duration
	// MinInterval is "min interval".
	MinInterval time.Duration
	Complete    int // seeders
	Incomplete  int // leechers
	Downloaded  int // completed downloads
	// Peers4 holds IPv4 peers, 6 bytes each; Peers6 IPv6 peers, 18 bytes
	// each, in compact form (BEP 23, BEP 7).
	Peers4, Peers6 []byte
	// Change says what the announce did, for the statistics; IPv6 is the
	// address family whose figures count the peer (which need not be the
	// announce's: a dual-stacked peer is counted once).
	Change bittorrent.Change
	IPv6   bool
}

// SwarmStats records what happens to swarms, for /stats and /metrics: the
// daemon's *stats.Stats is one.
type SwarmStats interface {
	// RecordPeer records what one change did to a swarm, in the figures of
	// one address family.
	RecordPeer(c bittorrent.Change, ipv6 bool)
	// RecordReap records an expiry pass: per family, the leechers and
	// seeders that left the swarms, and the swarms left without peers.
	RecordReap(leechers, seeders [2]int, swarms int)
}

// StatsFeeder is implemented by an Announcer whose swarms change outside
// announces too: loaded at start, expired by its own reaper. The daemon
// calls FeedStats once, before serving; the backend records the swarms it
// holds then as joined, and its expiry passes from then on. (Announces'
// changes are recorded by the frontend, from AnnounceReply.Change.)
type StatsFeeder interface {
	FeedStats(SwarmStats)
}

// SiteAPI is implemented by backends whose site pushes its changes as
// HTTP requests under a secret key (UNIT3D's /announce/<api_key>/<path>).
// The admin listener hands them over with their body; the backend checks
// the key and answers.
type SiteAPI interface {
	// SiteRequest answers method on path (below /announce/), with the
	// request's body and Content-Type. A wrong key is status 404.
	SiteRequest(method, path, contentType string, body []byte) (status int, respType string, resp []byte)
}
