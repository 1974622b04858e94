package tracker_test

// What the tracker asks of its store: the Update it passes beside the
// caller's Announce, which stays as it was, and the expiry passes of the
// reaper. The site and helpers are tracker_test.go's.

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/stats"
	"github.com/chihaya/chihaya/tracker"
	"github.com/chihaya/chihaya/tracker/memory"
	"github.com/chihaya/chihaya/tracker/trackertest"
)

// TestAnnounceLeavesItsAnnounce: Tracker.Announce never changes the
// caller's Announce, not even for a user it keeps out of the swarm, while
// the store applies what the tracker decided and the backend is told what
// the client said.
func TestAnnounceLeavesItsAnnounce(t *testing.T) {
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
		{"private", privateConfig(), pkAlice, bittorrent.Started, nil, tracker.Counts{Complete: 1, Incomplete: 1}, 1},
		{"private, may not leech", privateConfig(), pkNoLeech, bittorrent.Started, tracker.ErrLeechingForbidden, tracker.Counts{Complete: 1}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tkr, site := newSiteTracker(t, tc.cfg)
			mustAnnounce(t, tkr, private(trackertest.Seeder(uncounted, 1, "10.0.0.1"), pkAlice))

			a := private(trackertest.Leecher(uncounted, 2, "10.0.0.2"), tc.passkey)
			a.Event = tc.event
			before := *a
			var resp tracker.AnnounceResponse
			if err := tkr.Announce(ctx, a, &resp); err != tc.err {
				t.Fatalf("Announce: error %v, want %v", err, tc.err)
			}
			if *a != before {
				t.Errorf("Announce changed the caller's announce from %+v to %+v", before, *a)
			}
			if got := counts(t, tkr, pkAlice, uncounted); got != tc.want {
				t.Errorf("swarm %+v, want %+v", got, tc.want)
			}
			rec := site.Announces()
			if b := rec[len(rec)-1]; b.PeerID != a.PeerID || b.Event != tc.event || b.UserID != tc.userID {
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
	tkr, _ := newSiteTracker(t, privateConfig())
	a := private(trackertest.Leecher(uncounted, 3, "10.0.0.3"), pkNoLeech)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			var resp tracker.AnnounceResponse
			for range 100 {
				if err := tkr.Announce(ctx, a, &resp); err != tracker.ErrLeechingForbidden {
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
		st := stats.New()
		tkr := tracker.New(cfg, memory.New(memory.Params{Shards: 1}), newSite(), st)
		h := trackertest.Hash(1)
		done := trackertest.Seeder(h, 1, "10.0.0.1")
		done.Event = bittorrent.Completed
		stop := trackertest.Seeder(h, 1, "10.0.0.1")
		stop.Event = bittorrent.Stopped
		for _, a := range []*tracker.Announce{trackertest.Leecher(h, 1, "10.0.0.1"), done, stop} {
			mustAnnounce(t, tkr, a)
		}
		want, removed := tracker.Counts{Downloaded: 1}, int64(0)
		if purge {
			want, removed = tracker.Counts{}, 1
		}
		if got := counts(t, tkr, "", h); got != want {
			t.Errorf("purge_inactive_torrents %v: swarm %+v after its last peer stopped, want %+v", purge, got, want)
		}
		if s := st.Snapshot(); s.TorrentsRemoved != removed || s.Torrents != 1-removed {
			t.Errorf("purge_inactive_torrents %v: stats count %d torrents removed, %d left; want %d, %d", purge, s.TorrentsRemoved, s.Torrents, removed, 1-removed)
		}
		tkr.Close()
		st.Close()
	}
}

// purgeCounter counts the expiry passes run on its store.
type purgeCounter struct {
	tracker.Pool
	purges atomic.Int32
}

type purgeCounterConn struct {
	tracker.Conn
	pool *purgeCounter
}

func (p *purgeCounter) Get() (tracker.Conn, error) {
	c, err := p.Pool.Get()
	return purgeCounterConn{c, p}, err
}

func (c purgeCounterConn) Purge(ctx context.Context, before time.Time, purgeEmpty bool) (tracker.Purged, error) {
	c.pool.purges.Add(1)
	return c.Conn.Purge(ctx, before, purgeEmpty)
}

// intervalSite is a trackertest.Site whose interval may change while the
// reaper reads it.
type intervalSite struct {
	*trackertest.Site
	interval atomic.Int64 // a time.Duration
}

func (s *intervalSite) AnnounceInterval() (time.Duration, bool) {
	d := time.Duration(s.interval.Load())
	return d, d != 0
}

// TestRunReaperTicksOnTheLifetime: the reaper runs four times per peer
// lifetime, the lifetime Reap expires peers by: stretched by the site's
// interval, and following it when the site changes it.
func TestRunReaperTicksOnTheLifetime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		site := &intervalSite{Site: newSite()}
		site.interval.Store(int64(90 * time.Minute)) // a lifetime of 3h: a pass every 45m
		pool := &purgeCounter{Pool: memory.New(memory.Params{Shards: 1})}
		st := stats.New()
		// The configured lifetime, twice 30m, would be a pass every 15m.
		tkr := tracker.New(config.Default(), pool, site, st)
		defer st.Close()
		defer tkr.Close()

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
			synctest.Wait() // the reaper has done what it had to, and waits
			if got := pool.purges.Load(); got != step.purges {
				t.Fatalf("after %v: %d passes, want %d", time.Since(start), got, step.purges)
			}
			site.interval.Store(int64(step.then))
		}
	})
}
