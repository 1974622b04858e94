package mysql

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/chihaya/chihaya/bittorrent"
)

// Ocelot's four ways to fail a whole batch under Gazelle's strict
// sql_mode, in one flush: a new users_freeleeches row (Time has no
// default), a User-Agent longer than varchar(51), an IPv6 address for the
// varchar(15) ip column, and rows of a torrent and a user the site has just
// deleted (foreign keys). Nothing fails, and every other row is written.
func TestStrictModeTraps(t *testing.T) {
	bothSchemas(t, func(t *testing.T, schema string) {
		s := newSite(t, schema)
		good, gone := s.addUser(1), s.addUser(2)
		tor, deleted := s.addTorrent(1, "0"), s.addTorrent(2, "0")
		c := s.open(nil)
		// A token the site told the tracker about, with no row yet.
		if _, err := c.Update("add_token", "info_hash="+escape(hash(1))+"&userid="+itoa(good)); err != nil {
			t.Fatal(err)
		}
		long := strings.Repeat("Mozilla/5.0 (compatible; a very long client name) ", 4) + "\xff\xfe\x01"
		v6 := netip.MustParseAddrPort("[2001:db8::1234:5678]:51413")
		record(t, c,
			announce{uid: good, tid: tor, torrent: 1, peer: 1, left: 10, event: bittorrent.Started, agent: long, addr: v6},
			announce{uid: good, tid: tor, torrent: 1, peer: 1, up: 100, down: 50, left: 10, agent: long, addr: v6},
			announce{uid: good, tid: tor, torrent: 1, peer: 2, left: 10, event: bittorrent.Started},
			announce{uid: good, tid: tor, torrent: 1, peer: 2, up: 7, down: 3, left: 0, event: bittorrent.Completed, snatched: true},
			announce{uid: gone, tid: tor, torrent: 1, peer: 3, left: 10, event: bittorrent.Started},
			announce{uid: gone, tid: tor, torrent: 1, peer: 3, up: 11, down: 13, left: 10},
			announce{uid: good, tid: deleted, torrent: 2, peer: 4, left: 10, event: bittorrent.Started},
			announce{uid: good, tid: deleted, torrent: 2, peer: 4, up: 1000, down: 2000, left: 0, event: bittorrent.Completed, snatched: true},
		)
		// The site deletes a user and a torrent (the tracker not yet told).
		s.exec("DELETE FROM users_main WHERE ID = ?", gone)
		s.exec("DELETE FROM torrents WHERE ID = ?", deleted)

		flush(t, c)
		if n := c.FlushErrors(); n != 0 {
			t.Fatalf("%d flush errors", n)
		}
		// The deleted torrent's traffic was credited (it was real), as Ocelot
		// would: only its torrent row is dropped.
		if up, down := s.credit(good); up != 1107 || down != 2000 {
			t.Errorf("credited %d/%d, want 1107/2000 (torrent 1 is tokened)", up, down)
		}
		if got := s.int("SELECT Downloaded FROM users_freeleeches WHERE UserID = ? AND TorrentID = ?", good, tor); got != 53 {
			t.Errorf("token row Downloaded %d, want 53", got)
		}
		if got := s.str("SELECT Time FROM users_freeleeches WHERE UserID = ? AND TorrentID = ?", good, tor); got == "" || strings.HasPrefix(got, "0000") {
			t.Errorf("token row Time %q", got)
		}
		if f := s.torrentFigures(tor); f.snatched != 1 || f.seeders != 1 {
			t.Errorf("torrent figures %+v", f)
		}
		if schema == SchemaLeechStats {
			if n := s.int("SELECT COUNT(*) FROM torrents_leech_stats WHERE TorrentID = ?", deleted); n != 0 {
				t.Errorf("a stats row for the deleted torrent")
			}
			if n := s.int("SELECT COUNT(*) FROM users_leech_stats WHERE UserID = ?", gone); n != 0 {
				t.Errorf("a stats row for the deleted user")
			}
		} else if n := s.int("SELECT COUNT(*) FROM torrents WHERE ID = ?", deleted); n != 0 {
			t.Errorf("the deleted torrent came back")
		}
		ua := s.str("SELECT useragent FROM xbt_files_users WHERE peer_id = ?", pid(1))
		if len([]rune(ua)) != 51 || !strings.HasPrefix(ua, "Mozilla/5.0 (compatible;") {
			t.Errorf("useragent %q", ua)
		}
		if ip := s.str("SELECT ip FROM xbt_files_users WHERE peer_id = ?", pid(1)); ip != "" {
			t.Errorf("an IPv6 peer's ip stored as %q", ip)
		}
		if ip := s.str("SELECT ip FROM xbt_files_users WHERE peer_id = ?", pid(2)); ip != "192.0.2.10" {
			t.Errorf("an IPv4 peer's ip stored as %q", ip)
		}
		if n := s.int("SELECT COUNT(*) FROM xbt_snatched"); n != 2 {
			t.Errorf("%d snatches, want 2", n)
		}
		if n := s.int("SELECT COUNT(*) FROM xbt_files_users"); n != 4 {
			t.Errorf("%d peer rows, want 4", n)
		}
	})
}

// A row the database refuses for a reason nobody foresaw is dropped alone:
// its batch is split until the bad row is isolated.
func TestBadRowIsDroppedAlone(t *testing.T) {
	s := newSite(t, SchemaLeechStats)
	uid := s.addUser(1)
	var tids []uint32
	for i := range 40 {
		tids = append(tids, s.addTorrent(i, "0"))
	}
	bad := tids[17]
	s.exec("ALTER TABLE xbt_snatched ADD CONSTRAINT no_bad CHECK (fid <> " + itoa(bad) + ")")
	s.exec("ALTER TABLE xbt_files_users ADD CONSTRAINT no_bad_peer CHECK (fid <> " + itoa(bad) + ")")
	c := s.open(nil)
	for i, tid := range tids {
		record(t, c,
			announce{uid: uid, tid: tid, torrent: i, peer: i, left: 1, event: bittorrent.Started},
			announce{uid: uid, tid: tid, torrent: i, peer: i, up: 10, down: 1, event: bittorrent.Completed, snatched: true},
		)
	}
	flush(t, c)
	if n := s.int("SELECT COUNT(*) FROM xbt_snatched"); n != 39 {
		t.Errorf("%d snatches, want 39", n)
	}
	if n := s.int("SELECT COUNT(*) FROM xbt_files_users"); n != 39 {
		t.Errorf("%d peer rows, want 39", n)
	}
	if up, down := s.credit(uid); up != 400 || down != 40 {
		t.Errorf("credited %d/%d, want 400/40", up, down)
	}
	if n := c.DroppedRows(); n != 2 {
		t.Errorf("DroppedRows %d, want 2", n)
	}
	if n := c.FlushErrors(); n != 0 {
		t.Errorf("FlushErrors %d", n)
	}
}

func pid(n int) []byte {
	p := peerID(n)
	return p[:]
}

// escape %-encodes every byte, as PHP's rawurlencode does for binary.
func escape(h [20]byte) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for _, c := range h {
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}
