package tracker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/internal/registry"
)

// ErrUnknownDriver is wrapped by Open for a driver name nobody registered.
var ErrUnknownDriver = registry.ErrUnknown

// Driver opens a swarm store. Drivers register themselves with Register in
// an init function; a binary picks one by blank-importing its package, as
// with database/sql.
type Driver interface {
	// Open returns a pool over a new store.
	Open(opts Options) (Pool, error)
}

// Options are what a store is opened with.
type Options struct {
	// Params is the driver's section of the configuration
	// ("tracker.params"), raw, for the driver to decode.
	Params json.RawMessage
	// Private is set for a private tracker. Updates then carry a UserID,
	// and the store must never hand a peer the peers of its own user.
	Private bool
	// Lifetime is how long a silent peer stays in its swarm
	// (peer_lifetime): a store that keeps its swarms across restarts
	// drops, as it loads them, the peers silent for longer.
	Lifetime time.Duration
	Peering
}

// Peering are the rules for which peers an announcer is given.
type Peering struct {
	// DualStacked makes a peer_id announced over both IPv4 and IPv6 (BEP 7)
	// one peer with two addresses: counted once, given to IPv4 announcers by
	// its IPv4 address and to IPv6 announcers by its IPv6 one.
	DualStacked bool
	// RespectAF gives announcers peers of their own address family only.
	RespectAF bool
	// PreferIPv4Bits and PreferIPv6Bits, when not 0, put the peers that
	// share that many leading address bits with the announcer first.
	PreferIPv4Bits, PreferIPv6Bits int
}

// PreferredSubnet returns the prefix length to prefer for a family, or 0.
func (p Peering) PreferredSubnet(v6 bool) int {
	if v6 {
		return p.PreferIPv6Bits
	}
	return p.PreferIPv4Bits
}

// Pool hands out connections to one store. It must be safe for concurrent use.
type Pool interface {
	// Get returns a connection; the caller closes it when the request is done.
	// Get is on every request's path: it should not allocate.
	Get() (Conn, error)
	// Close releases the store and everything it holds, as sql.DB's Close
	// does. No Conn may be used afterwards.
	Close() error
}

// Checker is implemented by a Pool whose store can be out of reach (a
// server): Check reports whether it answers now, for health checks.
type Checker interface {
	Check(ctx context.Context) error
}

// Lister is implemented by a Pool that can walk and drop its swarms: full
// scrape (BEP 48) needs it, and so do the torrent lists, which drop the
// swarms of the torrents they refuse. Both are rare next to announces, so
// a store should walk one part at a time, never stopping announces to the
// whole store for the walk's length.
type Lister interface {
	// ScrapeAll appends the figures of every swarm to out, in no order.
	// A swarm that changes during the walk shows its figures from before
	// or after the change.
	ScrapeAll(ctx context.Context, out []Scrape) ([]Scrape, error)
	// Drop removes the swarms of hashes, with their peers; a hash without
	// a swarm is skipped. Purged counts what went.
	Drop(ctx context.Context, hashes []bittorrent.InfoHash) (Purged, error)
}

// Restorer is implemented by a Pool that can open with swarms in it (the
// memory store's state file): Restored counts what it held when opened,
// as Purged counts what a pass removes, so that the statistics start
// from there rather than from zero.
type Restorer interface {
	Restored() Purged
}

// Store is the work of a swarm store. Each method is one atomic step on
// the store, so that a remote store needs one round trip per request and
// no two announces of a swarm see each other half done.
type Store interface {
	// Announce applies a to its swarm as u says, and fills resp's Counts,
	// Change and Peers. a is the client's request and is not changed.
	//
	// The event applied is u.Event, not a.Event. For Stopped the peer is
	// removed (nothing happens for an unknown peer) and no peers are
	// returned; if that was the swarm's last peer and u.PurgeEmpty is set,
	// the swarm goes too (Change has SwarmRemoved, and the counts are the
	// swarm's last). Otherwise the peer is added or refreshed as a seeder
	// (a.Left == 0) or a leecher, a Completed event counts one download the
	// first time a peer sends it, and up to u.Want peers other than the
	// announcer are appended to resp's Peers4/Peers6 (and their ids to
	// IDs4/IDs6 if a.PeerIDs), which the caller has reset: leechers only
	// for a seeder, peers of the announcer's address family first. The
	// counts include the announcer.
	Announce(ctx context.Context, a *Announce, u Update, resp *AnnounceResponse) error

	// Scrape appends the figures of each hash to out, in order; a hash
	// the store does not know gets zero counts.
	Scrape(ctx context.Context, hashes []bittorrent.InfoHash, out []Scrape) ([]Scrape, error)

	// Purge removes every peer last seen before before and, with purgeEmpty,
	// every swarm left without peers. Purged.Emptied lists the swarms whose
	// last peers it removed.
	Purge(ctx context.Context, before time.Time, purgeEmpty bool) (Purged, error)
}

// Conn is one connection to a swarm store.
type Conn interface {
	Store
	// Close returns the connection to its pool.
	Close() error
}

// NopCloser returns a Conn over s whose Close does nothing: a driver whose
// one store value serves every request concurrently hands it out from Get,
// and closing a connection leaves the store open. The conversion
// allocates: make it once, when the store opens.
func NopCloser(s Store) Conn { return nopCloser{s} }

type nopCloser struct{ Store }

func (nopCloser) Close() error { return nil }

var drivers = registry.New[Driver]("tracker")

// Register makes a driver available under name. It panics if driver is nil
// or if name is already taken: both are programming errors.
func Register(name string, driver Driver) { drivers.Register(name, driver) }

// Drivers returns the names of the registered drivers, sorted.
func Drivers() []string { return drivers.Names() }

// Open opens the store of the driver registered as name. An unknown name is
// an error wrapping ErrUnknownDriver.
func Open(name string, opts Options) (Pool, error) {
	driver, err := drivers.Lookup(name)
	if err != nil {
		return nil, err
	}
	pool, err := driver.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("tracker driver %q: %w", name, err)
	}
	return pool, nil
}
