package tracker_test

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chihaya/chihaya/backend"
	_ "github.com/chihaya/chihaya/backend/noop"
	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/tracker"
	_ "github.com/chihaya/chihaya/tracker/memory"
	"github.com/chihaya/chihaya/tracker/trackertest"
)

// The site of the private tests.
const (
	pkAlice   = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" // user 1
	pkNoLeech = "cccccccccccccccccccccccccccccccc" // user 3, may not leech
	secret    = "0123456789abcdef0123456789abcdef"
)

var (
	registered   = trackertest.Hash(10) // torrent 10: the site counts 42 snatches
	uncounted    = trackertest.Hash(11) // torrent 11: the site has no count
	deleted      = trackertest.Hash(12) // unregistered, with a reason
	unregistered = trackertest.Hash(13) // unregistered, no reason known
)

func newSite() *trackertest.Site {
	return &trackertest.Site{
		Users: map[string]backend.User{pkAlice: {ID: 1, CanLeech: true}, pkNoLeech: {ID: 3}},
		Torrents: map[bittorrent.InfoHash]backend.Torrent{
			registered: {ID: 10}, uncounted: {ID: 11},
		},
		Reasons:   map[bittorrent.InfoHash]string{deleted: "Trumped"},
		Whitelist: []string{"-TT0001-"}, // trackertest.ID's prefix
		Counts:    map[uint32]int64{10: 42},
	}
}

// privateConfig is config.Default in private mode.
func privateConfig() *config.Config {
	cfg := config.Default()
	cfg.Private, cfg.TrackerSecret = true, secret
	return cfg
}

// newTrackerWith returns a tracker over a new memory store and be, closed
// when the test ends.
func newTrackerWith(t *testing.T, cfg *config.Config, be backend.Conn) *tracker.Tracker {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tkr, _ := trackertest.NewTracker(t, cfg, be)
	return tkr
}

// newSiteTracker returns a tracker feeding a new fake site.
func newSiteTracker(t *testing.T, cfg *config.Config) (*tracker.Tracker, *trackertest.Site) {
	t.Helper()
	site := newSite()
	return newTrackerWith(t, cfg, site), site
}

// newTracker returns a tracker over the noop backend.
func newTracker(t *testing.T, cfg *config.Config) *tracker.Tracker {
	t.Helper()
	return newTrackerWith(t, cfg, nil)
}

var ctx = context.Background()

// announce has peer id, at 10.0.0.id, announce torrent 1 with left bytes
// left, and fails the test on an error.
func announce(t *testing.T, tkr *tracker.Tracker, id byte, left uint64) *tracker.AnnounceResponse {
	t.Helper()
	a := &tracker.Announce{InfoHash: bittorrent.InfoHash{1}, PeerID: bittorrent.PeerID{id}, Addr: netip.AddrFrom4([4]byte{10, 0, 0, id}),
		Port: 6881, Left: left, NumWant: -1}
	return mustAnnounce(t, tkr, a)
}

// mustAnnounce sends a and fails the test on an error.
func mustAnnounce(t *testing.T, tkr *tracker.Tracker, a *tracker.Announce) *tracker.AnnounceResponse {
	t.Helper()
	var resp tracker.AnnounceResponse
	if err := tkr.Announce(ctx, a, &resp); err != nil {
		t.Fatalf("announce of peer %q: %v", a.PeerID, err)
	}
	return &resp
}

// counts scrapes h with the passkey and fails the test on an error.
func counts(t *testing.T, tkr *tracker.Tracker, passkey string, h bittorrent.InfoHash) tracker.Counts {
	t.Helper()
	out, err := tkr.Scrape(ctx, passkey, []bittorrent.InfoHash{h}, nil)
	if err != nil || len(out) != 1 {
		t.Fatalf("scrape of %x: %v, %v", h, out, err)
	}
	return out[0].Counts
}

// private makes a one of user passkey's announces.
func private(a *tracker.Announce, passkey string) *tracker.Announce {
	a.Passkey = passkey
	return a
}

func TestNumWant(t *testing.T) {
	cfg := config.Default()
	cfg.DefaultNumWant, cfg.MaxNumWant = 3, 5
	tkr := newTracker(t, cfg)
	h := trackertest.Hash(1)
	for n := range 10 {
		mustAnnounce(t, tkr, trackertest.Seeder(h, n, "10.0.0.1"))
	}
	for _, tc := range []struct {
		name    string
		numwant int
		event   bittorrent.Event
		want    int
	}{
		{"not given: the default", -1, bittorrent.Started, 3},
		{"none", 0, bittorrent.None, 0},
		{"fewer than the default", 2, bittorrent.None, 2},
		{"the maximum", 5, bittorrent.None, 5},
		{"above the maximum: clamped", 1000, bittorrent.None, 5},
		{"stopped gets no peers", 1000, bittorrent.Stopped, 0},
		{"stopped, numwant not given", -1, bittorrent.Stopped, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := trackertest.Leecher(h, 100, "10.0.0.2")
			a.NumWant, a.Event = tc.numwant, tc.event
			r := mustAnnounce(t, tkr, a)
			if r.NumPeers() != tc.want {
				t.Errorf("numwant %d, event %q: %d peers, want %d", tc.numwant, tc.event, r.NumPeers(), tc.want)
			}
		})
	}
	if c := counts(t, tkr, "", h); c != (tracker.Counts{Complete: 10}) {
		t.Errorf("after the leecher stopped: %+v", c)
	}
}

// TestAnnounceRefusesBadPeer checks that an announce without a usable
// address or port is refused and changes nothing: not the swarm, not the
// backend, not the response.
func TestAnnounceRefusesBadPeer(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*tracker.Announce)
		want error
	}{
		{"no address", func(a *tracker.Announce) { a.Addr = netip.Addr{} }, tracker.ErrNoAddress},
		{"IPv4-mapped IPv6", func(a *tracker.Announce) { a.Addr = netip.MustParseAddr("::ffff:10.0.0.1") }, tracker.ErrNoAddress},
		{"port 0", func(a *tracker.Announce) { a.Port = 0 }, bittorrent.ClientError("invalid port")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tkr, site := newSiteTracker(t, config.Default())
			h := trackertest.Hash(1)
			mustAnnounce(t, tkr, trackertest.Seeder(h, 1, "10.0.0.1"))
			a := trackertest.Leecher(h, 2, "10.0.0.2")
			tc.edit(a)
			resp := tracker.AnnounceResponse{Interval: time.Hour, Counts: tracker.Counts{Complete: 7}}
			if err := tkr.Announce(ctx, a, &resp); err != tc.want {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if resp.Interval != time.Hour || resp.Complete != 7 {
				t.Errorf("the refused announce wrote its response: %+v", resp)
			}
			if c := counts(t, tkr, "", h); c != (tracker.Counts{Complete: 1}) {
				t.Errorf("the swarm changed: %+v", c)
			}
			if n := len(site.Announces()); n != 1 {
				t.Errorf("the backend was given %d announces, want only the seeder's", n)
			}
		})
	}
}

// TestPrivateChecksInOrder checks a private announce against the site in
// Ocelot's order, passkey, torrent, client, with Ocelot's words, and that
// a refused announce changes nothing.
func TestPrivateChecksInOrder(t *testing.T) {
	badClient := bittorrent.PeerID([]byte("-XX0001-000000000002"))
	for _, tc := range []struct {
		name    string
		passkey string
		hash    bittorrent.InfoHash
		peerID  bittorrent.PeerID
		want    error
	}{
		{"unknown passkey first", "nobody", unregistered, badClient, tracker.ErrPasskeyNotFound},
		{"empty passkey", "", registered, trackertest.ID(2), tracker.ErrPasskeyNotFound},
		{"then the torrent, with the site's reason", pkAlice, deleted, badClient, bittorrent.ClientError("Unregistered torrent: Trumped")},
		{"then the torrent, no reason known", pkAlice, unregistered, badClient, tracker.ErrUnregistered},
		{"then the client", pkAlice, registered, badClient, tracker.ErrClientNotApproved},
		{"all good", pkAlice, registered, trackertest.ID(2), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tkr, site := newSiteTracker(t, privateConfig())
			for _, h := range []bittorrent.InfoHash{registered, deleted, unregistered} {
				site.Torrents[h] = backend.Torrent{ID: 10}
				mustAnnounce(t, tkr, private(trackertest.Seeder(h, 1, "10.0.0.1"), pkAlice))
				delete(site.Torrents, h)
			}
			site.Torrents[registered] = backend.Torrent{ID: 10}
			site.ForgetAnnounces()

			a := private(trackertest.Leecher(tc.hash, 2, "10.0.0.2"), tc.passkey)
			a.PeerID = tc.peerID
			var resp tracker.AnnounceResponse
			err := tkr.Announce(ctx, a, &resp)
			if err != tc.want {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			rec := site.Announces()
			if tc.want == nil {
				if len(rec) != 1 || rec[0].UserID != 1 || rec[0].TorrentID != 10 {
					t.Errorf("accepted announce: recorded %+v; want user 1, torrent 10", rec)
				}
				if c := counts(t, tkr, pkAlice, tc.hash); c.Incomplete != 1 {
					t.Errorf("accepted leecher not in the swarm: %+v", c)
				}
				return
			}
			if len(rec) != 0 {
				t.Errorf("refused announce: recorded %+v", rec)
			}
			if c := counts(t, tkr, pkAlice, tc.hash); c.Complete != 1 || c.Incomplete != 0 {
				t.Errorf("refused announce changed the swarm: %+v", c)
			}
		})
	}
}

// TestPrivateNeedsSite checks that a private tracker refuses a backend
// that does not know the site, and that one opened anyway answers nothing.
func TestPrivateNeedsSite(t *testing.T) {
	cfg := privateConfig()
	be, err := backend.Open("noop", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tracker.CheckBackend(cfg, be); err == nil || !strings.Contains(err.Error(), `"noop" cannot serve a private tracker`) {
		t.Errorf("CheckBackend(private, noop) = %v", err)
	}
	if err := tracker.CheckBackend(cfg, newSite()); err != nil {
		t.Errorf("CheckBackend(private, a site) = %v", err)
	}
	tkr := newTrackerWith(t, cfg, be)
	h := trackertest.Hash(1)
	if err := tkr.Announce(ctx, private(trackertest.Leecher(h, 1, "10.0.0.1"), pkAlice), &tracker.AnnounceResponse{}); err == nil {
		t.Error("announce accepted without a site")
	}
	if _, err := tkr.Scrape(ctx, pkAlice, []bittorrent.InfoHash{h}, nil); err == nil {
		t.Error("scrape answered without a site")
	}
}

// TestLeechingForbidden checks that a user who may not leech has the
// announce's traffic recorded but is kept out of the swarm (taken out if
// it was in), and is told so; seeding stays allowed.
func TestLeechingForbidden(t *testing.T) {
	tkr, site := newSiteTracker(t, privateConfig())
	mustAnnounce(t, tkr, private(trackertest.Seeder(registered, 1, "10.0.0.1"), pkAlice))
	// User 3 leeched while it could.
	site.Users[pkNoLeech] = backend.User{ID: 3, CanLeech: true}
	mustAnnounce(t, tkr, private(trackertest.Leecher(registered, 3, "10.0.0.3"), pkNoLeech))
	if c := counts(t, tkr, pkAlice, registered); c.Incomplete != 1 {
		t.Fatalf("before: %+v", c)
	}
	site.Users[pkNoLeech] = backend.User{ID: 3}

	a := private(trackertest.Leecher(registered, 3, "10.0.0.3"), pkNoLeech)
	a.Event, a.Uploaded, a.Downloaded = bittorrent.None, 300, 500
	var resp tracker.AnnounceResponse
	if err := tkr.Announce(ctx, a, &resp); err != tracker.ErrLeechingForbidden {
		t.Fatalf("error %v, want %v", err, tracker.ErrLeechingForbidden)
	}
	if resp.NumPeers() != 0 {
		t.Errorf("forbidden leecher was given %d peers", resp.NumPeers())
	}
	if c := counts(t, tkr, pkAlice, registered); c.Complete != 1 || c.Incomplete != 0 {
		t.Errorf("forbidden leecher still in the swarm: %+v", c)
	}
	rec := site.Announces()
	last := rec[len(rec)-1]
	if last.UserID != 3 || last.TorrentID != 10 || last.Uploaded != 300 || last.Downloaded != 500 || last.PeerID != trackertest.ID(3) {
		t.Errorf("the forbidden announce's traffic is not credited: %+v", last)
	}

	// Seeding needs no leave to leech.
	mustAnnounce(t, tkr, private(trackertest.Seeder(registered, 3, "10.0.0.3"), pkNoLeech))
	if c := counts(t, tkr, pkAlice, registered); c.Complete != 2 {
		t.Errorf("a seeder who may not leech is not in the swarm: %+v", c)
	}
}

// TestIntervals checks the interval, min interval and jitter clients are
// told, from the configuration or the site's own.
func TestIntervals(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		cfgJitter            time.Duration
		siteInterval, siteJi time.Duration
		lo, hi               time.Duration // every interval in [lo, hi]
	}{
		{"configuration", 0, 0, 0, 30 * time.Minute, 30 * time.Minute},
		{"configuration's jitter", 5 * time.Minute, 0, 0, 30 * time.Minute, 35*time.Minute - 1},
		{"site's interval", 0, 90 * time.Minute, 0, 90 * time.Minute, 90 * time.Minute},
		{"site's interval, configuration's jitter", 5 * time.Minute, 90 * time.Minute, 0, 90 * time.Minute, 95*time.Minute - 1},
		{"site's interval and jitter", 5 * time.Minute, 90 * time.Minute, 10 * time.Minute, 90 * time.Minute, 100*time.Minute - 1},
		{"site's jitter alone", 0, 0, 10 * time.Minute, 30 * time.Minute, 40*time.Minute - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Announce.Duration, cfg.MinAnnounce.Duration, cfg.AnnounceJitter.Duration = 30*time.Minute, 15*time.Minute, tc.cfgJitter
			tkr, site := newSiteTracker(t, cfg)
			site.Interval, site.Jitter = tc.siteInterval, tc.siteJi
			for i := range 100 {
				r := announce(t, tkr, byte(i), 1)
				if r.Interval < tc.lo || r.Interval > tc.hi || r.MinInterval != 15*time.Minute {
					t.Fatalf("interval %v, min interval %v; want an interval in [%v, %v] and min interval 15m", r.Interval, r.MinInterval, tc.lo, tc.hi)
				}
			}
		})
	}
}

// TestAnnounceJitter checks each answer's interval lies in
// [announce, announce+jitter), varies, and leaves min interval alone.
func TestAnnounceJitter(t *testing.T) {
	cfg := config.Default()
	cfg.Announce.Duration, cfg.AnnounceJitter.Duration = 30*time.Minute, 5*time.Minute
	tkr := newTracker(t, cfg)
	seen := map[time.Duration]bool{}
	var lo, hi time.Duration = time.Hour, 0
	for i := range 500 {
		r := announce(t, tkr, byte(i), 1)
		if r.Interval < 30*time.Minute || r.Interval >= 35*time.Minute || r.MinInterval != 15*time.Minute {
			t.Fatalf("interval %v, min interval %v", r.Interval, r.MinInterval)
		}
		seen[r.Interval/time.Second] = true
		lo, hi = min(lo, r.Interval), max(hi, r.Interval)
	}
	// 500 draws from 300 whole seconds: a uniform spread covers most of
	// them and both ends of the range.
	if len(seen) < 150 || lo > 31*time.Minute || hi < 34*time.Minute {
		t.Errorf("500 intervals: %d distinct seconds, from %v to %v", len(seen), lo, hi)
	}

	tkr.Reload(config.Default()) // jitter 0: every interval is announce exactly
	for i := range 50 {
		if r := announce(t, tkr, byte(i), 1); r.Interval != 30*time.Minute {
			t.Fatalf("without jitter: interval %v", r.Interval)
		}
	}
}

// TestReapLifetime checks how long Reap keeps a silent peer: the
// configured lifetime, stretched to twice the longest interval clients are
// told once the site sets its own.
func TestReapLifetime(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		peerLifetime           time.Duration
		siteInterval, siteJitt time.Duration
		want                   time.Duration
	}{
		{"twice announce", 0, 0, 0, time.Hour},
		{"peer_lifetime", 45 * time.Minute, 0, 0, 45 * time.Minute},
		{"site's interval", 0, 90 * time.Minute, 0, 3 * time.Hour},
		{"site's interval and jitter", 0, 90 * time.Minute, 10 * time.Minute, 200 * time.Minute},
		{"site's shorter interval keeps the configured lifetime", 0, 10 * time.Minute, 0, time.Hour},
		{"peer_lifetime above twice the site's interval", 5 * time.Hour, 90 * time.Minute, 0, 5 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.PeerLifetime.Duration = tc.peerLifetime
			tkr, site := newSiteTracker(t, cfg)
			site.Interval, site.Jitter = tc.siteInterval, tc.siteJitt
			h := trackertest.Hash(1)
			t0 := time.Now()
			a := trackertest.Leecher(h, 1, "10.0.0.1")
			a.Time = t0
			mustAnnounce(t, tkr, a)

			p, err := tkr.Reap(ctx, t0.Add(tc.want-time.Minute))
			if err != nil || p.Peers != [2]int{} {
				t.Fatalf("a minute before the lifetime ends: Reap = %+v, %v; want nothing reaped", p, err)
			}
			p, err = tkr.Reap(ctx, t0.Add(tc.want+time.Minute))
			if err != nil || p.Peers != [2]int{1, 0} {
				t.Fatalf("a minute after the lifetime ended: Reap = %+v, %v; want the peer reaped", p, err)
			}
			if c := counts(t, tkr, "", h); c != (tracker.Counts{}) {
				t.Errorf("after the reap: %+v", c)
			}
		})
	}
}

func TestScrapeLimits(t *testing.T) {
	hashes := func(n int) []bittorrent.InfoHash {
		out := make([]bittorrent.InfoHash, n)
		for i := range out {
			out[i] = trackertest.Hash(i)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		private bool
		passkey string
		hashes  []bittorrent.InfoHash
		want    error
	}{
		{"no info_hash", false, "", nil, tracker.ErrNoInfoHash},
		{"the maximum", false, "", hashes(4), nil},
		{"one too many", false, "", hashes(5), tracker.ErrTooManyInfoHashes},
		{"private: unknown passkey", true, "nobody", hashes(1), tracker.ErrPasskeyNotFound},
		{"private: the passkey comes first", true, "", hashes(5), tracker.ErrPasskeyNotFound},
		{"private: enabled user", true, pkAlice, hashes(4), nil},
		{"private: no info_hash", true, pkAlice, nil, tracker.ErrNoInfoHash},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			if tc.private {
				cfg = privateConfig()
			}
			cfg.MaxScrapeInfoHashes = 4
			tkr, _ := newSiteTracker(t, cfg)
			before := []tracker.Scrape{{InfoHash: trackertest.Hash(99)}}
			out, err := tkr.Scrape(ctx, tc.passkey, tc.hashes, before)
			if err != tc.want {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			want := 1
			if err == nil {
				want += len(tc.hashes)
			}
			if len(out) != want || out[0].InfoHash != trackertest.Hash(99) {
				t.Errorf("out holds %d scrapes, want the one given plus %d", len(out), want-1)
			}
		})
	}
}

// TestSiteSnatches checks that private announces and scrapes report the
// site's count of completed downloads where it has one, and the store's
// otherwise.
func TestSiteSnatches(t *testing.T) {
	complete := func(t *testing.T, tkr *tracker.Tracker, passkey string, h bittorrent.InfoHash) *tracker.AnnounceResponse {
		t.Helper()
		mustAnnounce(t, tkr, private(trackertest.Leecher(h, 1, "10.0.0.1"), passkey))
		done := private(trackertest.Seeder(h, 1, "10.0.0.1"), passkey)
		done.Event = bittorrent.Completed
		return mustAnnounce(t, tkr, done)
	}
	t.Run("private", func(t *testing.T) {
		tkr, _ := newSiteTracker(t, privateConfig())
		if r := complete(t, tkr, pkAlice, registered); r.Downloaded != 42 {
			t.Errorf("announce of a torrent the site counts: downloaded %d, want the site's 42", r.Downloaded)
		}
		if r := complete(t, tkr, pkAlice, uncounted); r.Downloaded != 1 {
			t.Errorf("announce of a torrent the site does not count: downloaded %d, want the store's 1", r.Downloaded)
		}
		out, err := tkr.Scrape(ctx, pkAlice, []bittorrent.InfoHash{registered, uncounted, unregistered}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for _, s := range out {
			got = append(got, s.Downloaded)
		}
		if !reflect.DeepEqual(got, []int{42, 1, 0}) {
			t.Errorf("scrape: downloaded %v, want [42 1 0]: the site's, the store's, none", got)
		}
	})
	t.Run("public", func(t *testing.T) {
		tkr, _ := newSiteTracker(t, config.Default())
		if r := complete(t, tkr, "", registered); r.Downloaded != 1 {
			t.Errorf("public announce: downloaded %d, want the store's 1", r.Downloaded)
		}
		if c := counts(t, tkr, "", registered); c.Downloaded != 1 {
			t.Errorf("public scrape: downloaded %d, want the store's 1", c.Downloaded)
		}
	})
}

// TestReapRecordsEmptiedSwarms checks that the site hears of each
// registered torrent a reap leaves without peers, once, whether or not the
// empty swarm is kept.
func TestReapRecordsEmptiedSwarms(t *testing.T) {
	for _, purge := range []bool{true, false} {
		t.Run(fmt.Sprintf("purge_inactive_torrents=%v", purge), func(t *testing.T) {
			cfg := privateConfig()
			cfg.PurgeInactiveTorrents = purge
			tkr, site := newSiteTracker(t, cfg)
			t0 := time.Now()
			at := func(h bittorrent.InfoHash, n int, d time.Duration) {
				a := private(trackertest.Seeder(h, n, "10.0.0.1"), pkAlice)
				a.Time = t0.Add(d)
				mustAnnounce(t, tkr, a)
			}
			at(registered, 1, 0)
			at(uncounted, 2, 0)
			at(uncounted, 3, 50*time.Minute) // keeps torrent 11 alive at the first reap

			for _, step := range []struct {
				at   time.Duration
				want []string
			}{
				{61 * time.Minute, []string{"10:0/0"}},
				{111 * time.Minute, []string{"10:0/0", "11:0/0"}},
				{200 * time.Minute, []string{"10:0/0", "11:0/0"}}, // nothing left to empty
			} {
				if _, err := tkr.Reap(ctx, t0.Add(step.at)); err != nil {
					t.Fatal(err)
				}
				got := site.Swarms()
				if !reflect.DeepEqual(got, step.want) {
					t.Errorf("after the reap at +%v: RecordSwarm calls %v, want %v", step.at, got, step.want)
				}
			}
		})
	}
}

// TestBackendRecordsAnnounces checks the backend is given each announce's
// counters as the client sent them, its typed event, the snatch the store
// counted and the swarm's counts after it.
func TestBackendRecordsAnnounces(t *testing.T) {
	tkr, site := newSiteTracker(t, config.Default())
	h := trackertest.Hash(1)
	t0 := time.Now()
	for i, tc := range []struct {
		event                      bittorrent.Event
		uploaded, downloaded, left uint64
		corrupt                    uint64
		snatched                   bool
		seeders, leechers          int
	}{
		{bittorrent.Started, 0, 0, 1000, 0, false, 0, 1},
		{bittorrent.None, 100, 400, 600, 16, false, 0, 1},
		{bittorrent.Completed, 150, 1000, 0, 16, true, 1, 0},
		{bittorrent.Completed, 150, 1000, 0, 16, false, 1, 0}, // a client repeating itself
		{bittorrent.Paused, 180, 1000, 0, 16, false, 1, 0},
		{bittorrent.Stopped, 200, 1000, 0, 16, false, 0, 0},
	} {
		a := trackertest.Leecher(h, 1, "2001:db8::1")
		a.Event, a.Uploaded, a.Downloaded, a.Left, a.Corrupt = tc.event, tc.uploaded, tc.downloaded, tc.left, tc.corrupt
		a.Time, a.UserAgent = t0.Add(time.Duration(i)*time.Second), "Transmission/4.0"
		mustAnnounce(t, tkr, a)
		rec := site.Announces()
		if len(rec) != i+1 {
			t.Fatalf("announce %d (%q): the backend has %d announces", i, tc.event, len(rec))
		}
		want := backend.Announce{
			InfoHash: h, PeerID: trackertest.ID(1), Addr: netip.MustParseAddrPort("[2001:db8::1]:1001"),
			Uploaded: tc.uploaded, Downloaded: tc.downloaded, Left: tc.left, Corrupt: tc.corrupt,
			Event: tc.event, Snatched: tc.snatched, Seeders: tc.seeders, Leechers: tc.leechers,
			Time: a.Time, UserAgent: "Transmission/4.0",
		}
		if got := rec[i]; !reflect.DeepEqual(got, want) {
			t.Errorf("announce %d (%q): recorded\n%+v\nwant\n%+v", i, tc.event, got, want)
		}
	}
}

// TestReloadKeepsSwarms checks that a reloaded configuration applies to
// the next announce and that the swarms stay as they were.
func TestReloadKeepsSwarms(t *testing.T) {
	tkr := newTracker(t, config.Default())
	announce(t, tkr, 1, 0)
	announce(t, tkr, 2, 0)
	if r := announce(t, tkr, 3, 5); r.Interval != 30*time.Minute || r.NumPeers() != 2 {
		t.Fatalf("before the reload: interval %v, %d peers", r.Interval, r.NumPeers())
	}
	next := config.Default()
	next.Announce.Duration, next.MinAnnounce.Duration, next.DefaultNumWant = 45*time.Minute, 20*time.Minute, 1
	running := tkr.Config()
	merged, _ := running.Reload(next)
	tkr.Reload(merged)
	if tkr.Config() != merged || running.Announce.Duration != 30*time.Minute {
		t.Fatal("Config does not return the reloaded configuration, or the old one changed")
	}
	r := announce(t, tkr, 3, 5)
	if r.Interval != 45*time.Minute || r.MinInterval != 20*time.Minute || r.NumPeers() != 1 || r.Complete != 2 || r.Incomplete != 1 {
		t.Errorf("after the reload: interval %v, min %v, %d peers, counts %+v", r.Interval, r.MinInterval, r.NumPeers(), r.Counts)
	}
}

// TestReloadWhileAnnouncing runs reloads against announces, for the race
// detector: the configuration is swapped whole, never changed in place.
func TestReloadWhileAnnouncing(t *testing.T) {
	tkr := newTracker(t, config.Default())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 200 {
			next := *tkr.Config()
			next.Announce.Duration = time.Duration(30+i%2) * time.Minute
			tkr.Reload(&next)
		}
	})
	for i := range 200 {
		if r := announce(t, tkr, byte(i), 1); r.Interval != 30*time.Minute && r.Interval != 31*time.Minute {
			t.Fatalf("interval %v", r.Interval)
		}
	}
	wg.Wait()
}
