package tracker_test

// What the tracker asks of its store: the Update it passes beside the
// caller's Announce, which stays as it was, and the period of the reaper.
// The helpers here are prefixed upd, to keep clear of tracker_test.go's.

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/stats"
	"github.com/chihaya/chihaya/tracker"
	"github.com/chihaya/chihaya/tracker/memory"
	"github.com/chihaya/chihaya/tracker/trackertest"
)

// updSite is a site of two users, one of whom may not leech, and one
// torrent. It can set its own announce interval, and keeps the last
// announce it was given.
type updSite struct {
	interval atomic.Int64 // a time.Duration; 0: the configuration's

	mu   sync.Mutex
	last backend.Announce
}

const (
	updLeecher   = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" // user 1
	updNoLeech   = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" // user 2, who may not leech
	updTorrentID = 10
)

var updHash = trackertest.Hash(1)

func (s *updSite) User(passkey string) (backend.User, bool) {
	switch passkey {
	case updLeecher:
		return backend.User{ID: 1, CanLeech: true}, true
	case updNoLeech:
		return backend.User{ID: 2}, true
	}
	return backend.User{}, false
}

func (s *updSite) Torrent(h bittorrent.InfoHash) (backend.Torrent, bool, string) {
	return backend.Torrent{ID: updTorrentID}, h == updHash, ""
}

func (s *updSite) ClientAllowed(bittorrent.PeerID) bool { return true }

func (s *updSite) AnnounceInterval() (time.Duration, bool) {
	d := time.Duration(s.interval.Load())
	return d, d != 0
}

func (s *updSite) AnnounceJitter() (time.Duration, bool) { return 0, false }

func (s *updSite) RecordAnnounce(a backend.Announce) error {
	s.mu.Lock()
	s.last = a
	s.mu.Unlock()
	return nil
}

func (s *updSite) lastAnnounce() backend.Announce {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func (s *updSite) Close() error { return nil }

var (
	_ backend.Site      = (*updSite)(nil)
	_ backend.Intervals = (*updSite)(nil)
)

// updPool counts the expiry passes run on its store.
type updPool struct {
	tracker.Pool
	purges atomic.Int32
}

type updConn struct {
	tracker.Conn
	pool *updPool
}

func (p *updPool) Get() (tracker.Conn, error) {
	c, err := p.Pool.Get()
	return updConn{c, p}, err
}

func (c updConn) Purge(ctx context.Context, before time.Time, purgeEmpty bool) (tracker.Purged, error) {
	c.pool.purges.Add(1)
	return c.Conn.Purge(ctx, before, purgeEmpty)
}

// updPrivate is config.Default in private mode.
func updPrivate() *config.Config {
	cfg := config.Default()
	cfg.Private, cfg.TrackerSecret = true, "cccccccccccccccccccccccccccccccc"
	return cfg
}

// updTracker returns a tracker over pool, or a new memory store if pool is
// nil, and an updSite. It is closed when the test ends.
func updTracker(t *testing.T, cfg *config.Config, pool tracker.Pool) (*tracker.Tracker, *updSite) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if pool == nil {
		pool = memory.New(memory.Params{Shards: 1, Private: cfg.Private})
	}
	site := &updSite{}
	st := stats.New()
	tkr := tracker.New(cfg, pool, site, st)
	t.Cleanup(func() { tkr.Close(); st.Close() })
	return tkr, site
}

func updScrape(t *testing.T, tkr *tracker.Tracker, passkey string) tracker.Counts {
	t.Helper()
	out, err := tkr.Scrape(context.Background(), passkey, []bittorrent.InfoHash{updHash}, nil)
	if err != nil || len(out) != 1 {
		t.Fatalf("Scrape = %v, %v", out, err)
	}
	return out[0].Counts
}

// TestAnnounceLeavesItsAnnounce: Tracker.Announce never changes the
// caller's Announce, not even for a user it keeps out of the swarm, while
// the store applies what the tracker decided and the backend is told what
// the client said.
func TestAnnounceLeavesItsAnnounce(t *testing.T) {
	private := updPrivate()
	for _, tc := range []struct {
		name    string
		cfg     *config.Config
		passkey string
		event   bittorrent.Event
		err     error
		want    tracker.Counts // the swarm's, after the announce
		userID  uint32         // the backend's UserID
	}{
		{"public", config.Default(), "", bittorrent.Started, nil, tracker.Counts{Complete: 1, Incomplete: 1}, 0},
		{"public stopped", config.Default(), "", bittorrent.Stopped, nil, tracker.Counts{Complete: 1}, 0},
		{"private", private, updLeecher, bittorrent.Started, nil, tracker.Counts{Complete: 1, Incomplete: 1}, 1},
		{"private, may not leech", private, updNoLeech, bittorrent.Started, tracker.ErrLeechingForbidden, tracker.Counts{Complete: 1}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tkr, site := updTracker(t, tc.cfg, nil)
			seeder := trackertest.Seeder(updHash, 1, "10.0.0.1")
			seeder.Passkey = updLeecher
			var resp tracker.AnnounceResponse
			if err := tkr.Announce(context.Background(), seeder, &resp); err != nil {
				t.Fatal(err)
			}

			a := trackertest.Leecher(updHash, 2, "10.0.0.2")
			a.Passkey, a.Event = tc.passkey, tc.event
			before := *a
			if err := tkr.Announce(context.Background(), a, &resp); err != tc.err {
				t.Fatalf("Announce: error %v, want %v", err, tc.err)
			}
			if *a != before {
				t.Errorf("Announce changed the caller's announce from %+v to %+v", before, *a)
			}
			if got := updScrape(t, tkr, updLeecher); got != tc.want {
				t.Errorf("swarm %+v, want %+v", got, tc.want)
			}
			if b := site.lastAnnounce(); b.PeerID != a.PeerID || b.Event != tc.event || b.UserID != tc.userID {
				t.Errorf("the backend was told %+v, want event %v of user %d", b, tc.event, tc.userID)
			}
		})
	}
}

// TestAnnounceSharesItsAnnounce: since Announce only reads its Announce,
// announces may share one; the race detector checks that no write, however
// brief, happens (once the tracker kept a user out of the swarm by
// rewriting the event, and filled the user id in).
func TestAnnounceSharesItsAnnounce(t *testing.T) {
	tkr, _ := updTracker(t, updPrivate(), nil)
	a := trackertest.Leecher(updHash, 2, "10.0.0.2")
	a.Passkey = updNoLeech
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			var resp tracker.AnnounceResponse
			for range 100 {
				if err := tkr.Announce(context.Background(), a, &resp); err != tracker.ErrLeechingForbidden {
					t.Errorf("Announce: error %v, want %v", err, tracker.ErrLeechingForbidden)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestAnnounceRemovesEmptiedSwarm: with purge_inactive_torrents, the stop
// of a swarm's last peer removes the swarm, and /stats counts it in
// Torrents.Removed; without, the swarm stays with its download count.
func TestAnnounceRemovesEmptiedSwarm(t *testing.T) {
	for _, purge := range []bool{true, false} {
		cfg := config.Default()
		cfg.PurgeInactiveTorrents = purge
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		site := &updSite{}
		st := stats.New()
		tkr := tracker.New(cfg, memory.New(memory.Params{Shards: 1}), site, st)
		var resp tracker.AnnounceResponse
		done := trackertest.Seeder(updHash, 1, "10.0.0.1")
		done.Event = bittorrent.Completed
		stop := trackertest.Seeder(updHash, 1, "10.0.0.1")
		stop.Event = bittorrent.Stopped
		for _, a := range []*tracker.Announce{trackertest.Leecher(updHash, 1, "10.0.0.1"), done, stop} {
			if err := tkr.Announce(context.Background(), a, &resp); err != nil {
				t.Fatal(err)
			}
		}
		want, removed := tracker.Counts{Downloaded: 1}, int64(0)
		if purge {
			want, removed = tracker.Counts{}, 1
		}
		if got := updScrape(t, tkr, ""); got != want {
			t.Errorf("purge_inactive_torrents %v: swarm %+v after its last peer stopped, want %+v", purge, got, want)
		}
		if s := st.Snapshot(); s.TorrentsRemoved != removed || s.Torrents != 1-removed {
			t.Errorf("purge_inactive_torrents %v: stats count %d torrents removed, %d left; want %d, %d", purge, s.TorrentsRemoved, s.Torrents, removed, 1-removed)
		}
		tkr.Close()
		st.Close()
	}
}

// TestTrackerAnnounceAllocatesNothing: the announce path, public and
// private, allocates nothing once warm.
func TestTrackerAnnounceAllocatesNothing(t *testing.T) {
	private := updPrivate()
	for _, cfg := range []*config.Config{config.Default(), private} {
		tkr, _ := updTracker(t, cfg, nil)
		for n := range 60 {
			a := trackertest.Leecher(updHash, n, "10.0.0.1")
			a.Passkey = updLeecher
			var resp tracker.AnnounceResponse
			if err := tkr.Announce(context.Background(), a, &resp); err != nil {
				t.Fatal(err)
			}
		}
		a := trackertest.Leecher(updHash, 7, "10.0.0.1")
		a.Passkey, a.Event = updLeecher, bittorrent.None
		var resp tracker.AnnounceResponse
		ctx := context.Background()
		tkr.Announce(ctx, a, &resp) // grow resp's buffers
		if n := testing.AllocsPerRun(200, func() {
			if err := tkr.Announce(ctx, a, &resp); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("private %v: an announce allocates %v times", cfg.Private, n)
		}
	}
}

// TestRunReaperTicksOnTheLifetime: the reaper runs four times per peer
// lifetime, the lifetime Reap expires peers by: stretched by the site's
// interval, and following it when the site changes it.
func TestRunReaperTicksOnTheLifetime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config.Default() // a lifetime of twice 30m: ticks every 15m
		pool := &updPool{Pool: memory.New(memory.Params{Shards: 1})}
		tkr, site := updTracker(t, cfg, pool)
		site.interval.Store(int64(90 * time.Minute)) // a lifetime of 3h: every 45m
		start := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		go func() {
			tkr.RunReaper(ctx)
			close(stopped)
		}()
		defer func() { cancel(); <-stopped }()
		for _, step := range []struct {
			wait   time.Duration
			purges int32
			then   time.Duration // the site's interval from then on
		}{
			{45*time.Minute - time.Second, 0, 90 * time.Minute}, // not at 15m, 30m
			{time.Second, 1, 0},                  // at 45m; the site's interval goes
			{45*time.Minute - time.Second, 1, 0}, // the next pass is still the old period's
			{time.Second, 2, 0},                  // at 90m, where it takes up 15m
			{15 * time.Minute, 3, 0},
			{15 * time.Minute, 4, 0},
		} {
			time.Sleep(step.wait)
			synctest.Wait()
			if got := pool.purges.Load(); got != step.purges {
				t.Fatalf("after %v: %d passes, want %d", time.Since(start), got, step.purges)
			}
			site.interval.Store(int64(step.then))
		}
	})
}
