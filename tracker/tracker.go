// Package tracker is the transport-independent heart of the tracker: it
// applies the announce and scrape rules on top of a swarm store (a Driver,
// registered by name as with database/sql), feeds the backend and records
// statistics. It knows nothing of HTTP or bencode; a frontend turns its
// requests into Announce values and writes out AnnounceResponse values.
package tracker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/ratelimit"
	"github.com/chihaya/chihaya/stats"
	"github.com/chihaya/chihaya/tracker/accesslist"
	"github.com/golang/glog"
)

// Tracker answers announces and scrapes. It is safe for concurrent use.
type Tracker struct {
	cfg     atomic.Pointer[config.Config] // replaced whole by Reload, never changed in place
	pool    Pool
	backend backend.Conn
	site    backend.Site // private mode: the site's users and torrents
	stats   *stats.Stats
	limiter ratelimit.Lazy // rate_limit's buckets, one per client address whatever its transport
	// torrents is torrent_list, read by LoadLists; nil without one.
	torrents atomic.Pointer[accesslist.Torrents]

	// The backend's optional interfaces, nil where it has none.
	intervals backend.Intervals
	snatches  backend.SnatchCounter
	swarms    backend.SwarmRecorder
}

// New returns a tracker over an open store and backend. It takes ownership
// of both: Close closes them. A private tracker's backend must implement
// backend.Site (see CheckBackend).
func New(cfg *config.Config, pool Pool, be backend.Conn, st *stats.Stats) *Tracker {
	t := &Tracker{pool: pool, backend: be, stats: st}
	t.site, _ = be.(backend.Site)
	t.intervals, _ = be.(backend.Intervals)
	t.snatches, _ = be.(backend.SnatchCounter)
	t.swarms, _ = be.(backend.SwarmRecorder)
	t.cfg.Store(cfg)
	if r, ok := pool.(Restorer); ok {
		t.recordRestored(r.Restored())
	}
	return t
}

// CheckBackend reports whether be can serve cfg: a private tracker needs a
// backend that knows the site's users and torrents.
func CheckBackend(cfg *config.Config, be backend.Conn) error {
	if _, ok := be.(backend.Site); cfg.Private && !ok {
		return fmt.Errorf("backend.driver: %q cannot serve a private tracker: it does not know the site's users and torrents", cfg.Backend.Name)
	}
	return nil
}

// Failures of private announces, worded as Ocelot words them: sites and
// their users know these strings.
var (
	ErrPasskeyNotFound   = bittorrent.ClientError("Passkey not found")
	ErrUnregistered      = bittorrent.ClientError("Unregistered torrent")
	ErrClientNotApproved = bittorrent.ClientError("Your client is not on the whitelist")
	ErrLeechingForbidden = bittorrent.ClientError("Access denied, leeching forbidden")
)

// Config returns the configuration the tracker runs with now. It must not
// be changed: Reload replaces it. A request loads it once and uses that
// value throughout, so that a reload never mixes two configurations.
func (t *Tracker) Config() *config.Config { return t.cfg.Load() }

// Reload makes cfg the running configuration, for the requests that start
// from now on; swarms are untouched. cfg must be valid, and should differ
// from the running one only in reloadable keys (see config.Config.Reload):
// the store, the backend and the listeners keep what they were opened with.
func (t *Tracker) Reload(cfg *config.Config) { t.cfg.Store(cfg) }

// Backend returns the backend the tracker feeds (for the admin listener's
// metrics).
func (t *Tracker) Backend() backend.Conn { return t.backend }

// Pool returns the store the tracker runs on, for the admin listener,
// which looks for its optional interfaces (a prometheus.Collector, say).
func (t *Tracker) Pool() Pool { return t.pool }

// Check reports whether the store answers now, for health checks: a
// store on a server implements Checker; one in this process always does.
func (t *Tracker) Check(ctx context.Context) error {
	if c, ok := t.pool.(Checker); ok {
		return c.Check(ctx)
	}
	return nil
}

// Announce handles one announce. a is not changed. resp's buffers are
// reused: their contents are replaced. A ClientError leaves the store
// unchanged, but for ErrLeechingForbidden: the user may not leech, so the
// peer is taken out of its swarm, as Ocelot does, and its traffic is still
// credited.
func (t *Tracker) Announce(ctx context.Context, a *Announce, resp *AnnounceResponse) error {
	if !a.Addr.IsValid() || a.Addr.Is4In6() {
		return ErrNoAddress
	}
	if a.Port == 0 {
		return bittorrent.ClientError("invalid port")
	}
	cfg := t.cfg.Load()
	u := Update{Event: a.Event, Want: a.NumWant, PurgeEmpty: cfg.PurgeInactiveTorrents}
	if u.Want < 0 {
		u.Want = cfg.DefaultNumWant
	}
	u.Want = min(u.Want, cfg.MaxNumWant)

	var torrentID uint32
	forbidden := false
	if !cfg.Private {
		if err := t.admit(cfg, a); err != nil {
			return err
		}
	} else {
		user, tor, err := t.authorize(a)
		if err != nil {
			return err
		}
		u.UserID, torrentID = user.ID, tor.ID
		// Like Ocelot, a user who may not leech still has the traffic of
		// the announce credited, but is kept out of the swarm.
		forbidden = !user.CanLeech && !a.Seeder()
		if forbidden {
			u.Event = bittorrent.Stopped // out of the swarm, if it was in
		}
	}
	if u.Event == bittorrent.Stopped {
		u.Want = 0
	}
	conn, err := t.pool.Get()
	if err != nil {
		return err
	}
	resp.Reset()
	err = conn.Announce(ctx, a, u, resp)
	if cerr := conn.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	interval, jitter, _ := t.interval(cfg)
	resp.Interval = interval
	if jitter > 0 {
		resp.Interval += rand.N(jitter) // spreads the re-announces of a restart's crowd
	}
	resp.MinInterval = cfg.MinAnnounce.Duration
	if n, ok := t.siteSnatches(torrentID); ok {
		resp.Downloaded = int(n)
	}

	t.stats.RecordPeer(resp.Change, a.Addr.Is6())
	t.record(a, resp, u.UserID, torrentID)
	if forbidden {
		return ErrLeechingForbidden
	}
	return nil
}

// ErrRateLimited is the answer to a request over rate_limit; each frontend
// adds when to retry (BEP 31's "retry in" over HTTP).
const ErrRateLimited bittorrent.ClientError = "rate limit exceeded: too many requests from your address"

// RetryMinutes is retry as BEP 31's "retry in" says it: whole minutes,
// rounded up, and at least one, which every frontend tells a client over
// the rate limit.
func RetryMinutes(retry time.Duration) int64 {
	return int64(max(1, (retry+time.Minute-1)/time.Minute))
}

// ErrMalformedAnnounce is the answer to an announce whose URL has no
// passkey where a private tracker wants one, over HTTP or UDP (BEP 41).
const ErrMalformedAnnounce bittorrent.ClientError = "Malformed announce"

// Allow takes a request from the rate-limit bucket (rate_limit) of the
// client at addr: one bucket per address, or per /64 for IPv6, shared by
// every frontend, so that a client gets the same budget over HTTP and UDP
// together. When the bucket is empty it returns false and how long until
// it holds a request again. The frontends ask before the request reaches
// the store (UDP after checking the connection ID, so that a forged
// source address cannot spend another's bucket), so that a refused
// request changes nothing.
func (t *Tracker) Allow(addr netip.Addr, now time.Time) (ok bool, retry time.Duration) {
	cfg := t.cfg.Load()
	return t.limiter.Allow(addr, now, ratelimit.PerSecond(cfg.RateLimit.RequestsPerSecond, cfg.RateLimit.Burst))
}

// RateLimitEntries is the rate limiter's table size: 0 until a limit was
// on (the table is made by the first request that finds one).
func (t *Tracker) RateLimitEntries() int { return t.limiter.Entries() }

// interval returns the announce interval and jitter clients are told: the
// configuration's, unless the site has set its own interval (fromSite).
func (t *Tracker) interval(cfg *config.Config) (interval, jitter time.Duration, fromSite bool) {
	interval, jitter = cfg.Announce.Duration, cfg.AnnounceJitter.Duration
	if t.intervals != nil {
		if d, ok := t.intervals.AnnounceInterval(); ok {
			interval, fromSite = d, true
		}
		if d, ok := t.intervals.AnnounceJitter(); ok {
			jitter = d
		}
	}
	return interval, jitter, fromSite
}

// lifetime is how long a silent peer stays: the configured lifetime, but
// when the site has set its own interval, never less than twice the
// longest interval clients are told, so that a site raising the interval
// does not expire peers between their announces.
func (t *Tracker) lifetime(cfg *config.Config) time.Duration {
	interval, jitter, fromSite := t.interval(cfg)
	if !fromSite {
		return cfg.Lifetime()
	}
	return max(cfg.Lifetime(), 2*(interval+jitter))
}

// authorize checks a private announce against the site: the user, the
// torrent and the client. Nothing is changed when it fails.
func (t *Tracker) authorize(a *Announce) (backend.User, backend.Torrent, error) {
	if t.site == nil {
		return backend.User{}, backend.Torrent{}, errNoSite
	}
	user, ok := t.site.User(a.Passkey)
	if !ok {
		return user, backend.Torrent{}, ErrPasskeyNotFound
	}
	tor, ok, reason := t.site.Torrent(a.InfoHash)
	if !ok {
		if reason != "" {
			return user, tor, bittorrent.ClientError(string(ErrUnregistered) + ": " + reason)
		}
		return user, tor, ErrUnregistered
	}
	if !t.site.ClientAllowed(a.PeerID) {
		return user, tor, ErrClientNotApproved
	}
	return user, tor, nil
}

var errNoSite = errors.New("private tracker without a site backend")

// record hands the announce to the backend.
func (t *Tracker) record(a *Announce, resp *AnnounceResponse, userID, torrentID uint32) {
	if err := t.backend.RecordAnnounce(backend.Announce{
		InfoHash:   a.InfoHash,
		PeerID:     a.PeerID,
		Addr:       netip.AddrPortFrom(a.Addr, a.Port),
		Uploaded:   a.Uploaded,
		Downloaded: a.Downloaded,
		Left:       a.Left,
		Corrupt:    a.Corrupt,
		Event:      a.Event,
		Snatched:   resp.Change.Has(bittorrent.Snatched),
		Seeders:    resp.Complete,
		Leechers:   resp.Incomplete,
		Time:       a.When(),
		UserID:     userID,
		TorrentID:  torrentID,
		UserAgent:  a.UserAgent,
	}); err != nil {
		// The swarm is updated and the client is owed its peers; a backend
		// that cannot queue is an operator's problem, not the client's.
		glog.Errorf("backend: recording announce for %s: %v", a.InfoHash, err)
	}
}

// Scrape appends the figures of each hash to out. Unknown torrents get
// zero counts. A private tracker needs the passkey of an enabled user.
func (t *Tracker) Scrape(ctx context.Context, passkey string, hashes []bittorrent.InfoHash, out []Scrape) ([]Scrape, error) {
	cfg := t.cfg.Load()
	if cfg.Private {
		if t.site == nil {
			return out, errNoSite
		}
		if _, ok := t.site.User(passkey); !ok {
			return out, ErrPasskeyNotFound
		}
	}
	if len(hashes) == 0 {
		return out, ErrNoInfoHash
	}
	if len(hashes) > cfg.MaxScrapeInfoHashes {
		return out, ErrTooManyInfoHashes
	}
	first := len(out)
	if l := t.torrents.Load(); l != nil && !cfg.Private {
		return t.scrapeListed(ctx, l, hashes, out)
	}
	conn, err := t.pool.Get()
	if err != nil {
		return out, err
	}
	out, err = conn.Scrape(ctx, hashes, out)
	if cerr := conn.Close(); err == nil {
		err = cerr
	}
	if cfg.Private && t.snatches != nil {
		for i := first; i < len(out); i++ {
			if tor, ok, _ := t.site.Torrent(out[i].InfoHash); ok {
				if n, ok := t.siteSnatches(tor.ID); ok {
					out[i].Downloaded = int(n)
				}
			}
		}
	}
	return out, err
}

// siteSnatches is the site's count of a torrent's completed downloads:
// what a private tracker reports, since its own count starts afresh with
// every swarm.
func (t *Tracker) siteSnatches(torrentID uint32) (int64, bool) {
	if t.snatches == nil || torrentID == 0 {
		return 0, false
	}
	return t.snatches.Snatches(torrentID)
}

// Reap runs one expiry pass: peers silent for longer than the peer
// lifetime (the configured one, longer if the site's interval needs it; see
// lifetime) go, and, if so configured, swarms left empty.
func (t *Tracker) Reap(ctx context.Context, now time.Time) (Purged, error) {
	conn, err := t.pool.Get()
	if err != nil {
		return Purged{}, err
	}
	defer conn.Close()
	cfg := t.cfg.Load()
	p, err := conn.Purge(ctx, now.Add(-t.lifetime(cfg)), cfg.PurgeInactiveTorrents)
	t.recordPurged(p)
	if t.swarms != nil && t.site != nil {
		// As Ocelot's reaper, tell the site of torrents expiry left empty:
		// otherwise its figures stay those of the last announce.
		for _, h := range p.Emptied {
			if tor, ok, _ := t.site.Torrent(h); ok {
				if rerr := t.swarms.RecordSwarm(tor.ID, 0, 0); rerr != nil {
					glog.Errorf("backend: recording the emptied swarm of %s: %v", h, rerr)
				}
			}
		}
	}
	return p, err
}

// recordPurged counts the peers and swarms an expiry pass, or a torrent
// list, removed.
func (t *Tracker) recordPurged(p Purged) {
	var leechers [2]int
	for f := range leechers {
		leechers[f] = p.Peers[f] - p.Seeders[f]
	}
	t.stats.RecordReap(leechers, p.Seeders, p.Swarms)
}

// recordRestored counts the swarms and peers a store opened with as
// joined.
func (t *Tracker) recordRestored(p Purged) {
	for f, v6 := range [2]bool{false, true} {
		for i := range p.Peers[f] {
			c := bittorrent.PeerAdded
			if i < p.Seeders[f] {
				c |= bittorrent.SeederAfter
			}
			t.stats.RecordPeer(c, v6)
		}
	}
	for range p.Swarms {
		t.stats.RecordPeer(bittorrent.SwarmAdded, false)
	}
}

// RunReaper calls Reap four times per peer lifetime (the one Reap expires
// peers by, the site's interval included), so that a silent peer is gone at
// most a quarter lifetime after it expired, until ctx ends. A changed
// lifetime, reloaded or the site's, takes effect from the next pass.
func (t *Tracker) RunReaper(ctx context.Context) {
	lifetime := t.lifetime(t.cfg.Load())
	tick := time.NewTicker(lifetime / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if l := t.lifetime(t.cfg.Load()); l != lifetime {
				lifetime = l
				tick.Reset(lifetime / 4)
			}
			p, err := t.Reap(ctx, now)
			if err != nil {
				glog.Errorf("reaping expired peers: %v", err)
			}
			if glog.V(1) {
				glog.Infof("reaped %d IPv4 and %d IPv6 peers, %d swarms", p.Peers[0], p.Peers[1], p.Swarms)
			}
		}
	}
}

// Close closes the store and the backend (which flushes what it queued).
func (t *Tracker) Close() error {
	err := t.pool.Close()
	if berr := t.backend.Close(); err == nil {
		err = berr
	}
	return err
}
