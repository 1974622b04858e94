package mysql

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/bittorrent"
)

func mustUpdate(t *testing.T, c *Conn, action, query string) {
	t.Helper()
	body, err := c.Update(action, query)
	if err != nil || string(body) != "success" {
		t.Fatalf("%s?%s: %q, %v", action, query, body, err)
	}
}

func peerIDWith(prefix string) [20]byte {
	var p [20]byte
	copy(p[:], prefix+"0123456789abcdefghijklmnop")
	return p
}

// Every one of Ocelot's update actions, with its parameter decoding.
func TestUpdateActions(t *testing.T) {
	s := newSite(t, SchemaLeechStats)
	c := s.open(nil)

	t.Run("add_torrent", func(t *testing.T) {
		for i, tc := range []struct {
			free string
			want backend.FreeType
		}{{"&freetorrent=0", backend.Normal}, {"&freetorrent=1", backend.Free}, {"&freetorrent=2", backend.Neutral}, {"", backend.Neutral}, {"&freetorrent=x", backend.Neutral}} {
			h := hash(100 + i)
			mustUpdate(t, c, "add_torrent", "id=77&info_hash="+escape(h)+tc.free)
			got, ok, _ := c.Torrent(h)
			if !ok || got.ID != 77 || got.Free != tc.want {
				t.Errorf("freetorrent %q: %+v %v, want id 77 free %d", tc.free, got, ok, tc.want)
			}
		}
		// An existing torrent only changes its freeleech type.
		h := hash(103)
		mustUpdate(t, c, "add_torrent", "id=78&info_hash="+escape(h)+"&freetorrent=1")
		if got, _, _ := c.Torrent(h); got.ID != 77 || got.Free != backend.Free {
			t.Errorf("re-added: %+v", got)
		}
		// Bytes that need no escaping may come raw, and '+' is a '+'.
		var raw [20]byte
		copy(raw[:], "abcdefghij+klmnopqrs")
		mustUpdate(t, c, "add_torrent", "id=79&info_hash=abcdefghij+klmnop%71%72%73&freetorrent=0")
		if got, ok, _ := c.Torrent(raw); !ok || got.ID != 79 {
			t.Errorf("raw info_hash: %+v %v", got, ok)
		}
	})

	t.Run("update_torrent and update_torrents", func(t *testing.T) {
		a, b := hash(200), hash(201)
		mustUpdate(t, c, "add_torrent", "id=200&info_hash="+escape(a)+"&freetorrent=0")
		mustUpdate(t, c, "add_torrent", "id=201&info_hash="+escape(b)+"&freetorrent=0")
		mustUpdate(t, c, "update_torrent", "info_hash="+escape(a)+"&freetorrent=1")
		if got, _, _ := c.Torrent(a); got.Free != backend.Free {
			t.Errorf("update_torrent: %+v", got)
		}
		mustUpdate(t, c, "update_torrents", "info_hashes="+escape(a)+escape(b)+"&freetorrent=2")
		for _, h := range [][20]byte{a, b} {
			if got, _, _ := c.Torrent(h); got.Free != backend.Neutral {
				t.Errorf("update_torrents: %+v", got)
			}
		}
		mustUpdate(t, c, "update_torrent", "info_hash="+escape(a)) // no freetorrent: neutral
		if got, _, _ := c.Torrent(a); got.Free != backend.Neutral {
			t.Errorf("update_torrent without freetorrent: %+v", got)
		}
	})

	t.Run("delete_torrent", func(t *testing.T) {
		for i, tc := range []struct {
			reason, want string
		}{{"&reason=3", "Bad Folder Names"}, {"&reason=0", "Dupe"}, {"&reason=22", "Audience Recording"}, {"", ""}, {"&reason=23", ""}, {"&reason=-1", ""}} {
			h := hash(300 + i)
			mustUpdate(t, c, "add_torrent", "id=300&info_hash="+escape(h)+"&freetorrent=0")
			mustUpdate(t, c, "delete_torrent", "id=300&info_hash="+escape(h)+tc.reason)
			if _, ok, reason := c.Torrent(h); ok || reason != tc.want {
				t.Errorf("after delete_torrent%s: ok %v, reason %q, want %q", tc.reason, ok, reason, tc.want)
			}
		}
		// Deleting an unknown torrent remembers nothing.
		h := hash(399)
		mustUpdate(t, c, "delete_torrent", "info_hash="+escape(h)+"&reason=1")
		if _, _, reason := c.Torrent(h); reason != "" {
			t.Errorf("reason %q for a torrent never known", reason)
		}
	})

	t.Run("tokens", func(t *testing.T) {
		h := hash(400)
		mustUpdate(t, c, "add_torrent", "id=400&info_hash="+escape(h)+"&freetorrent=0")
		mustUpdate(t, c, "add_token", "info_hash="+escape(h)+"&userid=12")
		mustUpdate(t, c, "add_token", "info_hash="+escape(h)+"&userid=13")
		mustUpdate(t, c, "remove_token", "info_hash="+escape(h)+"&userid=12")
		c.site.mu.RLock()
		_, has12 := c.site.torrents[h].tokened[12]
		_, has13 := c.site.torrents[h].tokened[13]
		c.site.mu.RUnlock()
		if has12 || !has13 {
			t.Errorf("tokened users: 12 %v, 13 %v", has12, has13)
		}
	})

	t.Run("users", func(t *testing.T) {
		pk, pk2, pk3 := passkey(500), passkey(501), passkey(502)
		mustUpdate(t, c, "add_user", "id=500&passkey="+pk+"&visible=0&can_leech=0")
		if u, ok := c.User(pk); !ok || u.ID != 500 || !u.CanLeech || !u.Protected {
			t.Errorf("add_user: %+v %v (can_leech is ignored, visible=0 protects)", u, ok)
		}
		mustUpdate(t, c, "add_user", "id=999&passkey="+pk+"&visible=1")
		if u, _ := c.User(pk); u.ID != 500 {
			t.Errorf("add_user of a known passkey changed it: %+v", u)
		}
		mustUpdate(t, c, "update_user", "passkey="+pk+"&can_leech=0&visible=1")
		if u, _ := c.User(pk); u.CanLeech || u.Protected {
			t.Errorf("update_user: %+v", u)
		}
		mustUpdate(t, c, "update_user", "passkey="+pk+"&visible=0")
		if u, _ := c.User(pk); !u.CanLeech || !u.Protected {
			t.Errorf("update_user without can_leech must reset it: %+v", u)
		}
		mustUpdate(t, c, "update_user", "passkey="+pk)
		if u, _ := c.User(pk); !u.CanLeech || u.Protected {
			t.Errorf("update_user without params must reset both: %+v", u)
		}
		mustUpdate(t, c, "change_passkey", "oldpasskey="+pk+"&newpasskey="+pk2)
		if _, ok := c.User(pk); ok {
			t.Error("the old passkey still works")
		}
		if u, ok := c.User(pk2); !ok || u.ID != 500 {
			t.Errorf("change_passkey: %+v %v", u, ok)
		}
		mustUpdate(t, c, "remove_user", "passkey="+pk2)
		if _, ok := c.User(pk2); ok {
			t.Error("remove_user")
		}
		mustUpdate(t, c, "add_user", "id=501&passkey="+pk+"&visible=1")
		mustUpdate(t, c, "add_user", "id=502&passkey="+pk3+"&visible=1")
		mustUpdate(t, c, "remove_users", "passkeys="+pk+pk3)
		if _, ok := c.User(pk); ok {
			t.Error("remove_users left the first")
		}
		if _, ok := c.User(pk3); ok {
			t.Error("remove_users left the second")
		}
		// Passkeys are not decoded.
		mustUpdate(t, c, "add_user", "id=503&passkey=%41bc&visible=1")
		if _, ok := c.User("%41bc"); !ok {
			t.Error("a passkey was decoded")
		}
	})

	t.Run("whitelist", func(t *testing.T) {
		if !c.ClientAllowed(peerIDWith("-XX0001-")) {
			t.Fatal("an empty whitelist refuses a client")
		}
		mustUpdate(t, c, "add_whitelist", "peer_id=-qB4")
		mustUpdate(t, c, "add_whitelist", "peer_id=-TR2")
		if !c.ClientAllowed(peerIDWith("-qB4650-")) || c.ClientAllowed(peerIDWith("-XX0001-")) {
			t.Error("add_whitelist")
		}
		mustUpdate(t, c, "edit_whitelist", "old_peer_id=-qB4&new_peer_id=-qB5")
		if c.ClientAllowed(peerIDWith("-qB4650-")) || !c.ClientAllowed(peerIDWith("-qB5010-")) {
			t.Error("edit_whitelist")
		}
		mustUpdate(t, c, "remove_whitelist", "peer_id=-qB5")
		if c.ClientAllowed(peerIDWith("-qB5010-")) || !c.ClientAllowed(peerIDWith("-TR2940-")) {
			t.Error("remove_whitelist")
		}
		mustUpdate(t, c, "remove_whitelist", "peer_id=-TR2")
		if !c.ClientAllowed(peerIDWith("-XX0001-")) {
			t.Error("an emptied whitelist refuses a client")
		}
	})

	t.Run("announce interval and jitter", func(t *testing.T) {
		if _, ok := c.AnnounceInterval(); ok {
			t.Error("an interval before the site set one")
		}
		mustUpdate(t, c, "update_announce_interval", "new_announce_interval=2700")
		mustUpdate(t, c, "update_announce_jitter", "new_announce_jitter=120")
		if d, ok := c.AnnounceInterval(); !ok || d != 45*time.Minute {
			t.Errorf("interval %v %v", d, ok)
		}
		if d, ok := c.AnnounceJitter(); !ok || d != 2*time.Minute {
			t.Errorf("jitter %v %v", d, ok)
		}
		mustUpdate(t, c, "update_announce_interval", "new_announce_interval=nonsense")
		if d, _ := c.AnnounceInterval(); d != 45*time.Minute {
			t.Errorf("a bad interval was taken: %v", d)
		}
	})

	t.Run("info_torrent", func(t *testing.T) {
		h := hash(600)
		mustUpdate(t, c, "add_torrent", "id=600&info_hash="+escape(h)+"&freetorrent=1")
		body, err := c.Update("info_torrent", "info_hash="+escape(h))
		if err != nil || string(body) != `{"hash":`+escape(h)+`,"id":600,"free":1}`+"\n" {
			t.Errorf("info_torrent: %q %v", body, err)
		}
		body, _ = c.Update("info_torrent", "info_hash="+escape(hash(601)))
		if string(body) != `{"hash":`+escape(hash(601))+`,"fail":1}`+"\n" {
			t.Errorf("info_torrent of an unknown torrent: %q", body)
		}
	})

	t.Run("unknown action", func(t *testing.T) {
		mustUpdate(t, c, "frobnicate", "x=1")
	})
}

func TestOcelotParams(t *testing.T) {
	got := ocelotParams("a=b=c&&d&e=1&e=2&k=%41+")
	want := map[string]string{"a": "bc", "": "", "d": "", "e": "2", "k": "%41+"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%q: %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%q", got)
	}
	for in, out := range map[string]string{
		"%41%42":  "AB",
		"%4a%4A":  "JJ",
		"a+b":     "a+b",
		"%4":      "%4",
		"x%41":    "xA",
		"%zz":     "0",
		"%z1":     "1",
		"%%41%41": "41A",
	} {
		if got := hexDecode(in); got != out {
			t.Errorf("hexDecode(%q) = %q, want %q", in, got, out)
		}
	}
	for in, out := range map[string]int32{"12": 12, " 7x": 7, "-3": -3, "x": 0, "": 0, "99999999999": 2147483647, "-99999999999": -2147483648} {
		if got := strToInt32(in); got != out {
			t.Errorf("strToInt32(%q) = %d, want %d", in, got, out)
		}
	}
}

func TestReports(t *testing.T) {
	s := newSite(t, SchemaLeechStats)
	uid := s.addUser(1)
	s.exec("UPDATE users_main SET Visible = '0' WHERE ID = ?", uid)
	tid := s.addTorrent(1, "0")
	c := s.open(nil)
	record(t, c,
		announce{uid: uid, tid: tid, torrent: 1, peer: 1, left: 10, event: bittorrent.Started},
		announce{uid: uid, tid: tid, torrent: 1, peer: 2, left: 0, event: bittorrent.Started},
		announce{uid: uid, tid: tid, torrent: 1, peer: 3, left: 0, event: bittorrent.Started},
	)
	body, err := c.Report(url.Values{"get": {"user"}, "key": {passkey(1)}})
	want := `{"id":` + itoa(uid) + `,"leeching":1,"seeding":2,"deleted":0,"protected":1,"can_leech":1}` + "\n"
	if err != nil || string(body) != want {
		t.Errorf("user report %q %v, want %q", body, err, want)
	}
	if _, err := c.Report(url.Values{"get": {"user"}, "key": {passkey(2)}}); err == nil || err.Error() != "Announce key not found" {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := c.Report(url.Values{"get": {"user"}}); err == nil || err.Error() != "Announce key missing" {
		t.Errorf("no key: %v", err)
	}
	if _, err := c.Report(url.Values{"get": {"jemalloc"}}); err == nil || err.Error() != "unrecognized report query" {
		t.Errorf("unknown report: %v", err)
	}
	body, err = c.Report(url.Values{"get": {"stats"}})
	if err != nil {
		t.Fatal(err)
	}
	var stats map[string]struct {
		Type  string          `json:"type"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(body, &stats); err != nil {
		t.Fatalf("stats report is not JSON: %v\n%s", err, body)
	}
	for label, value := range map[string]string{"seeders tracked": "2", "leechers tracked": "1", "items in peer queue": "3", "items in torrent queue": "1", "users": "1"} {
		if e, ok := stats[label]; !ok || e.Type != "number" || string(e.Value) != value {
			t.Errorf("%q: %+v, want number %s", label, e, value)
		}
	}
	if e := stats["uptime"]; e.Type != "elapsed" {
		t.Errorf("uptime: %+v", e)
	}
	if !strings.HasSuffix(string(body), "}\n") {
		t.Errorf("stats report ends %q", body[len(body)-5:])
	}
}
