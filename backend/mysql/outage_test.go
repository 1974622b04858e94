package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/internal/mariadbtest"
)

// The database goes away mid-run and comes back: announces are recorded
// all along without waiting, failed flushes keep their rows queued, and
// once the database is back every byte is credited exactly once.
func TestOutageLosesAndDoublesNothing(t *testing.T) {
	srv := mariadbtest.StartServer(t)
	s := newSiteOn(t, srv, SchemaLeechStats)
	uids := []uint32{s.addUser(1), s.addUser(2), s.addUser(3)}
	tid := s.addTorrent(1, "0")
	sep := "?"
	if strings.Contains(s.dsn, "?") {
		sep = "&"
	}
	c := s.open(map[string]any{"dsn": s.dsn + sep + "timeout=1s&readTimeout=2s&writeTimeout=2s"})

	counters := map[uint32]uint64{}
	var want int64
	step := func(rounds int) {
		for range rounds {
			for i, uid := range uids {
				a := announce{uid: uid, tid: tid, torrent: 1, peer: i, left: 1}
				if _, ok := counters[uid]; !ok {
					a.event = bittorrent.Started
				} else {
					counters[uid] += 1000 * uint64(i+1)
					want += 1000 * int64(i+1)
				}
				a.up = counters[uid]
				record(t, c, a)
			}
		}
	}
	step(3)
	flush(t, c)
	if up, _ := s.totalCredit(); up != want {
		t.Fatalf("before the outage: %d credited, want %d", up, want)
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	step(5)
	if d := time.Since(start); d > time.Second {
		t.Errorf("recording 15 announces with the database down took %v", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	err := c.Flush(ctx)
	cancel()
	if err == nil {
		t.Fatal("a flush with the database down succeeded")
	}
	if c.FlushErrors() == 0 || c.QueueDepth() == 0 {
		t.Fatalf("FlushErrors %d, QueueDepth %d", c.FlushErrors(), c.QueueDepth())
	}
	step(2) // more while down, on top of the rows given back
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	if err := c.Flush(ctx); err == nil {
		t.Fatal("a second flush with the database down succeeded")
	}
	cancel()

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a flush to succeed", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return c.Flush(ctx) == nil && c.QueueDepth() == 0
	})
	if up, _ := s.totalCredit(); up != want {
		t.Errorf("after the outage: %d credited, want %d", up, want)
	}
	for i, uid := range uids {
		if up, _ := s.credit(uid); uint64(up) != counters[uid] {
			t.Errorf("user %d (%d): %d credited, want %d", i, uid, up, counters[uid])
		}
	}
	// The xbt_files_users counters are the last announced ones.
	if got := s.int("SELECT uploaded FROM xbt_files_users WHERE uid = ?", uids[2]); uint64(got) != counters[uids[2]] {
		t.Errorf("xbt_files_users.uploaded %d, want %d", got, counters[uids[2]])
	}
}

// A flush whose COMMIT gets no answer is settled by the next flush: not
// written again if it did commit, written again if it did not.
func TestUnansweredCommit(t *testing.T) {
	for _, tc := range []struct {
		name      string
		committed bool
	}{{"committed", true}, {"rolled back", false}} {
		t.Run(tc.name, func(t *testing.T) {
			s, uid, tid := newSiteWithOne(t, SchemaLeechStats)
			c := s.open(nil)
			record(t, c,
				announce{uid: uid, tid: tid, torrent: 1, peer: 1, left: 1, event: bittorrent.Started},
				announce{uid: uid, tid: tid, torrent: 1, peer: 1, up: 100, down: 10, left: 1, event: bittorrent.Completed, snatched: true},
			)
			c.commit = func(tx *sql.Tx) error {
				if tc.committed {
					if err := tx.Commit(); err != nil {
						return err
					}
				} else {
					tx.Rollback()
				}
				return driver.ErrBadConn // the answer is lost
			}
			if err := c.Flush(t.Context()); err == nil {
				t.Fatal("the flush reported success")
			}
			if c.QueueDepth() == 0 {
				t.Fatal("the doubtful rows are not counted as queued")
			}
			c.commit = func(tx *sql.Tx) error { return tx.Commit() }
			// Another tracker on the same database flushes meanwhile (as in
			// an overlapping restart): its flushes do not confuse this one's.
			other := s.open(nil)
			uid2 := s.addUser(2)
			record(t, other,
				announce{uid: uid2, tid: tid, torrent: 1, peer: 2, left: 1, event: bittorrent.Started},
				announce{uid: uid2, tid: tid, torrent: 1, peer: 2, up: 9, left: 1},
			)
			flush(t, other)
			// More traffic meanwhile.
			record(t, c, announce{uid: uid, tid: tid, torrent: 1, peer: 1, up: 150, down: 10})
			flush(t, c)
			if up, down := s.credit(uid); up != 150 || down != 10 {
				t.Errorf("credited %d/%d, want 150/10", up, down)
			}
			if n := s.int("SELECT COUNT(*) FROM xbt_snatched"); n != 1 {
				t.Errorf("%d snatches, want 1", n)
			}
			if f := s.torrentFigures(tid); f.snatched != 1 {
				t.Errorf("Snatched %d, want 1", f.snatched)
			}
			if up, _ := s.credit(uid2); up != 9 {
				t.Errorf("the other tracker credited %d, want 9", up)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if err := other.Close(); err != nil {
				t.Fatal(err)
			}
			if n := s.int("SELECT COUNT(*) FROM chihaya_flush"); n != 0 {
				t.Errorf("%d flush log rows left after Close", n)
			}
		})
	}
}

// A statement failing for a reason that is not the data's (here a lock
// wait timeout) fails the whole flush; its rows are written by the next.
func TestFailedFlushIsRetriedWhole(t *testing.T) {
	s, uid, tid := newSiteWithOne(t, SchemaLeechStats)
	c := s.open(nil)
	record(t, c,
		announce{uid: uid, tid: tid, torrent: 1, peer: 1, left: 1, event: bittorrent.Started},
		announce{uid: uid, tid: tid, torrent: 1, peer: 1, up: 100, down: 10, left: 1},
	)
	// Another session holds the torrent's stats row.
	lock, err := s.db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec("UPDATE torrents_leech_stats SET Balance = 5 WHERE TorrentID = ?", tid); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	err = c.Flush(ctx)
	cancel()
	if err == nil {
		t.Fatal("the flush went through a locked row")
	}
	lock.Rollback()
	if up, _ := s.credit(uid); up != 0 {
		t.Errorf("the failed flush credited %d", up)
	}
	flush(t, c)
	if up, down := s.credit(uid); up != 100 || down != 10 {
		t.Errorf("credited %d/%d, want 100/10", up, down)
	}
	if c.FlushErrors() != 1 {
		t.Errorf("FlushErrors %d, want 1", c.FlushErrors())
	}
}

// Close writes everything queued.
func TestCloseFlushes(t *testing.T) {
	s, uid, tid := newSiteWithOne(t, SchemaClassic)
	c := s.open(nil) // flush_interval 1h: only Close flushes
	record(t, c,
		announce{uid: uid, tid: tid, torrent: 1, peer: 1, left: 1, event: bittorrent.Started},
		announce{uid: uid, tid: tid, torrent: 1, peer: 1, up: 4096, down: 1024, left: 0, event: bittorrent.Completed, snatched: true},
	)
	if up, _ := s.credit(uid); up != 0 {
		t.Fatal("written before Close")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if up, down := s.credit(uid); up != 4096 || down != 1024 {
		t.Errorf("credited %d/%d, want 4096/1024", up, down)
	}
	if n := s.int("SELECT COUNT(*) FROM xbt_snatched"); n != 1 {
		t.Errorf("%d snatches", n)
	}
	if err := c.RecordAnnounce(announce{uid: uid, tid: tid, torrent: 1, peer: 1}.backend()); !errors.Is(err, ErrClosed) {
		t.Errorf("RecordAnnounce after Close: %v", err)
	}
}

// The background flusher writes without being asked.
func TestBackgroundFlush(t *testing.T) {
	s, uid, tid := newSiteWithOne(t, SchemaLeechStats)
	c := s.open(map[string]any{"flush_interval": "20ms"})
	record(t, c,
		announce{uid: uid, tid: tid, torrent: 1, peer: 1, left: 1, event: bittorrent.Started},
		announce{uid: uid, tid: tid, torrent: 1, peer: 1, up: 5, down: 6, left: 1},
	)
	waitFor(t, "the background flush", func() bool { up, _ := s.credit(uid); return up == 5 })
}

// A tracker restart (Close, then Open on the same database) loses no
// credit: the first announce after it is credited against the counters of
// the last one before it, which Ocelot would have lost.
func TestRestartKeepsCredit(t *testing.T) {
	bothSchemas(t, func(t *testing.T, schema string) {
		s, uid, tid := newSiteWithOne(t, schema)
		c := s.open(nil)
		record(t, c,
			announce{uid: uid, tid: tid, torrent: 1, peer: 1, left: 100, event: bittorrent.Started},
			announce{uid: uid, tid: tid, torrent: 1, peer: 1, up: 1000, down: 100, left: 100},
			// A peer that stopped is not restored: its next announce is a
			// new session.
			announce{uid: uid, tid: tid, torrent: 1, peer: 2, left: 100, event: bittorrent.Started},
			announce{uid: uid, tid: tid, torrent: 1, peer: 2, up: 10, left: 100, event: bittorrent.Stopped},
		)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		s.exec("UPDATE " + c.q.torrentTable() + " SET Seeders = 9, Leechers = 9")

		c2 := s.open(nil)
		if f := s.torrentFigures(tid); f.seeders != 0 || f.leechers != 0 {
			t.Errorf("seeders/leechers not reset at start: %+v", f)
		}
		record(t, c2,
			announce{uid: uid, tid: tid, torrent: 1, peer: 1, up: 3000, down: 300, left: 50},
			announce{uid: uid, tid: tid, torrent: 1, peer: 2, up: 500, left: 100},
		)
		flush(t, c2)
		if up, down := s.credit(uid); up != 3010 || down != 300 {
			t.Errorf("credited %d/%d, want 3010/300", up, down)
		}
		if got := s.int("SELECT announced FROM xbt_files_users WHERE uid = ? AND peer_id = ?", uid, pid(1)); got != 3 {
			t.Errorf("announced %d, want 3 (counted across the restart)", got)
		}
		// The balance survives too: 1000-100 +10, then +2000-200.
		if f := s.torrentFigures(tid); f.balance != 2710 {
			t.Errorf("balance %d, want 2710", f.balance)
		}
	})
}
