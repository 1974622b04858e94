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
