// Package unit3d registers the "unit3d" backend: a UNIT3D site's database
// and API, spoken to as UNIT3D-Announce (v0.3.1) speaks to them, so that a
// UNIT3D (v9.2.0) site switches to Chihaya by pointing TRACKER_HOST and
// TRACKER_PORT at Chihaya's admin listener. The contract it follows is
// unit3d.md (UNIT3D ⇄ external tracker); docs/replacing-unit3d.md is the
// operators' guide.
//
// At Open it resynchronises the torrents' seeders and leechers from the
// peers table, then loads torrents with their peers, users, groups, the
// client blacklist and the freeleech lists, and keeps them in memory: as
// UNIT3D-Announce, it keeps the swarms itself (backend.Announcer) and
// answers every announce from memory with UNIT3D-Announce's checks,
// messages, peer rules and credit. The site's changes arrive through its
// API (backend.SiteAPI). The announces' rows (peers, history, torrents,
// users, unregistered_info_hashes, announces) are merged in memory and
// written every flush_interval, in one transaction per flush, through
// package sqlbatch, with UNIT3D-Announce's statements.
//
// Where it differs from UNIT3D-Announce, on purpose:
//
//   - A flush is one transaction, written exactly once (sqlbatch's flush
//     log, the table chihaya_flush), and a flush that fails (database
//     away) keeps its rows queued: nothing is lost, and nothing is counted
//     twice after a COMMIT whose answer was lost.
//   - A row the database refuses does not block its batch forever: rows of
//     users or torrents missing from the database (hard-deleted) are
//     filtered out before the statements, and a row still refused is
//     isolated by splitting its statement and dropped alone (counted by
//     DroppedRows).
//   - history.completed_at keeps the first completion queued within one
//     flush (UNIT3D-Announce keeps the last value, NULL included).
//   - PUT users checks new_passkey before it changes anything.
//   - A blacklisted-agents call also re-reads blacklist_clients, since the
//     site sends the entry's name, not its prefix.
//   - announces.key is cut to the column's 255 characters.
//   - POST config/reload re-reads the site's lists and the torrents'
//     status and factors from the database (the settings are Chihaya's
//     configuration, read at start).
//   - With dual_stacked_peers, a peer announcing over IPv4 and IPv6 keeps
//     both addresses (still one peer, one peers row with the last address):
//     an announcer is given the address of its own family, and each
//     family's announces are rate-limited apart.
//
// The daemon hands it the statistics (backend.StatsFeeder): the swarms
// loaded, the reaper's passes; the HTTP frontend records each announce's
// change.
package unit3d

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/backend/sqlbatch"
	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/config"
	"github.com/go-sql-driver/mysql"
	"github.com/golang/glog"
)

func init() {
	backend.Register("unit3d", opener{})
	config.NoTrackerSecret("unit3d") // the site's key is api_key
}

type opener struct{}

// Open checks the parameters, connects, loads the site and starts the
// flusher and the reaper.
func (opener) Open(params json.RawMessage) (backend.Conn, error) {
	p, err := ParseParams(params)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return Open(ctx, p)
}

// Conn is an open unit3d backend: a backend.Conn, backend.Announcer,
// backend.SiteAPI and backend.Site.
type Conn struct {
	p      Params
	db     *sql.DB
	st     *state
	q      sqlbatch.Queue[*batch]
	fl     sqlbatch.Flusher[*batch]
	rates  rates
	cands  []*peer                       // pick's scratch, under st.mu
	routes map[string]func([]byte) error // the API's PUT and DELETE routes

	dropped atomic.Uint64
	stats   backend.SwarmStats // under st.mu; nil until FeedStats

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var (
	_ backend.Conn          = (*Conn)(nil)
	_ backend.Announcer     = (*Conn)(nil)
	_ backend.SiteAPI       = (*Conn)(nil)
	_ backend.Site          = (*Conn)(nil)
	_ backend.Reloader      = (*Conn)(nil)
	_ backend.QueueReporter = (*Conn)(nil)
	_ backend.StatsFeeder   = (*Conn)(nil)
)

// Open connects with checked parameters (see ParseParams), runs the
// start-up loads and starts the background work.
func Open(ctx context.Context, p Params) (*Conn, error) {
	// UNIT3D-Announce's session: UTC, the server's strict mode kept.
	db, err := sqlbatch.OpenDB(p.DSN, func(cfg *mysql.Config) {
		cfg.Loc, cfg.ParseTime = time.UTC, true
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		cfg.Params["time_zone"] = "'+00:00'"
	})
	if err != nil {
		return nil, err
	}
	c := &Conn{p: p, db: db, st: newState(), stop: make(chan struct{})}
	c.q.Init(newBatch)
	c.routes = c.handlers()
	c.rates.init(time.Now())
	c.fl = sqlbatch.Flusher[*batch]{DB: db, Name: "unit3d backend", Take: c.q.Take, GiveBack: c.q.GiveBack, Write: c.writeRows}
	if err := c.open(ctx); err != nil {
		db.Close()
		return nil, err
	}
	c.wg.Add(1)
	go c.loop()
	return c, nil
}

func (c *Conn) open(ctx context.Context) error {
	if err := c.fl.Init(ctx); err != nil {
		return err
	}
	return c.load(ctx)
}

// loop flushes every flush_interval and reaps every peer_expiry_interval,
// never both at once.
func (c *Conn) loop() {
	defer c.wg.Done()
	flush := time.NewTicker(c.p.FlushInterval.Duration)
	defer flush.Stop()
	reap := time.NewTicker(c.p.PeerExpiryInterval.Duration)
	defer reap.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-flush.C:
			ctx, cancel := context.WithTimeout(context.Background(), c.flushTimeout())
			if err := c.Flush(ctx); err != nil {
				glog.Errorf("unit3d backend: flush failed, %d rows stay queued: %v", c.QueueDepth(), err)
			}
			cancel()
		case now := <-reap.C:
			c.Reap(now)
		}
	}
}

func (c *Conn) flushTimeout() time.Duration { return max(time.Minute, 10*c.p.FlushInterval.Duration) }

// later runs f after d unless the backend closes first.
func (c *Conn) later(d time.Duration, f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-c.stop:
		case <-t.C:
			f()
		}
	}()
}

// Flush writes every queued row now, in one transaction; on failure they
// stay queued.
func (c *Conn) Flush(ctx context.Context) error { return c.fl.Flush(ctx) }

// FeedStats is the backend.StatsFeeder method: st is told of the swarms
// held now (loaded at Open), as joined, and of every expiry pass from now
// on. A peer counts in the statistics while it is in the peer list (what
// UNIT3D-Announce counts as a seeder or leecher), once, in the family of
// its first address; a torrent while it lists a peer.
func (c *Conn) FeedStats(st backend.SwarmStats) {
	s := c.st
	s.mu.Lock()
	defer s.mu.Unlock()
	c.stats = st
	for _, t := range s.torrents {
		if t.listed > 0 {
			st.RecordPeer(bittorrent.SwarmAdded, false)
		}
		for _, q := range t.peers {
			if c.inList(q) {
				ch := bittorrent.PeerAdded
				if q.seeder {
					ch |= bittorrent.SeederAfter
				}
				st.RecordPeer(ch, q.v6)
			}
		}
	}
}

// Reap is UNIT3D-Announce's reaper (unit3d.md §7.1): peers inactive for
// inactive_peer_ttl go; active peers silent for active_peer_ttl become
// inactive and leave the counts, which the torrents table and the
// statistics are told of.
func (c *Conn) Reap(now time.Time) {
	s := c.st
	s.mu.Lock()
	defer s.mu.Unlock()
	gone, silent := now.Add(-c.p.InactivePeerTTL.Duration), now.Add(-c.p.ActivePeerTTL.Duration)
	var leechers, seeders [2]int
	swarms := 0
	for _, t := range s.torrents {
		seedDelta, leechDelta := 0, 0
		for k, p := range t.peers {
			if !p.active {
				if p.updated.Before(gone) {
					delete(t.peers, k)
				}
				continue
			}
			if !p.updated.Before(silent) {
				continue
			}
			if c.inList(p) {
				u := s.users[k.uid]
				if p.seeder {
					seedDelta--
					seeders[b2i(p.v6)]++
					if u != nil {
						u.seeding = satAdd(u.seeding, -1)
					}
				} else {
					leechDelta--
					leechers[b2i(p.v6)]++
					if u != nil {
						u.leeching = satAdd(u.leeching, -1)
					}
				}
				t.listed--
				if t.listed == 0 {
					swarms++
				}
			}
			p.active = false
		}
		if seedDelta != 0 || leechDelta != 0 {
			t.seeders = satAdd(t.seeders, seedDelta)
			t.leechers = satAdd(t.leechers, leechDelta)
			c.q.Add(func(b *batch) { b.addTorrent(t.id, torRow{seeders: int64(seedDelta), leechers: int64(leechDelta)}) })
		}
	}
	if c.stats != nil {
		c.stats.RecordReap(leechers, seeders, swarms)
	}
}

// RecordAnnounce is the backend.Conn method, for announces that did not
// come through Announce (none do in UNIT3D mode: see User).
func (c *Conn) RecordAnnounce(backend.Announce) error {
	return errors.New("unit3d backend: announces are answered by Announce, not recorded")
}

// User is the backend.Site method: UNIT3D announces arrive through
// Announce only (/announce/<passkey>), so other frontends (UDP) find no
// user, and are answered "Passkey not found".
func (c *Conn) User(string) (backend.User, bool) { return backend.User{}, false }

// Torrent is the backend.Site method: as User, nothing for other frontends.
func (c *Conn) Torrent(bittorrent.InfoHash) (backend.Torrent, bool, string) {
	return backend.Torrent{}, false, ""
}

// ClientAllowed is the backend.Site method: the blacklist.
func (c *Conn) ClientAllowed(id bittorrent.PeerID) bool {
	c.st.mu.Lock()
	defer c.st.mu.Unlock()
	return !c.st.blacklisted(id)
}

// QueueDepth is the number of rows queued and not yet known to be written.
func (c *Conn) QueueDepth() int { return c.q.Rows() + c.fl.InFlight() }

// FlushErrors is the number of flushes that failed since Open.
func (c *Conn) FlushErrors() uint64 { return c.fl.Errors() }

// DroppedRows is the number of rows given up since Open: of users or
// torrents no longer in the database, or refused by it one by one.
func (c *Conn) DroppedRows() uint64 { return c.dropped.Load() }

// Close stops the background work and flushes until the queue is empty,
// retrying for up to 15 seconds while the database is away (the daemon's
// SIGTERM path, which the shipped unit's TimeoutStopSec=30s must leave
// room for, as the Gazelle backend does), then disconnects.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.stop)
		c.wg.Wait()
		err := c.fl.Final(time.Now().Add(15*time.Second), c.q.Rows)
		if err != nil {
			c.closeErr = fmt.Errorf("unit3d backend: final flush: %w", err)
		}
		if cerr := c.db.Close(); cerr != nil && c.closeErr == nil {
			c.closeErr = cerr
		}
	})
	return c.closeErr
}
