package mysql

import (
	"database/sql"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/bittorrent"
)

// The site is loaded with Ocelot's queries: enabled users only, protected
// when invisible or at 127.0.0.1, torrents with their freeleech type and
// unexpired tokens, the whitelist.
func TestLoad(t *testing.T) {
	bothSchemas(t, func(t *testing.T, schema string) {
		s := newSite(t, schema)
		plain := s.addUser(1)
		hidden := s.addUser(2)
		local := s.addUser(3)
		noLeech := s.addUser(4)
		disabled := s.addUser(5)
		s.exec("UPDATE users_main SET Visible = '0' WHERE ID = ?", hidden)
		s.exec("UPDATE users_main SET IP = '127.0.0.1' WHERE ID = ?", local)
		s.exec("UPDATE users_main SET can_leech = 0 WHERE ID = ?", noLeech)
		s.exec("UPDATE users_main SET Enabled = '2' WHERE ID = ?", disabled)
		normal := s.addTorrent(1, "0")
		s.addTorrent(2, "1")
		s.addTorrent(3, "2")
		if schema == SchemaClassic {
			// An empty info_hash (a blob: binary(20) pads it) is skipped, as by Ocelot.
			s.exec("INSERT INTO torrents (info_hash) VALUES ('')")
		}
		s.exec("INSERT INTO users_freeleeches (UserID, TorrentID, Time) VALUES (?, ?, NOW())", plain, normal)
		s.exec("INSERT INTO users_freeleeches (UserID, TorrentID, Time, Expired) VALUES (?, ?, NOW(), 1)", hidden, normal)
		s.exec("INSERT INTO xbt_client_whitelist (peer_id, vstring) VALUES ('-qB4', 'qBittorrent 4'), ('-TR', 'Transmission')")
		var lonely uint32
		if schema == SchemaLeechStats {
			// Ocelot's INNER JOIN would not load a torrent without a stats row.
			h := hash(4)
			r := s.exec("INSERT INTO torrents (info_hash) VALUES (?)", h[:])
			id, _ := r.LastInsertId()
			lonely = uint32(id)
		}
		c := s.open(nil)

		for _, tc := range []struct {
			n    int
			want backend.User
		}{
			{1, backend.User{ID: plain, CanLeech: true}},
			{2, backend.User{ID: hidden, CanLeech: true, Protected: true}},
			{3, backend.User{ID: local, CanLeech: true, Protected: true}},
			{4, backend.User{ID: noLeech}},
		} {
			if got, ok := c.User(passkey(tc.n)); !ok || got != tc.want {
				t.Errorf("user %d: %+v %v, want %+v", tc.n, got, ok, tc.want)
			}
		}
		if _, ok := c.User(passkey(5)); ok {
			t.Error("a disabled user is loaded")
		}
		for n, want := range map[int]backend.FreeType{1: backend.Normal, 2: backend.Free, 3: backend.Neutral} {
			if got, ok, _ := c.Torrent(hash(n)); !ok || got.Free != want {
				t.Errorf("torrent %d: %+v %v", n, got, ok)
			}
		}
		if lonely != 0 {
			if got, ok, _ := c.Torrent(hash(4)); !ok || got.ID != lonely {
				t.Errorf("the torrent without a stats row: %+v %v", got, ok)
			}
		}
		if got := c.site.torrentCount(); got != 3+btoi(lonely != 0) {
			t.Errorf("%d torrents loaded", got)
		}
		c.site.mu.RLock()
		tokened := c.site.torrents[hash(1)].tokened
		_, plainTok := tokened[plain]
		_, hiddenTok := tokened[hidden]
		c.site.mu.RUnlock()
		if !plainTok || hiddenTok {
			t.Errorf("tokens: unexpired %v, expired %v", plainTok, hiddenTok)
		}
		if !c.ClientAllowed(peerIDWith("-qB4650-")) || !c.ClientAllowed(peerIDWith("-TR4000-")) || c.ClientAllowed(peerIDWith("-DE2000-")) {
			t.Error("whitelist")
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Reload picks up the site's changes; reload_interval does it alone.
func TestReload(t *testing.T) {
	s := newSite(t, SchemaLeechStats)
	s.addUser(1)
	s.addTorrent(1, "0")
	c := s.open(nil)
	// An update the database does not know of yet (Gazelle tells the
	// tracker first) survives the reload only if it is in the database.
	mustUpdate(t, c, "add_whitelist", "peer_id=-qB4")

	s.addUser(2)
	s.exec("UPDATE users_main SET Enabled = '0' WHERE torrent_pass = ?", passkey(1))
	s.exec("UPDATE torrents SET FreeTorrent = '1'")
	if err := c.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.User(passkey(1)); ok {
		t.Error("a disabled user survives the reload")
	}
	if _, ok := c.User(passkey(2)); !ok {
		t.Error("a new user is not loaded")
	}
	if got, _, _ := c.Torrent(hash(1)); got.Free != backend.Free {
		t.Errorf("freeleech not reloaded: %+v", got)
	}
	if !c.ClientAllowed(peerIDWith("-XX0001-")) {
		t.Error("the whitelist was not reloaded (empty: every client)")
	}

	c2 := s.open(map[string]any{"reload_interval": "20ms"})
	s.addUser(3)
	waitFor(t, "the periodic reload", func() bool { _, ok := c2.User(passkey(3)); return ok })
}

// Updates that arrive while a reload reads the database are not lost.
func TestUpdateDuringReload(t *testing.T) {
	s := newSite(t, SchemaLeechStats)
	s.addTorrent(1, "0")
	c := s.open(nil)
	c.duringReload = func() {
		mustUpdate(t, c, "add_user", "id=9&passkey="+passkey(9)+"&visible=1")
		mustUpdate(t, c, "update_torrent", "info_hash="+escape(hash(1))+"&freetorrent=1")
	}
	if err := c.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.User(passkey(9)); !ok {
		t.Error("a user added during the reload is lost")
	}
	if got, _, _ := c.Torrent(hash(1)); got.Free != backend.Free {
		t.Errorf("a freeleech set during the reload is lost: %+v", got)
	}
	if len(c.site.replay) != 0 {
		t.Errorf("%d updates still remembered", len(c.site.replay))
	}
}

// Torrent counts, snatches and peer rows, as Ocelot writes them.
func TestTorrentSnatchAndPeerRows(t *testing.T) {
	bothSchemas(t, func(t *testing.T, schema string) {
		s := newSite(t, schema)
		uid := s.addUser(1)
		hidden := s.addUser(2)
		s.exec("UPDATE users_main SET Visible = '0' WHERE ID = ?", hidden)
		tid := s.addTorrent(1, "0")
		c := s.open(nil)
		t0 := time.Unix(1_800_000_000, 0)
		a := announce{uid: uid, tid: tid, torrent: 1, peer: 1, left: 1000, event: bittorrent.Started, at: t0}
		b := a.backend()
		b.Seeders, b.Leechers = 0, 1
		rec := func(b backend.Announce) {
			if err := c.RecordAnnounce(b); err != nil {
				t.Fatal(err)
			}
		}
		rec(b)
		b.Event, b.Time, b.Uploaded, b.Downloaded, b.Left = bittorrent.None, t0.Add(100*time.Second), 5000, 1000, 0
		b.Event, b.Snatched, b.Seeders, b.Leechers = bittorrent.Completed, true, 1, 0
		rec(b)
		h := announce{uid: hidden, tid: tid, torrent: 1, peer: 2, left: 0, event: bittorrent.Started, at: t0}.backend()
		h.Seeders, h.Leechers = 2, 0
		rec(h)
		flush(t, c)

		if f := s.torrentFigures(tid); f != (torrentFigures{seeders: 2, leechers: 0, snatched: 1, balance: 4000}) {
			t.Errorf("torrent figures %+v", f)
		}
		if n, ok := c.Snatches(tid); !ok || n != 1 {
			t.Errorf("Snatches %d %v", n, ok)
		}
		var (
			active, announced, completed   int
			up, down, remaining, timespent int64
			upspeed, downspeed, mtime      int64
			ip, agent                      string
		)
		err := s.db.QueryRow(`SELECT active, announced, completed, uploaded, downloaded, remaining, timespent,
			upspeed, downspeed, mtime, ip, useragent FROM xbt_files_users WHERE uid = ?`, uid).Scan(
			&active, &announced, &completed, &up, &down, &remaining, &timespent, &upspeed, &downspeed, &mtime, &ip, &agent)
		if err != nil {
			t.Fatal(err)
		}
		if active != 1 || announced != 2 || up != 5000 || down != 1000 || remaining != 0 || timespent != 100 ||
			upspeed != 50 || downspeed != 10 || mtime != t0.Unix()+100 || ip != "192.0.2.10" || agent != "qBittorrent/4.6.5" {
			t.Errorf("peer row: active %d announced %d up %d down %d left %d timespent %d speeds %d/%d mtime %d ip %q agent %q",
				active, announced, up, down, remaining, timespent, upspeed, downspeed, mtime, ip, agent)
		}
		// A protected user's address is never written.
		if ip := s.str("SELECT ip FROM xbt_files_users WHERE uid = ?", hidden); ip != "" {
			t.Errorf("a protected user's ip %q", ip)
		}
		var suid, sfid, stamp int64
		var sip string
		if err := s.db.QueryRow("SELECT uid, fid, tstamp, IP FROM xbt_snatched").Scan(&suid, &sfid, &stamp, &sip); err != nil {
			t.Fatal(err)
		}
		if suid != int64(uid) || sfid != int64(tid) || stamp != t0.Unix()+100 || sip != "192.0.2.10" {
			t.Errorf("snatch %d %d %d %q", suid, sfid, stamp, sip)
		}

		// stopped: active 0, the peer forgotten.
		b.Event, b.Snatched, b.Time, b.Uploaded = bittorrent.Stopped, false, t0.Add(200*time.Second), 6000
		b.Seeders = 1
		rec(b)
		flush(t, c)
		if got := s.int("SELECT active FROM xbt_files_users WHERE uid = ?", uid); got != 0 {
			t.Errorf("active %d after stopped", got)
		}
		if up, _ := s.credit(uid); up != 6000 {
			t.Errorf("credited %d, want 6000", up)
		}
		if f := s.torrentFigures(tid); f.seeders != 1 || f.snatched != 1 {
			t.Errorf("after stopped: %+v", f)
		}
		// The tracker's reaper empties the swarm.
		if err := c.RecordSwarm(tid, 0, 0); err != nil {
			t.Fatal(err)
		}
		flush(t, c)
		if f := s.torrentFigures(tid); f != (torrentFigures{snatched: 1, balance: 5000}) {
			t.Errorf("after the swarm emptied: %+v", f)
		}
	})
}

func TestRecordAnnounceNeedsIDs(t *testing.T) {
	s := newSite(t, SchemaLeechStats)
	c := s.open(nil)
	if err := c.RecordAnnounce(backend.Announce{InfoHash: hash(1)}); err != ErrNoIDs {
		t.Errorf("an announce without ids: %v", err)
	}
}

// Parameter errors name the key.
func TestParams(t *testing.T) {
	good := `"dsn": "u:p@tcp(127.0.0.1:3306)/gazelle"`
	for _, tc := range []struct{ params, key string }{
		{`{}`, "dsn"},
		{`{"dsn": "::nonsense::"}`, "dsn"},
		{`{` + good + `, "schema": "ops"}`, "schema"},
		{`{` + good + `, "flush_interval": "0s"}`, "flush_interval"},
		{`{` + good + `, "flush_interval": 3}`, "flush_interval"},
		{`{` + good + `, "flush_interval": "soon"}`, "flush_interval"},
		{`{` + good + `, "reload_interval": "-1s"}`, "reload_interval"},
		{`{` + good + `, "queue_limit": 0}`, "queue_limit"},
		{`{` + good + `, "queue_limit": "many"}`, "queue_limit"},
		{`{` + good + `, "site_url": "https://example.com"}`, "site_secret"},
		{`{` + good + `, "site_secret": "x"}`, "site_url"},
		{`{` + good + `, "site_url": "example.com", "site_secret": "x"}`, "site_url"},
		{`{` + good + `, "del_reason_lifetime": "-1h"}`, "del_reason_lifetime"},
		{`{` + good + `, "multipliers": "yes"}`, "multipliers"},
		{`{` + good + `, "passwd": "x"}`, "passwd"},
	} {
		_, err := ParseParams(json.RawMessage(tc.params))
		if err == nil || !strings.Contains(err.Error(), tc.key) || !strings.HasPrefix(err.Error(), "backend.params: ") {
			t.Errorf("%s: %v, want an error naming %q", tc.params, err, tc.key)
		}
	}
	p, err := ParseParams(json.RawMessage(`{` + good + `}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Schema != SchemaLeechStats || p.FlushInterval.Duration != 3*time.Second || p.ReloadInterval.Duration != 0 || p.QueueLimit != DefaultQueueLimit || p.Multipliers {
		t.Errorf("defaults: %+v", p)
	}
	if p, err := ParseParams(json.RawMessage(`{` + good + `, "multipliers": true}`)); err != nil || !p.Multipliers {
		t.Errorf("multipliers: true: %+v, %v", p, err)
	}
	if _, err := backend.Open("mysql", json.RawMessage(`{"schema": "x"}`)); err == nil || !strings.Contains(err.Error(), "dsn") {
		t.Errorf("backend.Open: %v", err)
	}
}

// A row's multipliers: NULL is 1.0, negative or NaN is 0, and 1.0 both
// ways is no multipliers at all.
func TestNewMultipliers(t *testing.T) {
	null := sql.NullFloat64{}
	v := func(f float64) sql.NullFloat64 { return sql.NullFloat64{Float64: f, Valid: true} }
	for _, tc := range []struct {
		up, down sql.NullFloat64
		want     *multipliers
	}{
		{null, null, nil},
		{v(1), null, nil},
		{v(2), v(0.5), &multipliers{up: 2, down: 0.5}},
		{null, v(3), &multipliers{up: 1, down: 3}},
		{v(-1), null, &multipliers{up: 0, down: 1}},
		{v(math.NaN()), v(0), &multipliers{up: 0, down: 0}},
	} {
		got := newMultipliers(tc.up, tc.down)
		if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
			t.Errorf("newMultipliers(%v, %v) = %+v, want %+v", tc.up, tc.down, got, tc.want)
		}
	}
}
