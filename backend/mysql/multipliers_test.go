package mysql

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/bittorrent"
)

// addMultiplierColumns adds the four columns of the param multipliers, as
// a site would: DECIMAL on users_main, FLOAT on torrents, both nullable.
func (s *site) addMultiplierColumns() {
	s.t.Helper()
	s.exec("ALTER TABLE users_main ADD COLUMN UpMultiplier DECIMAL(8,4) NULL, ADD COLUMN DownMultiplier DECIMAL(8,4) NULL")
	s.exec("ALTER TABLE torrents ADD COLUMN UpMultiplier FLOAT NULL, ADD COLUMN DownMultiplier FLOAT NULL")
}

// session records a started announce and one with traffic up/down.
func session(t *testing.T, c *Conn, uid, tid uint32, n, peer int, up, down uint64) {
	t.Helper()
	record(t, c,
		announce{uid: uid, tid: tid, torrent: n, peer: peer, left: 100, event: bittorrent.Started},
		announce{uid: uid, tid: tid, torrent: n, peer: peer, up: up, down: down, left: 100},
	)
}

// Off (the default): the multiplier columns, present or not, change
// nothing; the queries are Ocelot's.
func TestMultipliersOff(t *testing.T) {
	bothSchemas(t, func(t *testing.T, schema string) {
		if q := queriesFor(schema, false); q != queriesFor(schema, false) || q.multipliers ||
			strings.Contains(q.users+q.torrents, "Multiplier") {
			t.Errorf("queries with multipliers off: %+v", q)
		}
		for _, columns := range []bool{false, true} {
			s, uid, tid := newSiteWithOne(t, schema)
			if columns {
				s.addMultiplierColumns()
				s.exec("UPDATE users_main SET UpMultiplier = 2, DownMultiplier = 0.5")
				s.exec("UPDATE torrents SET UpMultiplier = 1.5, DownMultiplier = 3")
			}
			c := s.open(map[string]any{"multipliers": false})
			session(t, c, uid, tid, 1, 1, 1001, 333)
			flush(t, c)
			if up, down := s.credit(uid); up != 1001 || down != 333 {
				t.Errorf("columns %v: credited %d/%d, want the raw 1001/333", columns, up, down)
			}
		}
	})
}

// On: credit is Δ × user's × torrent's multiplier, after the freeleech,
// neutral and token rules; NULL is 1.0, a negative multiplier 0; the
// token's Downloaded, the torrent's balance and xbt_files_users stay raw.
func TestMultipliersOn(t *testing.T) {
	bothSchemas(t, func(t *testing.T, schema string) {
		s := newSite(t, schema)
		s.addMultiplierColumns()
		alice, bob, carol := s.addUser(1), s.addUser(2), s.addUser(3)
		s.exec("UPDATE users_main SET UpMultiplier = 2.0, DownMultiplier = 0.5 WHERE ID = ?", alice)
		// bob: NULL both ways.
		s.exec("UPDATE users_main SET UpMultiplier = -1, DownMultiplier = NULL WHERE ID = ?", carol)
		boosted := s.addTorrent(1, "0")
		s.exec("UPDATE torrents SET UpMultiplier = 1.5, DownMultiplier = 1.0 WHERE ID = ?", boosted)
		plain := s.addTorrent(2, "0") // NULL both ways
		free := s.addTorrent(3, "1")
		s.exec("UPDATE torrents SET UpMultiplier = 1.5, DownMultiplier = 2 WHERE ID = ?", free)
		neutral := s.addTorrent(4, "2")
		s.exec("UPDATE torrents SET UpMultiplier = 4, DownMultiplier = 4 WHERE ID = ?", neutral)
		tokened := s.addTorrent(5, "0")
		s.exec("UPDATE torrents SET UpMultiplier = 1.5, DownMultiplier = 2 WHERE ID = ?", tokened)
		s.exec("INSERT INTO users_freeleeches (UserID, TorrentID, Time) VALUES (?, ?, NOW())", alice, tokened)

		c := s.open(map[string]any{"multipliers": true})

		// The brief's case: user 2.0/0.5 on torrent 1.5/1.0 gets Δup×3.0
		// and Δdown×0.5.
		session(t, c, alice, boosted, 1, 11, 1001, 4001)
		flush(t, c)
		if up, down := s.credit(alice); up != 3003 || down != 2001 { // 2000.5 rounds to 2001
			t.Errorf("alice on the boosted torrent: credited %d/%d, want 3003/2001", up, down)
		}
		if got := s.int("SELECT uploaded FROM xbt_files_users WHERE uid = ? AND fid = ?", alice, boosted); got != 1001 {
			t.Errorf("xbt_files_users.uploaded %d, want the raw 1001", got)
		}
		if got := s.int("SELECT downloaded FROM xbt_files_users WHERE uid = ? AND fid = ?", alice, boosted); got != 4001 {
			t.Errorf("xbt_files_users.downloaded %d, want the raw 4001", got)
		}
		if f := s.torrentFigures(boosted); f.balance != 1001-4001 {
			t.Errorf("balance %d, want the raw %d", f.balance, 1001-4001)
		}

		// NULL counts as 1.0: bob on the plain torrent is credited raw,
		// on the boosted one only the torrent's multipliers count.
		session(t, c, bob, plain, 2, 21, 1000, 400)
		session(t, c, bob, boosted, 1, 22, 1000, 400)
		// Freeleech still zeroes the download, the upload is multiplied;
		// neutral still zeroes both.
		session(t, c, alice, free, 3, 13, 1000, 400)
		session(t, c, alice, neutral, 4, 14, 1000, 400)
		// carol: a negative up multiplier counts as 0, NULL down as 1.0.
		session(t, c, carol, plain, 2, 31, 1000, 400)
		flush(t, c)
		if up, down := s.credit(bob); up != 1000+1500 || down != 400+400 {
			t.Errorf("bob credited %d/%d, want 2500/800", up, down)
		}
		if up, down := s.credit(alice); up != 3003+3000 || down != 2001 {
			t.Errorf("alice after free and neutral: credited %d/%d, want 6003/2001", up, down)
		}
		if up, down := s.credit(carol); up != 0 || down != 400 {
			t.Errorf("carol credited %d/%d, want 0/400", up, down)
		}

		// A token zeroes the download; its bookkeeping is the raw download.
		session(t, c, alice, tokened, 5, 15, 1000, 400)
		flush(t, c)
		if up, down := s.credit(alice); up != 6003+3000 || down != 2001 {
			t.Errorf("alice after the token: credited %d/%d, want 9003/2001", up, down)
		}
		if got := s.int("SELECT Downloaded FROM users_freeleeches WHERE UserID = ? AND TorrentID = ?", alice, tokened); got != 400 {
			t.Errorf("token row Downloaded %d, want the raw 400", got)
		}

		// A user added by the site's update has 1.0 until the next reload,
		// which reads its multipliers.
		dave := s.addUser(4)
		s.exec("UPDATE users_main SET UpMultiplier = 3, DownMultiplier = 0 WHERE ID = ?", dave)
		if _, err := c.Update("add_user", "id="+itoa(dave)+"&passkey="+url.QueryEscape(passkey(4))); err != nil {
			t.Fatal(err)
		}
		session(t, c, dave, plain, 2, 41, 1000, 400)
		flush(t, c)
		if up, down := s.credit(dave); up != 1000 || down != 400 {
			t.Errorf("dave before a reload: credited %d/%d, want 1000/400", up, down)
		}
		if err := c.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		record(t, c, announce{uid: dave, tid: plain, torrent: 2, peer: 41, up: 2000, down: 800, left: 100})
		flush(t, c)
		if up, down := s.credit(dave); up != 1000+3000 || down != 400 {
			t.Errorf("dave after a reload: credited %d/%d, want 4000/400", up, down)
		}
		if c.FlushErrors() != 0 || c.DroppedRows() != 0 {
			t.Errorf("%d flush errors, %d rows dropped", c.FlushErrors(), c.DroppedRows())
		}
	})
}

// On without the columns: Open fails, naming the param and the column.
func TestMultipliersMissingColumns(t *testing.T) {
	s := newSite(t, SchemaLeechStats)
	open := func() error {
		raw, _ := json.Marshal(map[string]any{"dsn": s.dsn, "schema": s.schema, "flush_interval": "1h", "multipliers": true})
		c, err := backend.Open("mysql", raw)
		if err == nil {
			c.Close()
		}
		return err
	}
	err := open()
	if err == nil || !strings.Contains(err.Error(), "multipliers") || !strings.Contains(err.Error(), "users_main.UpMultiplier") ||
		!strings.Contains(err.Error(), "torrents.DownMultiplier") {
		t.Errorf("no columns: %v, want an error naming multipliers and the columns", err)
	}
	s.exec("ALTER TABLE users_main ADD COLUMN UpMultiplier DECIMAL(8,4) NULL, ADD COLUMN DownMultiplier DECIMAL(8,4) NULL")
	s.exec("ALTER TABLE torrents ADD COLUMN UpMultiplier FLOAT NULL")
	err = open()
	if err == nil || !strings.Contains(err.Error(), "multipliers") || !strings.Contains(err.Error(), "torrents.DownMultiplier") ||
		strings.Contains(err.Error(), "users_main.UpMultiplier") {
		t.Errorf("one column missing: %v, want an error naming multipliers and torrents.DownMultiplier only", err)
	}
	s.exec("ALTER TABLE torrents ADD COLUMN DownMultiplier FLOAT NULL")
	if err := open(); err != nil {
		t.Errorf("all columns: %v", err)
	}
}
