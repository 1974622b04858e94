// Package mysql registers the "mysql" backend: a Gazelle site's MySQL or
// MariaDB database, spoken to as Ocelot speaks to it, so that Chihaya can
// replace Ocelot in front of an unchanged Gazelle (WCD or OPS flavour).
//
// At Open (and on Reload) it loads the site's users, torrents, freeleech
// tokens and client whitelist with Ocelot's queries and answers the
// tracker's backend.Site questions from memory. Every announce is turned
// into Ocelot's records (credited up/down deltas, torrent counts, snatches,
// xbt_files_users peer rows, token usage), aggregated in memory and written
// every flush_interval, one transaction per flush, by a goroutine: the
// request path never waits on the database. The site's pushed changes
// (Ocelot's /update actions) and reports arrive through backend.Updater.
//
// Where it differs from Ocelot, on purpose:
//
//   - Credit survives a tracker restart. xbt_files_users is not truncated at
//     start; each peer's last flushed counters are loaded from it, so the
//     first announce after a restart is credited against them.
//   - No statement fails under a strict sql_mode: users_freeleeches.Time is
//     written, user agents are cleaned and truncated to the column, an
//     address that does not fit the ip column (IPv6 in varchar(15)) is
//     stored as "", and rows of users or torrents the site has deleted are
//     filtered out by the statements themselves. A row that still fails
//     with a data error is isolated by splitting its batch and dropped
//     alone (counted by DroppedRows); the rest is written.
//   - A database outage queues the aggregated rows in memory (bounded by
//     queue_limit per table) and writes them when the database is back,
//     exactly once: each flush writes a sequence number into the table
//     chihaya_flush in the same transaction, so a flush whose COMMIT got no
//     answer is checked, not guessed.
package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/backend/sqlbatch"
	"github.com/chihaya/chihaya/config"
	"github.com/go-sql-driver/mysql"
	"github.com/golang/glog"
)

func init() {
	backend.Register("mysql", opener{})
	// The driver's own complaints (mostly dropped connections) go to the
	// daemon's log, not to stderr unformatted.
	mysql.SetLogger(glogLogger{})
}

type glogLogger struct{}

func (glogLogger) Print(v ...any) { glog.WarningDepth(1, append([]any{"mysql driver: "}, v...)...) }

// Schema flavours: where a Gazelle keeps its counters.
const (
	// SchemaLeechStats is OPS Gazelle's: users_leech_stats and
	// torrents_leech_stats.
	SchemaLeechStats = "leech_stats"
	// SchemaClassic is What.CD Gazelle's: users_main and torrents.
	SchemaClassic = "classic"
)

// Params are the backend's parameters ("backend.params").
type Params struct {
	// DSN is the go-sql-driver/mysql data source name, e.g.
	// "gazelle:secret@tcp(127.0.0.1:3306)/gazelle". Required.
	DSN string `json:"dsn"`
	// Schema is "leech_stats" (OPS, the default) or "classic" (WCD).
	Schema string `json:"schema"`
	// FlushInterval is how often the queued rows are written (default 3s,
	// Ocelot's schedule_interval).
	FlushInterval config.Duration `json:"flush_interval"`
	// ReloadInterval reloads users, torrents, tokens and the whitelist this
	// often; 0 (the default) never does. Reload can also be called (on
	// SIGUSR1, as Ocelot does).
	ReloadInterval config.Duration `json:"reload_interval"`
	// QueueLimit bounds the rows queued per table while the database is
	// unreachable (default 1000000). Rows beyond it are dropped and
	// counted. Credit rows are aggregated per user and per torrent, so they
	// only reach it on a site with more keys than that.
	QueueLimit int `json:"queue_limit"`
	// SiteURL is the site's base URL, for token expiry:
	// GET <site_url>/tools.php?key=<site_secret>&type=expiretoken&action=ocelot&tokens=uid:tid,...
	// Empty disables token expiry (Gazelle then expires tokens on its own
	// schedule only).
	SiteURL string `json:"site_url"`
	// SiteSecret is Gazelle's TRACKER_SECRET (the tracker_secret of the
	// main configuration). Required with site_url.
	SiteSecret string `json:"site_secret"`
	// DeleteReasonLifetime is how long a deleted torrent's reason is told
	// to its announcers (default 24h, Ocelot's del_reason_lifetime).
	DeleteReasonLifetime config.Duration `json:"del_reason_lifetime"`
	// Multipliers turns on per-user and per-torrent upload and download
	// multipliers (an extension: Ocelot has none), off by default. The
	// loads then also read users_main.UpMultiplier, DownMultiplier and
	// torrents.UpMultiplier, DownMultiplier (columns the site adds, NULL
	// meaning 1.0), and credit Δup × user's × torrent's UpMultiplier and
	// Δdown × user's × torrent's DownMultiplier. Users and torrents added
	// by the site's updates (add_user, add_torrent) have multipliers 1.0
	// until the next reload.
	Multipliers bool `json:"multipliers"`
}

// Defaults of the parameters left out.
const (
	DefaultFlushInterval        = 3 * time.Second
	DefaultQueueLimit           = 1_000_000
	DefaultDeleteReasonLifetime = 24 * time.Hour
)

// How long an idle peer's counters are kept to credit its next announce:
// Gazelle deletes xbt_files_users rows idle for 6 hours.
const baselineLifetime = 6 * time.Hour

// peerWindow is how recently a peer must have announced to count as
// seeding or leeching in reports (Ocelot's peers_timeout).
const peerWindow = 2 * time.Hour

// ParseParams decodes and checks raw parameters. Every error names its key.
func ParseParams(raw json.RawMessage) (Params, error) {
	p := Params{
		Schema:               SchemaLeechStats,
		FlushInterval:        config.Duration{Duration: DefaultFlushInterval},
		QueueLimit:           DefaultQueueLimit,
		DeleteReasonLifetime: config.Duration{Duration: DefaultDeleteReasonLifetime},
	}
	const prefix = "backend.params"
	if err := config.DecodeParams(prefix, raw, &p); err != nil {
		return p, err
	}
	switch {
	case p.DSN == "":
		return p, fmt.Errorf("%s: dsn: required (e.g. \"user:password@tcp(127.0.0.1:3306)/gazelle\")", prefix)
	case p.Schema != SchemaLeechStats && p.Schema != SchemaClassic:
		return p, fmt.Errorf("%s: schema: want %q (OPS) or %q (WCD), got %q", prefix, SchemaLeechStats, SchemaClassic, p.Schema)
	case p.FlushInterval.Duration <= 0:
		return p, fmt.Errorf("%s: flush_interval: must be positive, got %v", prefix, p.FlushInterval)
	case p.ReloadInterval.Duration < 0:
		return p, fmt.Errorf("%s: reload_interval: must not be negative, got %v", prefix, p.ReloadInterval)
	case p.QueueLimit < 1:
		return p, fmt.Errorf("%s: queue_limit: must be at least 1, got %d", prefix, p.QueueLimit)
	case p.DeleteReasonLifetime.Duration < 0:
		return p, fmt.Errorf("%s: del_reason_lifetime: must not be negative, got %v", prefix, p.DeleteReasonLifetime)
	case p.SiteURL != "" && p.SiteSecret == "":
		return p, fmt.Errorf("%s: site_secret: required with site_url (Gazelle's TRACKER_SECRET)", prefix)
	case p.SiteURL == "" && p.SiteSecret != "":
		return p, fmt.Errorf("%s: site_url: required with site_secret", prefix)
	}
	if _, err := mysql.ParseDSN(p.DSN); err != nil {
		return p, fmt.Errorf("%s: dsn: %v", prefix, err)
	}
	if p.SiteURL != "" {
		u, err := url.Parse(p.SiteURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			return p, fmt.Errorf("%s: site_url: want an http(s) base URL such as \"https://example.com\", got %q", prefix, p.SiteURL)
		}
		p.SiteURL = strings.TrimSuffix(p.SiteURL, "/")
	}
	return p, nil
}

type opener struct{}

// Open connects, loads the site and starts the flusher.
func (opener) Open(params json.RawMessage) (backend.Conn, error) {
	p, err := ParseParams(params)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return Open(ctx, p)
}

// Conn is an open mysql backend: a backend.Conn, backend.Site and
// backend.Updater.
type Conn struct {
	p      Params
	db     *sql.DB
	q      queries
	start  time.Time
	widths columnWidths

	site siteState
	acc  accumulator

	// fl flushes acc's rows (package sqlbatch).
	fl sqlbatch.Flusher[*batch]
	// commit commits a flush's transaction; tests replace it to lose
	// answers.
	commit func(*sql.Tx) error
	// duringReload, if set, runs while Reload reads the database (tests).
	duringReload func()

	dropped atomic.Uint64

	comm *siteComm

	announce struct { // update_announce_interval / _jitter
		mu               sync.Mutex
		interval, jitter time.Duration
		hasInt, hasJit   bool
	}

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var (
	_ backend.Conn    = (*Conn)(nil)
	_ backend.Site    = (*Conn)(nil)
	_ backend.Updater = (*Conn)(nil)
)

// ErrClosed is returned by RecordAnnounce after Close.
var ErrClosed = errors.New("mysql backend: closed")

// Open connects with checked parameters (see ParseParams), loads the site,
// the peers' last flushed counters, and starts the background work.
func Open(ctx context.Context, p Params) (*Conn, error) {
	db, err := sqlbatch.OpenDB(p.DSN, nil)
	if err != nil {
		return nil, err
	}

	c := &Conn{
		p:     p,
		db:    db,
		q:     queriesFor(p.Schema, p.Multipliers),
		start: time.Now(),
		stop:  make(chan struct{}),
	}
	c.commit = func(tx *sql.Tx) error { return tx.Commit() }
	c.initFlusher()
	c.acc.init(p.QueueLimit, &c.dropped)
	c.site.init()
	if err := c.open(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if p.SiteURL != "" {
		c.comm = newSiteComm(p.SiteURL, p.SiteSecret, p.QueueLimit, &c.dropped)
	}
	c.wg.Add(1)
	go c.loop()
	if c.comm != nil {
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.comm.run(c.stop, p.FlushInterval.Duration) }()
	}
	return c, nil
}

func (c *Conn) open(ctx context.Context) error {
	if err := c.fl.Init(ctx); err != nil {
		return err
	}
	if err := c.loadWidths(ctx); err != nil {
		return err
	}
	if err := c.checkMultiplierColumns(ctx); err != nil {
		return err
	}
	if err := c.Reload(ctx); err != nil {
		return err
	}
	// The swarms start empty, as Ocelot's do: so do the counts.
	if _, err := c.db.ExecContext(ctx, c.q.zeroPeers); err != nil {
		return fmt.Errorf("resetting seeders and leechers: %w", err)
	}
	n, err := c.loadBaselines(ctx)
	if err != nil {
		return err
	}
	glog.Infof("mysql backend: %d users, %d torrents, %d whitelisted clients, %d peers' counters restored",
		c.site.userCount(), c.site.torrentCount(), c.site.whitelistLen(), n)
	return nil
}

// loop flushes every flush_interval, reloads every reload_interval, and
// forgets idle peers now and then.
func (c *Conn) loop() {
	defer c.wg.Done()
	flush := time.NewTicker(c.p.FlushInterval.Duration)
	defer flush.Stop()
	var reload <-chan time.Time
	if d := c.p.ReloadInterval.Duration; d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		reload = t.C
	}
	evict := time.NewTicker(10 * time.Minute)
	defer evict.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-flush.C:
			ctx, cancel := context.WithTimeout(context.Background(), c.flushTimeout())
			if err := c.Flush(ctx); err != nil {
				glog.Errorf("mysql backend: flush failed, %d rows stay queued: %v", c.QueueDepth(), err)
			}
			cancel()
		case <-reload:
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			if err := c.Reload(ctx); err != nil {
				glog.Errorf("mysql backend: reload: %v", err)
			}
			cancel()
		case now := <-evict.C:
			n := c.acc.evict(now.Add(-baselineLifetime).Unix())
			c.site.expireReasons(now, c.p.DeleteReasonLifetime.Duration)
			if glog.V(1) {
				glog.Infof("mysql backend: forgot %d idle peers", n)
			}
		}
	}
}

func (c *Conn) flushTimeout() time.Duration {
	return max(time.Minute, 10*c.p.FlushInterval.Duration)
}

// QueueDepth is the number of rows queued and not yet known to be written.
func (c *Conn) QueueDepth() int {
	n := c.acc.Rows() + c.fl.InFlight()
	return n
}

// FlushErrors is the number of flushes that failed since Open.
func (c *Conn) FlushErrors() uint64 { return c.fl.Errors() }

// DroppedRows is the number of rows given up since Open: beyond
// queue_limit, or refused by the database one by one (bad data).
func (c *Conn) DroppedRows() uint64 { return c.dropped.Load() }

// Close stops the background work, flushes everything queued (retrying for
// a few seconds if the database is away) and disconnects.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.acc.close()
		close(c.stop)
		c.wg.Wait()
		err := c.fl.Final(time.Now().Add(15*time.Second), c.acc.Rows)
		if err != nil {
			c.closeErr = fmt.Errorf("mysql backend: final flush: %w", err)
		}
		if c.comm != nil {
			if cerr := c.comm.drain(5 * time.Second); cerr != nil && c.closeErr == nil {
				c.closeErr = fmt.Errorf("mysql backend: token expiry: %w", cerr)
			}
		}
		if cerr := c.db.Close(); cerr != nil && c.closeErr == nil {
			c.closeErr = cerr
		}
	})
	return c.closeErr
}

// AnnounceInterval is the announce interval the site last set with
// update_announce_interval; ok is false until it does. The tracker's own
// configuration cannot be changed from here: the tracker asks.
func (c *Conn) AnnounceInterval() (d time.Duration, ok bool) {
	c.announce.mu.Lock()
	defer c.announce.mu.Unlock()
	return c.announce.interval, c.announce.hasInt
}

// AnnounceJitter is the jitter bound the site last set with
// update_announce_jitter; ok is false until it does.
func (c *Conn) AnnounceJitter() (d time.Duration, ok bool) {
	c.announce.mu.Lock()
	defer c.announce.mu.Unlock()
	return c.announce.jitter, c.announce.hasJit
}
