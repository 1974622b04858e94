package unit3d_test

import (
	"fmt"
	"strings"
	"testing"
)

// The calls a UNIT3D site makes through a torrent's and a user's life, in
// its order and with its bodies (Laravel's HTTP client: JSON body,
// Content-Type and Accept application/json), each answered 200 and taking
// effect on the next announce.
func TestSiteLifecycle(t *testing.T) {
	b := newBed(t, "", "")
	h := ih(50)
	step := func(name, method, path, body string, then func()) {
		t.Helper()
		b.mustAPI(method, path, body)
		if then != nil {
			then()
		}
	}
	leech := func(user, port int, up, down, left uint64) string {
		return b.announce(pk(user), query(h, pid(user, 50), port, up, down, left, ""))
	}

	// TorrentController@store: the upload, pending moderation.
	step("upload", "PUT", "torrents", torrentBody(50, 0, h, 0, 0, 0, 100, 100), func() {
		if got := leech(2, 6881, 0, 0, 0); !strings.Contains(got, "Torrent is pending moderation.") {
			t.Errorf("pending: %q", got)
		}
	})
	// TorrentHelper::approveHelper.
	step("approve", "PUT", "torrents", torrentBody(50, 1, h, 0, 0, 0, 100, 100), func() {
		ok(t, leech(2, 6881, 0, 0, 0))
		ok(t, leech(3, 6882, 0, 0, 1000))
	})
	// TorrentBuffController: 100 % freeleech, then double upload.
	step("freeleech", "PUT", "torrents", torrentBody(50, 1, h, 1, 1, 0, 0, 100), nil)
	step("double upload", "PUT", "torrents", torrentBody(50, 1, h, 1, 1, 0, 0, 200), func() {
		leech(3, 6882, 100, 500, 500)
		b.flush()
		if up, down := b.int("SELECT uploaded FROM users WHERE id = 3"), b.int("SELECT downloaded FROM users WHERE id = 3"); up != 200 || down != 0 {
			t.Errorf("freeleech and double upload: %d up, %d down; want 200 and 0", up, down)
		}
	})
	// The bonus store's personal freeleech, a token, featuring.
	step("personal freeleech", "PUT", "personal-freeleech", `{"user_id":9}`, nil)
	step("token", "PUT", "freeleech-tokens", `{"user_id":8,"torrent_id":50}`, nil)
	step("featured", "PUT", "featured-torrents", `{"torrent_id":50}`, nil)
	step("unfeatured", "DELETE", "featured-torrents", `{"torrent_id":50}`, nil)
	step("personal freeleech expired", "DELETE", "personal-freeleech", `{"user_id":9}`, nil)
	// A staff edit of the user (group change, download privileges off).
	step("user edit", "PUT", "users", `{"id":3,"group_id":1,"passkey":"`+pk(3)+`","new_passkey":null,"can_download":false,"is_donor":false,"is_lifetime":false,"num_seeding":0,"num_leeching":1}`, func() {
		if got := leech(3, 6882, 100, 600, 400); got != failure("Your downloading privileges have been disabled.") {
			t.Errorf("can_download false: %q", got)
		}
	})
	// User\PasskeyController@update: the old passkey, then the new one.
	fresh := fmt.Sprintf("%032x", 0xfeed)
	step("passkey reset", "PUT", "users", userBody(2, 1, pk(2), fresh), func() {
		if got := leech(2, 6881, 0, 0, 0); !strings.Contains(got, "Passkey does not exist.") {
			t.Errorf("old passkey: %q", got)
		}
		ok(t, b.announce(fresh, query(h, pid(2, 51), 6883, 0, 0, 0, "")))
	})
	// Staff\GroupController: a new group, the user moved into it, deleted.
	step("group", "PUT", "groups", groupBody(20, "vip", "null", true, true, false), nil)
	step("user into group", "PUT", "users", userBody(2, 20, fresh, ""), nil)
	step("group deleted", "DELETE", "groups", `{"id":20}`, func() {
		if got := b.announce(fresh, query(h, pid(2, 51), 6883, 0, 0, 0, "")); got != failure("Group not found.") {
			t.Errorf("deleted group: %q", got)
		}
	})
	// Blacklist: the site sends the entry's name; the row's prefix is
	// enforced because the tracker reads blacklist_clients again.
	b.exec("INSERT INTO blacklist_clients (name, peer_id_prefix) VALUES ('Example client', '-EX')")
	step("blacklist", "PUT", "blacklisted-agents", `{"peer_id_prefix":"Example client"}`, func() {
		p := pid(9, 1)
		copy(p[:], "-EX")
		if got := b.announce(pk(9), query(h, p, 6884, 0, 0, 0, "")); got != failure("Client is not acceptable. Please check our blacklist.") {
			t.Errorf("blacklisted prefix: %q", got)
		}
	})
	// TorrentController@destroy, then UserController@destroy.
	step("torrent deleted", "DELETE", "torrents", fmt.Sprintf(`{"id":50,"info_hash":"%x"}`, h), func() {
		if got := leech(8, 6885, 0, 0, 0); got != failure("Torrent has been deleted.") {
			t.Errorf("deleted torrent: %q", got)
		}
	})
	step("user deleted", "DELETE", "users", fmt.Sprintf(`{"id":9,"passkey":%q}`, pk(9)), func() {
		if got := b.announce(pk(9), query(ih(1), pid(9, 1), 6886, 0, 0, 0, "")); !strings.Contains(got, "Passkey does not exist.") {
			t.Errorf("deleted user: %q", got)
		}
	})
	// The staff pages' GETs.
	for _, path := range []string{"torrents/50", "users/3", "stats"} {
		if status, body := b.api("GET", path, ""); status != 200 || !strings.HasPrefix(body, "{") {
			t.Errorf("GET %s: %d %q", path, status, body)
		}
	}
	checkUserShape(t, strings.Replace(func() string { _, s := b.api("GET", "users/2", ""); return s }(), fresh, pk(2), 1))
}
