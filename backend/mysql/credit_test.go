package mysql

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
)

// Many users, torrents and peers announce concurrently, with flushes in
// between: every user is credited exactly the traffic its clients made,
// whatever the interleaving.
func TestCreditEqualsRealTraffic(t *testing.T) {
	bothSchemas(t, func(t *testing.T, schema string) {
		s := newSite(t, schema)
		const users, torrents, peersPerUser, sessions, announcesPerSession = 12, 6, 3, 3, 8
		uids := make([]uint32, users)
		for i := range uids {
			uids[i] = s.addUser(i)
		}
		tids := make([]uint32, torrents)
		for i := range tids {
			tids[i] = s.addTorrent(i, "0")
		}
		c := s.open(nil)

		wantUp := make([]int64, users)
		wantDown := make([]int64, users)
		var wg sync.WaitGroup
		for u := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(u), 7))
				for p := range peersPerUser {
					tor := rng.IntN(torrents)
					peer := u*100 + p
					for range sessions {
						// A session: started at zero, traffic, then stopped
						// (the stopped announce's traffic counts too).
						var up, down uint64
						record(t, c, announce{uid: uids[u], tid: tids[tor], torrent: tor, peer: peer, left: 1000, event: bittorrent.Started})
						for i := range announcesPerSession {
							du, dd := uint64(rng.IntN(1<<20)), uint64(rng.IntN(1<<20))
							up, down = up+du, down+dd
							wantUp[u] += int64(du)
							wantDown[u] += int64(dd)
							ev := bittorrent.None
							if i == announcesPerSession-1 {
								ev = bittorrent.Stopped
							}
							record(t, c, announce{uid: uids[u], tid: tids[tor], torrent: tor, peer: peer, up: up, down: down, left: 1000, event: ev})
						}
					}
				}
			}()
		}
		// Flushes race the announces.
		stop := make(chan struct{})
		flushed := make(chan struct{})
		go func() {
			defer close(flushed)
			for {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					if err := c.Flush(ctx); err != nil {
						t.Errorf("flush: %v", err)
					}
					cancel()
				}
			}
		}()
		wg.Wait()
		close(stop)
		<-flushed
		flush(t, c)

		var totalUp, totalDown int64
		for u, uid := range uids {
			up, down := s.credit(uid)
			if up != wantUp[u] || down != wantDown[u] {
				t.Errorf("user %d credited %d/%d, made %d/%d", uid, up, down, wantUp[u], wantDown[u])
			}
			totalUp += up
			totalDown += down
		}
		if up, down := s.totalCredit(); up != totalUp || down != totalDown {
			t.Errorf("site total %d/%d, users' %d/%d", up, down, totalUp, totalDown)
		}
		if c.FlushErrors() != 0 || c.DroppedRows() != 0 {
			t.Errorf("%d flush errors, %d rows dropped", c.FlushErrors(), c.DroppedRows())
		}
		// Every session ended with stopped: no peer is active any more.
		if n := s.int("SELECT COUNT(*) FROM xbt_files_users WHERE active = 1"); n != 0 {
			t.Errorf("%d xbt_files_users rows still active", n)
		}
	})
}

// Ocelot's delta rules: the first announce and "started" set the baseline
// without credit, counters that go back re-baseline, corrupt bytes count
// against the torrent's balance only.
func TestDeltaRules(t *testing.T) {
	bothSchemas(t, func(t *testing.T, schema string) {
		s := newSite(t, schema)
		uid := s.addUser(1)
		tid := s.addTorrent(1, "0")
		c := s.open(nil)
		a := announce{uid: uid, tid: tid, torrent: 1, peer: 1, left: 10}
		step := func(up, down, corrupt uint64, event bittorrent.Event) {
			a.up, a.down, a.event = up, down, event
			b := a.backend()
			b.Corrupt = corrupt
			if err := c.RecordAnnounce(b); err != nil {
				t.Fatal(err)
			}
		}
		step(500, 500, 0, bittorrent.None)      // first seen mid-session: baseline only
		step(700, 600, 0, bittorrent.None)      // +200/+100
		step(100, 50, 0, bittorrent.None)       // client restarted without "started": baseline
		step(150, 80, 0, bittorrent.None)       // +50/+30
		step(5000, 5000, 0, bittorrent.Started) // a new session: baseline
		step(5010, 5020, 7, bittorrent.None)    // +10/+20, 7 corrupt
		flush(t, c)
		if up, down := s.credit(uid); up != 260 || down != 150 {
			t.Errorf("credited %d/%d, want 260/150", up, down)
		}
		// balance = Σup − Σdown − corrupt = 260 − 150 − 7
		if f := s.torrentFigures(tid); f.balance != 103 {
			t.Errorf("balance %d, want 103", f.balance)
		}
	})
}

// Announces never wait for the database: recording is a few map
// operations, even with a big queue.
func TestRecordAnnounceIsCheap(t *testing.T) {
	s := newSite(t, SchemaLeechStats)
	uid := s.addUser(1)
	tid := s.addTorrent(1, "0")
	c := s.open(nil)
	b := announce{uid: uid, tid: tid, torrent: 1, left: 1}.backend()
	start := time.Now()
	const n = 20000
	for i := range n {
		b.PeerID = peerID(i)
		b.Uploaded = uint64(i)
		if err := c.RecordAnnounce(b); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("%d announces took %v", n, d)
	}
	if got := c.QueueDepth(); got != n+1 { // n peer rows, one torrent row
		t.Errorf("QueueDepth %d, want %d", got, n+1)
	}
	flush(t, c)
	if got := s.int("SELECT COUNT(*) FROM xbt_files_users"); got != n {
		t.Errorf("%d xbt_files_users rows, want %d", got, n)
	}
}
