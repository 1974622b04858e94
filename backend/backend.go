// Package backend connects the tracker to a site's slower, consistent
// database. The tracker hands every announce to the backend, which turns the
// raw counters into credited deltas and writes them in batches, off the
// request path. Drivers register themselves with Register, as with
// database/sql; "noop" (package backend/noop) discards everything.
package backend

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/internal/registry"
)

// ErrUnknownDriver is wrapped by Open for a driver name nobody registered.
var ErrUnknownDriver = registry.ErrUnknown

// Driver opens a backend connection.
type Driver interface {
	// Open connects with the driver's section of the configuration
	// ("backend.params"), raw, for the driver to decode.
	Open(params json.RawMessage) (Conn, error)
}

// Conn is an open backend. It must be safe for concurrent use.
type Conn interface {
	// RecordAnnounce queues one announce. It is called on the request path,
	// so it must not wait on the database; a value, not a pointer, so that
	// passing it does not allocate.
	RecordAnnounce(a Announce) error
	// Close flushes what is queued and disconnects.
	Close() error
}

// Announce is one announce as the backend sees it: the counters exactly as
// the client reported them. Credit is the backend's business, since only it
// knows the previous announce's counters after a restart.
type Announce struct {
	InfoHash   bittorrent.InfoHash
	PeerID     bittorrent.PeerID
	Addr       netip.AddrPort
	Uploaded   uint64
	Downloaded uint64
	Left       uint64
	Event      bittorrent.Event
	Corrupt    uint64
	// Snatched is set when the tracker counted this announce as a completed
	// download (once per peer).
	Snatched bool
	// Seeders and Leechers are the swarm's counts after the announce.
	Seeders, Leechers int
	Time              time.Time

	// Private mode only (zero otherwise): the announcing user and the
	// torrent, as the backend's Site resolved them, and the client's
	// User-Agent.
	UserID    uint32
	TorrentID uint32
	UserAgent string
}

var drivers = registry.New[Driver]("backend")

// Register makes a driver available under name. It panics if driver is nil
// or if name is already taken.
func Register(name string, driver Driver) { drivers.Register(name, driver) }

// Drivers returns the names of the registered drivers, sorted.
func Drivers() []string { return drivers.Names() }

// Open connects the driver registered as name. An unknown name is an error
// wrapping ErrUnknownDriver.
func Open(name string, params json.RawMessage) (Conn, error) {
	driver, err := drivers.Lookup(name)
	if err != nil {
		return nil, err
	}
	conn, err := driver.Open(params)
	if err != nil {
		return nil, fmt.Errorf("backend driver %q: %w", name, err)
	}
	return conn, nil
}
