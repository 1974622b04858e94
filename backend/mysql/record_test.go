package mysql

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/chihaya/chihaya/backend"
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

// Announces never wait for the database: recording is a few map
// operations, even with a big queue.
func TestRecordAnnounceIsCheap(t *testing.T) {
	s, uid, tid := newSiteWithOne(t, SchemaLeechStats)
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

// memConn is a Conn with no database behind it, for what RecordAnnounce
// does in memory: user uid and torrent n (id tid, freeleech type free) are
// loaded; queue_limit is limit.
func memConn(t *testing.T, limit int, uid uint32, n int, tid uint32, free backend.FreeType) *Conn {
	t.Helper()
	c := &Conn{}
	c.acc.init(limit, &c.dropped)
	c.site.init()
	u := &user{id: uid, canLeech: true}
	c.site.users[passkey(int(uid))], c.site.byID[uid] = u, u
	c.site.torrents[hash(n)] = &torrent{id: tid, free: free, tokened: map[uint32]struct{}{}}
	return c
}

// RecordAnnounce keeps each peer's baseline from one announce to the
// next, as the credit rules need it: the first announce and "started" set
// it without credit, counters that go back re-baseline, corrupt bytes
// count against the torrent's balance only. (The rules themselves are
// TestCreditRules'.)
func TestDeltaRules(t *testing.T) {
	const uid, tid = 1, 11
	c := memConn(t, 100, uid, 1, tid, backend.Normal)
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
	if r := c.acc.Pending.users[uid]; r != (userRow{up: 260, down: 150}) {
		t.Errorf("queued credit %+v, want 260/150", r)
	}
	// balance = Σup − Σdown − corrupt = 260 − 150 − 7
	if b := c.acc.Pending.torrents[tid].balance; b != 103 {
		t.Errorf("queued balance %d, want 103", b)
	}
	if r := c.acc.Pending.peers[peerKey{tid: tid, uid: uid, peerID: peerID(1)}]; r.announced != 2 || r.up != 5010 || r.corrupt != 7 {
		t.Errorf("peer row %+v, want the session's second announce with the raw counters", r)
	}
	// Stopped credits its delta and forgets the peer: its next announce
	// starts a session.
	step(5110, 5020, 7, bittorrent.Stopped)
	step(9000, 9000, 7, bittorrent.None)
	if r := c.acc.Pending.users[uid]; r != (userRow{up: 360, down: 150}) {
		t.Errorf("queued credit %+v after stopped, want 360/150", r)
	}
}

// A table at queue_limit takes no new key (the row is dropped and
// counted) but still aggregates the keys it holds, and the peer's
// baseline moves on either way: nothing is credited twice later.
func TestQueueLimit(t *testing.T) {
	const uid, tid = 1, 11
	c := memConn(t, 2, uid, 1, tid, backend.Normal)
	for peer := range 3 {
		record(t, c, announce{uid: uid, tid: tid, torrent: 1, peer: peer, left: 10, event: bittorrent.Started})
	}
	if n, d := len(c.acc.Pending.peers), c.dropped.Load(); n != 2 || d != 1 {
		t.Fatalf("%d peer rows queued, %d dropped; want 2 and 1", n, d)
	}
	for peer := range 3 {
		record(t, c, announce{uid: uid, tid: tid, torrent: 1, peer: peer, up: 100, left: 10})
	}
	if n, d := len(c.acc.Pending.peers), c.dropped.Load(); n != 2 || d != 2 {
		t.Errorf("%d peer rows queued, %d dropped; want 2 and 2", n, d)
	}
	if r := c.acc.Pending.users[uid]; r.up != 300 {
		t.Errorf("queued credit %+v, want 300 up (peer 2's row was dropped, not its credit)", r)
	}
	if r := c.acc.Pending.torrents[tid]; r.balance != 300 {
		t.Errorf("torrent row %+v, want balance 300", r)
	}
}
