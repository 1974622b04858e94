package unit3d_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/bittorrent"
)

// The conformance checklist of unit3d.md §8, point by point: each runs on
// a fresh site (the fixture of helpers_test.go) with Chihaya in front,
// through its HTTP listeners, and reads the database after flushes.
func TestConformance(t *testing.T) {
	for _, tc := range conformance {
		t.Run(fmt.Sprintf("%02d %s", tc.point, tc.name), func(t *testing.T) {
			b := newBed(t, tc.extra, tc.params)
			tc.run(t, b)
		})
	}
}

type point struct {
	point  int
	name   string
	extra  string // SQL run on the fixture before the tracker starts
	params string // backend params besides the defaults
	run    func(t *testing.T, b *bed)
}

// Request bodies as UNIT3D's Unit3dAnnounce service sends them (PHP's
// json_encode of its arrays).
func torrentBody(id, status int, hash [20]byte, seeders, leechers, completed, down, up int) string {
	return fmt.Sprintf(`{"id":%d,"status":%d,"info_hash":"%x","is_deleted":false,"seeders":%d,"leechers":%d,"times_completed":%d,"download_factor":%d,"upload_factor":%d}`,
		id, status, hash[:], seeders, leechers, completed, down, up)
}

func userBody(id, group int, passkey string, newPasskey string) string {
	np := "null"
	if newPasskey != "" {
		np = strconv.Quote(newPasskey)
	}
	return fmt.Sprintf(`{"id":%d,"group_id":%d,"passkey":%q,"new_passkey":%s,"can_download":true,"is_donor":false,"is_lifetime":false,"num_seeding":0,"num_leeching":0}`,
		id, group, passkey, np)
}

func groupBody(id int, slug string, slots string, immune, fl, du bool) string {
	return fmt.Sprintf(`{"id":%d,"slug":%q,"download_slots":%s,"is_immune":%t,"is_freeleech":%t,"is_double_upload":%t}`, id, slug, slots, immune, fl, du)
}

// ok is a reply without failure or warning.
func ok(t *testing.T, body string) {
	t.Helper()
	if strings.Contains(body, "failure reason") || strings.Contains(body, "warning message") {
		t.Fatalf("reply %q, want a plain success", body)
	}
}

func expect(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("reply\n %q\nwant\n %q", got, want)
	}
}

// reply is a decoded success reply.
type reply struct {
	complete, downloaded, incomplete, interval, minInterval int
	peers, peers6                                           string
	warning                                                 string
	hasPeers6, hasWarning                                   bool
}

var replyRE = regexp.MustCompile(`^d8:completei(\d+)e10:downloadedi(\d+)e10:incompletei(\d+)e8:intervali(\d+)e12:min intervali(\d+)e5:peers(\d+):`)

// parse decodes a success reply strictly in UNIT3D-Announce's layout.
func parse(t *testing.T, body string) reply {
	t.Helper()
	m := replyRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("reply %q is not UNIT3D-Announce's success layout", body)
	}
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	r := reply{complete: n(1), downloaded: n(2), incomplete: n(3), interval: n(4), minInterval: n(5)}
	rest := body[len(m[0]):]
	r.peers, rest = rest[:n(6)], rest[n(6):]
	if s, found := strings.CutPrefix(rest, "6:peers6"); found {
		i := strings.IndexByte(s, ':')
		l, _ := strconv.Atoi(s[:i])
		r.peers6, rest, r.hasPeers6 = s[i+1:i+1+l], s[i+1+l:], true
	}
	if s, found := strings.CutPrefix(rest, "15:warning message"); found {
		i := strings.IndexByte(s, ':')
		l, _ := strconv.Atoi(s[:i])
		r.warning, rest, r.hasWarning = s[i+1:i+1+l], s[i+1+l:], true
	}
	if rest != "e" {
		t.Fatalf("reply %q: trailing %q", body, rest)
	}
	return r
}

// ports lists the ports of a compact peer string.
func ports(peers string, size int) []int {
	var out []int
	for i := 0; i+size <= len(peers); i += size {
		out = append(out, int(peers[i+size-2])<<8|int(peers[i+size-1]))
	}
	return out
}

// direct announces through the backend alone, at a chosen time and
// address (an IPv6 one, say), as the HTTP frontend would after its checks.
func (b *bed) direct(passkey string, hash [20]byte, peerID [20]byte, addr string, up, down, left uint64, ev bittorrent.Event, at time.Time) backend.AnnounceReply {
	b.t.Helper()
	var r backend.AnnounceReply
	b.c.Announce(&backend.AnnounceRequest{
		Announce: backend.Announce{
			InfoHash: hash, PeerID: peerID, Addr: netip.MustParseAddrPort(addr),
			Uploaded: up, Downloaded: down, Left: left, Event: ev, Time: at, UserAgent: "qBittorrent/4.6.5",
		},
		Passkey: passkey, NumWant: -1,
	}, &r)
	if r.Failure != "" {
		b.t.Fatalf("direct announce failed: %s", r.Failure)
	}
	return r
}

var conformance = []point{
	{point: 1, name: "health ping", run: func(t *testing.T, b *bed) {
		status, typ, body := b.get(b.pub.URL+"/announce/health/ping", nil)
		if status != 200 || body != "PONG" || !strings.HasPrefix(typ, "text/plain") {
			t.Errorf("ping: %d %q %q, want 200 text/plain PONG", status, typ, body)
		}
	}},
	{point: 2, name: "wrong key is 404 and changes nothing", run: func(t *testing.T, b *bed) {
		wrong := strings.Repeat("x", len(apiKey))
		for _, c := range []struct{ method, path, body string }{
			{"PUT", "torrents", torrentBody(20, 1, ih(20), 0, 0, 0, 100, 100)},
			{"DELETE", "torrents", `{"id":1,"info_hash":"00"}`},
			{"PUT", "users", userBody(2, 2, pk(2), "")},
			{"DELETE", "users", fmt.Sprintf(`{"id":2,"passkey":%q}`, pk(2))},
			{"PUT", "groups", groupBody(1, "banned", "null", false, false, false)},
			{"DELETE", "groups", `{"id":1}`},
			{"PUT", "blacklisted-agents", `{"peer_id_prefix":"-qB"}`},
			{"PUT", "freeleech-tokens", `{"user_id":2,"torrent_id":1}`},
			{"PUT", "personal-freeleech", `{"user_id":2}`},
			{"PUT", "featured-torrents", `{"torrent_id":1}`},
			{"GET", "torrents/1", ""}, {"GET", "users/2", ""}, {"GET", "stats", ""}, {"POST", "config/reload", ""},
		} {
			if status, _ := b.apiKey(wrong, c.method, c.path, c.body); status != 404 {
				t.Errorf("%s %s with a wrong key: %d, want 404", c.method, c.path, status)
			}
		}
		expect(t, b.announce(pk(2), query(ih(20), pid(2, 1), 6881, 0, 0, 0, "")), failure("InfoHash not found."))
		ok(t, b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 0, 0, 0, "")))
		b.flush()
		if n := b.int("SELECT COUNT(*) FROM users WHERE uploaded > 0 OR downloaded > 0"); n != 0 {
			t.Errorf("%d users credited", n)
		}
	}},
	{point: 3, name: "every successful PUT and DELETE is exactly 200", run: func(t *testing.T, b *bed) {
		for _, c := range []struct{ method, path, body string }{
			{"PUT", "torrents", torrentBody(20, 1, ih(20), 0, 0, 0, 100, 100)},
			{"DELETE", "torrents", fmt.Sprintf(`{"id":20,"info_hash":"%x"}`, ih(20))},
			{"PUT", "users", userBody(9, 1, pk(9), "")},
			{"DELETE", "users", fmt.Sprintf(`{"id":9,"passkey":%q}`, pk(9))},
			{"PUT", "groups", groupBody(9, "new", "5", false, false, false)},
			{"DELETE", "groups", `{"id":9}`},
			{"PUT", "blacklisted-agents", `{"peer_id_prefix":"Example client"}`},
			{"DELETE", "blacklisted-agents", `{"peer_id_prefix":"Example client"}`},
			{"PUT", "freeleech-tokens", `{"user_id":2,"torrent_id":1}`},
			{"DELETE", "freeleech-tokens", `{"user_id":2,"torrent_id":1}`},
			{"PUT", "personal-freeleech", `{"user_id":2}`},
			{"DELETE", "personal-freeleech", `{"user_id":2}`},
			{"PUT", "featured-torrents", `{"torrent_id":1}`},
			{"DELETE", "featured-torrents", `{"torrent_id":1}`},
		} {
			if status, body := b.api(c.method, c.path, c.body); status != 200 {
				t.Errorf("%s %s %s: %d (%q), want 200", c.method, c.path, c.body, status, body)
			}
		}
		if status, body := b.api("POST", "config/reload", ""); status != 200 || body != "Successfully reloaded config." {
			t.Errorf("POST config/reload: %d %q", status, body)
		}
	}},
	{point: 4, name: "bad bodies are refused and change nothing", run: func(t *testing.T, b *bed) {
		for _, c := range []struct{ method, path, body string }{
			{"PUT", "users", `{"id":2,"group_id":2,"passkey":"` + pk(2) + `","can_download":true,"is_donor":false,"is_lifetime":false,"num_seeding":0}`},                     // missing num_leeching
			{"PUT", "users", `{"id":2,"group_id":2,"passkey":"` + pk(2) + `","can_download":true,"is_donor":false,"is_lifetime":false,"num_seeding":-1,"num_leeching":0}`},   // negative
			{"PUT", "users", `{"id":2,"group_id":2,"passkey":"` + pk(2) + `","can_download":"yes","is_donor":false,"is_lifetime":false,"num_seeding":0,"num_leeching":0}`},   // wrong type
			{"PUT", "users", `{"id":2,"group_id":null,"passkey":"` + pk(2) + `","can_download":true,"is_donor":false,"is_lifetime":false,"num_seeding":0,"num_leeching":0}`}, // null
			{"PUT", "users", userBody(2, 2, pk(2), "short")}, // bad new_passkey: nothing changes (UNIT3D-Announce removes the user)
			{"PUT", "groups", groupBody(1, "banned", "-1", false, false, false)},
			{"PUT", "torrents", `{"id":1,"status":1,"info_hash":"` + fmt.Sprintf("%x", ih(1)) + `","is_deleted":false,"seeders":0,"leechers":0,"times_completed":0,"download_factor":300,"upload_factor":100}`},
			{"PUT", "torrents", `{"id":1,"status":7,"info_hash":"` + fmt.Sprintf("%x", ih(1)) + `","is_deleted":false,"seeders":0,"leechers":0,"times_completed":0,"download_factor":0,"upload_factor":100}`},
			{"DELETE", "torrents", `{"id":"1"}`},
			{"DELETE", "groups", `{"id":1`}, // malformed
			{"PUT", "featured-torrents", `{}`},
		} {
			if status, body := b.api(c.method, c.path, c.body); status == 200 {
				t.Errorf("%s %s %s: 200 (%q), want a refusal", c.method, c.path, c.body, body)
			}
		}
		// Without Content-Type: application/json.
		status, _, _ := b.get(b.adm.URL+"/announce/"+apiKey+"/featured-torrents", nil)
		if status == 200 {
			t.Error("GET featured-torrents answered 200")
		}
		ok(t, b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 0, 0, 0, "")))
		if _, body := b.api("GET", "torrents/1", ""); !strings.Contains(body, `"download_factor":100`) || !strings.Contains(body, `"status":"Approved"`) {
			t.Errorf("torrent 1 changed: %s", body)
		}
	}},
	{point: 5, name: "PUT torrents registers a hash at once; a bad one is 400", run: func(t *testing.T, b *bed) {
		b.mustAPI("PUT", "torrents", torrentBody(20, 1, ih(20), 0, 0, 0, 100, 100))
		ok(t, b.announce(pk(2), query(ih(20), pid(2, 1), 6881, 0, 0, 0, "")))
		upper := strings.ToUpper(fmt.Sprintf("%x", ih(21)))
		b.mustAPI("PUT", "torrents", strings.Replace(torrentBody(21, 1, ih(21), 0, 0, 0, 100, 100), fmt.Sprintf("%x", ih(21)), upper, 1))
		ok(t, b.announce(pk(2), query(ih(21), pid(2, 1), 6881, 0, 0, 0, "")))
		for _, h := range []string{upper[:39], "zz" + upper[2:]} {
			body := strings.Replace(torrentBody(22, 1, ih(22), 0, 0, 0, 100, 100), fmt.Sprintf("%x", ih(22)), h, 1)
			if status, _ := b.api("PUT", "torrents", body); status != 400 {
				t.Errorf("info_hash %q: %d, want 400", h, status)
			}
		}
		if status, _ := b.api("GET", "torrents/22", ""); status != 404 {
			t.Errorf("torrent 22 exists after refused PUTs (%d)", status)
		}
	}},
	{point: 6, name: "PUT torrents keeps the peers and takes the body's figures", run: func(t *testing.T, b *bed) {
		ok(t, b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 0, 0, 0, "")))
		b.mustAPI("PUT", "torrents", torrentBody(1, 3, ih(1), 7, 3, 9, 50, 200))
		_, body := b.api("GET", "torrents/1", "")
		for _, want := range []string{`"status":"Postponed"`, `"seeders":7`, `"leechers":3`, `"times_completed":9`, `"download_factor":50`, `"upload_factor":200`, `"2-2D71`} {
			if !strings.Contains(body, want) {
				t.Errorf("GET torrents/1 = %s, want %s", body, want)
			}
		}
	}},
	{point: 7, name: "DELETE torrents", run: func(t *testing.T, b *bed) {
		b.mustAPI("DELETE", "torrents", fmt.Sprintf(`{"id":1,"info_hash":"%x"}`, ih(1)))
		expect(t, b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 0, 0, 0, "")), failure("Torrent has been deleted."))
		b.flush()
		if n := b.int("SELECT COUNT(*) FROM unregistered_info_hashes WHERE user_id = 2 AND info_hash = ?", hashBytes(1)); n != 1 {
			t.Errorf("%d unregistered_info_hashes rows, want 1", n)
		}
		if status, _ := b.api("DELETE", "torrents", `{"id":99,"info_hash":"00"}`); status != 400 {
			t.Errorf("DELETE of an unknown torrent: %d, want 400", status)
		}
	}},
	{point: 8, name: "PUT users with new_passkey", run: func(t *testing.T, b *bed) {
		ok(t, b.announce(pk(3), query(ih(1), pid(3, 1), 6881, 0, 0, 0, "")))
		parse(t, b.announce(pk(2), query(ih(1), pid(2, 1), 6882, 0, 0, 10, ""))) // asks for the seed list
		_, before := b.api("GET", "users/2", "")
		fresh := fmt.Sprintf("%032x", 0xabc)
		b.mustAPI("PUT", "users", userBody(2, 1, pk(2), fresh))
		expect(t, b.announce(pk(2), query(ih(1), pid(2, 2), 6883, 0, 0, 10, "")), failure("Passkey does not exist. Please re-download the .torrent file."))
		ok(t, b.announce(fresh, query(ih(9), pid(2, 3), 6884, 0, 0, 0, "")))
		_, after := b.api("GET", "users/2", "")
		rates := func(s string) string { return s[strings.Index(s, `"receive_seed_list_rates"`):] }
		if !strings.Contains(before, `"count":1.0`) || rates(before) != rates(after) {
			t.Errorf("limiters before %s\nafter %s", before, after)
		}
	}},
	{point: 9, name: "DELETE users", run: func(t *testing.T, b *bed) {
		b.mustAPI("DELETE", "users", fmt.Sprintf(`{"id":2,"passkey":%q}`, pk(2)))
		expect(t, b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 0, 0, 0, "")), failure("Passkey does not exist. Please re-download the .torrent file."))
	}},
	{point: 10, name: "PUT and DELETE groups", run: func(t *testing.T, b *bed) {
		b.mustAPI("PUT", "groups", groupBody(1, "banned", "null", false, false, false))
		expect(t, b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 0, 0, 0, "")), failure("Your account is not enabled. (Current: banned)."))
		b.mustAPI("DELETE", "groups", `{"id":1}`)
		expect(t, b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 0, 0, 0, "")), failure("Group not found."))
	}},
	{point: 11, name: "blacklisted agents", extra: "INSERT INTO blacklist_clients (name, peer_id_prefix) VALUES ('Bad client', '-BD');", run: func(t *testing.T, b *bed) {
		bad := func(prefix string) [20]byte { p := pid(2, 1); copy(p[:], prefix); return p }
		const refused = "Client is not acceptable. Please check our blacklist."
		expect(t, b.announce(pk(2), query(ih(1), bad("-BD"), 6881, 0, 0, 0, "")), failure(refused))
		ok(t, b.announce(pk(2), query(ih(1), bad("-XX"), 6881, 0, 0, 0, "")))
		b.mustAPI("PUT", "blacklisted-agents", `{"peer_id_prefix":"-XX"}`)
		expect(t, b.announce(pk(2), query(ih(1), bad("-XX"), 6882, 0, 0, 0, "")), failure(refused))
		b.mustAPI("DELETE", "blacklisted-agents", `{"peer_id_prefix":"-XX"}`)
		ok(t, b.announce(pk(2), query(ih(1), bad("-XX"), 6882, 0, 0, 0, "")))
	}},
	{point: 12, name: "GET torrents/{id}", run: func(t *testing.T, b *bed) {
		ok(t, b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 0, 0, 0, "")))
		status, body := b.api("GET", "torrents/1", "")
		if status != 200 {
			t.Fatalf("status %d", status)
		}
		checkTorrentShape(t, body)
		if status, _ := b.api("GET", "torrents/77", ""); status != 404 {
			t.Errorf("unknown torrent: %d, want 404", status)
		}
	}},
	{point: 13, name: "GET users/{id}", run: func(t *testing.T, b *bed) {
		status, body := b.api("GET", "users/2", "")
		if status != 200 {
			t.Fatalf("status %d", status)
		}
		checkUserShape(t, body)
		if status, _ := b.api("GET", "users/77", ""); status != 404 {
			t.Errorf("unknown user: %d, want 404", status)
		}
	}},
	{point: 14, name: "GET stats", run: func(t *testing.T, b *bed) {
		status, body := b.api("GET", "stats", "")
		if status != 200 {
			t.Fatalf("status %d", status)
		}
		var m map[string]json.Number
		d := json.NewDecoder(strings.NewReader(body))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		keys := []string{"created_at", "last_request_at", "last_announce_response_at"}
		for _, k := range []string{"requests", "announce_responses"} {
			for _, w := range []string{"1s", "10s", "60s", "900s", "7200s"} {
				keys = append(keys, k+"_per_"+w)
			}
		}
		if len(m) != 13 {
			t.Errorf("%d keys, want 13: %s", len(m), body)
		}
		for _, k := range keys {
			if v, found := m[k]; !found || !strings.ContainsAny(string(v), ".e") {
				t.Errorf("%s = %q, want a float with a decimal point", k, v)
			}
		}
		if !strings.Contains(body, `"announce_responses_per_1s":0.0`) {
			t.Errorf("no announce yet, but %s", body)
		}
	}},
	{point: 15, name: "a missing info_hash", run: func(t *testing.T, b *bed) {
		expect(t, b.announce(pk(2), "port=6881&uploaded=0"), "d14:failure reason39:Query parameter 'info_hash' is missing.8:intervali5400e12:min intervali5400ee")
		expect(t, b.announce(pk(2), ""), "d14:failure reason39:Query parameter 'info_hash' is missing.8:intervali5400e12:min intervali5400ee")
	}},
	{point: 16, name: "info_hash decoding", run: func(t *testing.T, b *bed) {
		h := ih(30)
		h[0], h[5] = '+', 0xab
		b.mustAPI("PUT", "torrents", torrentBody(30, 1, h, 0, 0, 0, 100, 100))
		q := query(h, pid(2, 1), 6881, 0, 0, 0, "")
		q = strings.Replace(q, "info_hash=%2B", "info_hash=+", 1)
		q = strings.Replace(q, "%AB", "%ab", 1)
		ok(t, b.announce(pk(2), q))
		short := strings.Replace(query(h, pid(2, 1), 6881, 0, 0, 0, ""), "info_hash=%2B", "info_hash=", 1)
		expect(t, b.announce(pk(2), short), failure("Invalid 'info_hash'."))
		expect(t, b.announce(pk(2), strings.Replace(q, "%ab", "%zz", 1)), failure("Invalid 'info_hash'."))
	}},
	{point: 17, name: "compact only", run: func(t *testing.T, b *bed) {
		expect(t, b.announce(pk(2), strings.Replace(query(ih(1), pid(2, 1), 6881, 0, 0, 0, ""), "compact=1", "compact=0", 1)),
			failure("Your client does not support compact announces."))
		ok(t, b.announce(pk(3), strings.Replace(query(ih(1), pid(3, 1), 6881, 0, 0, 0, ""), "&compact=1", "", 1)))
		r := parse(t, b.announce(pk(2), strings.Replace(query(ih(1), pid(2, 1), 6882, 0, 0, 5, ""), "&compact=1", "", 1)))
		if len(r.peers) != 6 {
			t.Errorf("peers %q, want one compact peer", r.peers)
		}
	}},
	{point: 18, name: "browser headers", run: func(t *testing.T, b *bed) {
		for _, h := range []string{"Accept-Language", "Referer", "Accept-Charset", "Want-Digest"} {
			expect(t, b.announceH(pk(2), query(ih(1), pid(2, 1), 6881, 0, 0, 0, ""), map[string]string{h: "x"}), failure("Abnormal access blocked."))
		}
	}},
	{point: 19, name: "user agents", run: func(t *testing.T, b *bed) {
		q := query(ih(1), pid(2, 1), 6881, 0, 0, 0, "")
		expect(t, b.announceH(pk(2), q, map[string]string{"User-Agent": strings.Repeat("a", 65)}), failure("The user agent of this client is too long."))
		expect(t, b.announceH(pk(2), q, map[string]string{"User-Agent": ""}), failure("Invalid user agent."))
		expect(t, b.announceH(pk(2), q, map[string]string{"User-Agent": "Mozilla/5.0"}), failure("Browser, crawler or cheater is not allowed."))
		ok(t, b.announceH(pk(2), q, map[string]string{"User-Agent": strings.Repeat("a", 64)}))
	}},
	{point: 20, name: "illegal ports", run: func(t *testing.T, b *bed) {
		expect(t, b.announce(pk(2), query(ih(1), pid(2, 1), 80, 0, 0, 0, "event=started")), failure("Illegal port: 80. Port should be between 6881-64999."))
		got := b.announce(pk(2), query(ih(1), pid(2, 1), 80, 0, 0, 0, "event=stopped"))
		if strings.Contains(got, "Illegal port") {
			t.Errorf("stopped on port 80: %q", got)
		}
	}},
	{point: 21, name: "passkey length", run: func(t *testing.T, b *bed) {
		for _, p := range []string{pk(2)[:31], pk(2) + "0"} {
			expect(t, b.announce(p, query(ih(1), pid(2, 1), 6881, 0, 0, 0, "")), failure("Invalid passkey."))
		}
	}},
	{point: 22, name: "unknown info_hash", run: func(t *testing.T, b *bed) {
		at := time.Now().UTC().Truncate(time.Second)
		var r backend.AnnounceReply
		req := &backend.AnnounceRequest{Announce: backend.Announce{InfoHash: ih(40), PeerID: pid(2, 1),
			Addr: netip.MustParseAddrPort("127.0.0.1:6881"), Left: 0, Time: at, UserAgent: "qBittorrent/4.6.5"}, Passkey: pk(2), NumWant: -1}
		b.c.Announce(req, &r)
		if r.Failure != "InfoHash not found." {
			t.Fatalf("failure %q", r.Failure)
		}
		b.flush()
		created := b.int("SELECT UNIX_TIMESTAMP(created_at) FROM unregistered_info_hashes WHERE user_id = 2 AND info_hash = ?", hashBytes(40))
		req.Time = at.Add(time.Minute)
		b.c.Announce(req, &r)
		b.flush()
		if got := b.int("SELECT UNIX_TIMESTAMP(created_at) FROM unregistered_info_hashes WHERE user_id = 2"); got != created || created != at.Unix() {
			t.Errorf("created_at %d then %d, want %d", created, got, at.Unix())
		}
		if got := b.int("SELECT UNIX_TIMESTAMP(updated_at) FROM unregistered_info_hashes WHERE user_id = 2"); got != at.Add(time.Minute).Unix() {
			t.Errorf("updated_at %d, want %d", got, at.Add(time.Minute).Unix())
		}
		// Over HTTP too.
		expect(t, b.announce(pk(2), query(ih(41), pid(2, 1), 6881, 0, 0, 0, "")), failure("InfoHash not found."))
	}},
	{point: 23, name: "torrents in moderation", run: func(t *testing.T, b *bed) {
		expect(t, b.announce(pk(2), query(ih(2), pid(2, 1), 6881, 0, 0, 0, "")),
			"d8:completei0e10:downloadedi0e10:incompletei0e8:intervali30e12:min intervali30e5:peers0:15:warning message30:Torrent is pending moderation.e")
		expect(t, b.announce(pk(2), query(ih(3), pid(2, 1), 6881, 0, 0, 0, "")),
			"d8:completei0e10:downloadedi0e10:incompletei0e8:intervali30e12:min intervali30e5:peers0:15:warning message26:Torrent has been rejected.e")
		expect(t, b.announce(pk(2), query(ih(4), pid(2, 1), 6881, 0, 0, 0, "")),
			"d8:completei0e10:downloadedi0e10:incompletei0e8:intervali30e12:min intervali30e5:peers0:15:warning message27:Torrent has been postponed.e")
		expect(t, b.announce(pk(2), query(ih(7), pid(2, 1), 6881, 0, 0, 0, "")), failure("Torrent not approved."))
		b.flush()
		if n := b.int("SELECT (SELECT COUNT(*) FROM peers) + (SELECT COUNT(*) FROM history)"); n != 0 {
			t.Errorf("%d rows written", n)
		}
	}},
	{point: 24, name: "stopped unknown peer", run: func(t *testing.T, b *bed) {
		expect(t, b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 0, 0, 0, "event=stopped")),
			"d8:completei0e10:downloadedi0e10:incompletei0e8:intervali5400e12:min intervali5400e5:peers0:15:warning message27:Stopped peer doesn't exist.e")
		b.flush()
		if n := b.int("SELECT (SELECT COUNT(*) FROM peers) + (SELECT COUNT(*) FROM history)"); n != 0 {
			t.Errorf("%d rows written", n)
		}
	}},
	{point: 25, name: "downloading privileges", run: func(t *testing.T, b *bed) {
		expect(t, b.announce(pk(4), query(ih(1), pid(4, 1), 6881, 0, 0, 5, "")), failure("Your downloading privileges have been disabled."))
		ok(t, b.announce(pk(4), query(ih(1), pid(4, 1), 6881, 0, 0, 0, "")))
	}},
	{point: 26, name: "peers per user and torrent", run: func(t *testing.T, b *bed) {
		for i := 1; i <= 3; i++ {
			ok(t, b.announce(pk(2), query(ih(1), pid(2, i), 6880+i, 0, 0, 0, "")))
		}
		expect(t, b.announce(pk(2), query(ih(1), pid(2, 4), 6884, 0, 0, 0, "")), failure("You already have 3 peers on this torrent. Ignoring."))
		_, body := b.api("GET", "torrents/1", "")
		if n := strings.Count(body, `"ip_address"`); n != 3 {
			t.Errorf("%d peers stored, want 3", n)
		}
	}},
	{point: 27, name: "first announce credits nothing; counters going down credit nothing", run: func(t *testing.T, b *bed) {
		ok(t, b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 1000, 500, 10, "event=started")))
		b.flush()
		if up, down := b.int("SELECT actual_uploaded FROM history WHERE user_id = 2"), b.int("SELECT actual_downloaded FROM history WHERE user_id = 2"); up != 0 || down != 0 {
			t.Errorf("first announce credited %d up, %d down", up, down)
		}
		b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 3000, 800, 10, ""))
		b.flush()
		if up, down := b.int("SELECT actual_uploaded FROM history WHERE user_id = 2"), b.int("SELECT actual_downloaded FROM history WHERE user_id = 2"); up != 2000 || down != 300 {
			t.Errorf("second announce: %d up, %d down, want 2000 and 300", up, down)
		}
		b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 100, 900, 10, "")) // uploaded went down
		b.flush()
		if up, down := b.int("SELECT actual_uploaded FROM history WHERE user_id = 2"), b.int("SELECT actual_downloaded FROM history WHERE user_id = 2"); up != 2000 || down != 300 {
			t.Errorf("after a reset: %d up, %d down, want 2000 and 300 still", up, down)
		}
		if up := b.int("SELECT uploaded FROM users WHERE id = 2"); up != 2000 {
			t.Errorf("users.uploaded %d, want 2000", up)
		}
	}},
	{point: 28, name: "times_completed", run: func(t *testing.T, b *bed) {
		ok(t, b.announce(pk(3), query(ih(1), pid(3, 1), 6881, 0, 0, 0, "event=completed"))) // a new peer: not counted
		ok(t, b.announce(pk(2), query(ih(1), pid(2, 1), 6882, 0, 0, 10, "event=started")))
		r := parse(t, b.announce(pk(2), query(ih(1), pid(2, 1), 6882, 0, 10, 0, "event=completed")))
		if r.downloaded != 1 {
			t.Errorf("reply's downloaded %d, want 1", r.downloaded)
		}
		if _, body := b.api("GET", "torrents/1", ""); !strings.Contains(body, `"times_completed":1`) {
			t.Errorf("in memory: %s", body)
		}
		b.flush()
		if n := b.int("SELECT times_completed FROM torrents WHERE id = 1"); n != 1 {
			t.Errorf("torrents.times_completed %d, want 1", n)
		}
	}},
	{point: 29, name: "completed_at is set once", run: func(t *testing.T, b *bed) {
		t0 := time.Now().UTC().Truncate(time.Second)
		b.direct(pk(2), ih(1), pid(2, 1), "127.0.0.1:6881", 0, 0, 10, bittorrent.Started, t0)
		b.direct(pk(2), ih(1), pid(2, 1), "127.0.0.1:6881", 0, 10, 0, bittorrent.Completed, t0.Add(time.Minute))
		b.direct(pk(2), ih(1), pid(2, 1), "127.0.0.1:6881", 0, 10, 0, bittorrent.None, t0.Add(2*time.Minute)) // same flush window
		b.flush()
		first := b.int("SELECT UNIX_TIMESTAMP(completed_at) FROM history WHERE user_id = 2")
		if first != t0.Add(time.Minute).Unix() {
			t.Errorf("completed_at %d, want %d", first, t0.Add(time.Minute).Unix())
		}
		b.direct(pk(2), ih(1), pid(2, 2), "127.0.0.1:6882", 0, 0, 0, bittorrent.Completed, t0.Add(time.Hour))
		b.flush()
		if got := b.int("SELECT UNIX_TIMESTAMP(completed_at) FROM history WHERE user_id = 2"); got != first {
			t.Errorf("completed_at changed to %d", got)
		}
	}},
	{point: 30, name: "announcing again too early", run: func(t *testing.T, b *bed) {
		ok(t, b.announce(pk(3), query(ih(1), pid(3, 1), 6881, 0, 0, 0, "")))
		ok(t, b.announce(pk(2), query(ih(1), pid(2, 1), 6882, 0, 0, 10, "")))
		got := b.announce(pk(2), query(ih(1), pid(2, 1), 6882, 50, 5, 5, ""))
		r := parse(t, got)
		if r.complete != 0 || r.incomplete != 0 || r.peers != "" || r.hasWarning {
			t.Errorf("reply %q, want complete 0, incomplete 0, 5:peers0: and no warning", got)
		}
		b.flush()
		if up := b.int("SELECT actual_uploaded FROM history WHERE user_id = 2"); up != 50 {
			t.Errorf("history.actual_uploaded %d, want 50", up)
		}
		if up := b.int("SELECT uploaded FROM peers WHERE user_id = 2"); up != 50 {
			t.Errorf("peers.uploaded %d, want 50", up)
		}
	}},
	{point: 31, name: "interval", params: `"announce_min": "100s", "announce_min_enforced": "90s", "announce_max": "110s"`, run: func(t *testing.T, b *bed) {
		seen := map[int]bool{}
		for i := range 60 {
			approved := []int{1, 5, 6, 8, 9}
			u, tor := 2+i%3, approved[i/3%5]
			r := parse(t, b.announce(pk(u), query(ih(tor), pid(u, tor), 6881+tor, 0, 0, 0, "")))
			if r.interval < 100 || r.interval > 110 || r.minInterval != 100 {
				t.Fatalf("interval %d, min interval %d", r.interval, r.minInterval)
			}
			seen[r.interval] = true
		}
		if len(seen) < 3 {
			t.Errorf("intervals %v: not drawn at random", seen)
		}
	}},
	{point: 32, name: "peer lists", run: func(t *testing.T, b *bed) {
		// Alice seeds (port 7001) and leeches another peer (7002); Bob
		// seeds (7101); Grace leeches (7201).
		ok(t, b.announce(pk(2), query(ih(1), pid(2, 1), 7001, 0, 0, 0, "")))
		parse(t, b.announce(pk(2), query(ih(1), pid(2, 2), 7002, 0, 0, 10, "")))
		ok(t, b.announce(pk(3), query(ih(1), pid(3, 1), 7101, 0, 0, 0, "")))
		r := parse(t, b.announce(pk(8), query(ih(1), pid(8, 1), 7201, 0, 0, 10, "numwant=2")))
		seeders, leechers := map[int]bool{7001: true, 7101: true}, map[int]bool{7002: true, 7201: true}
		if got := ports(r.peers, 6); len(got) != 2 || !seeders[got[0]] || !seeders[got[1]] {
			t.Errorf("leecher asking for 2 got %v, want the 2 seeders", got)
		}
		r = parse(t, b.announce(pk(9), query(ih(1), pid(9, 1), 7301, 0, 0, 10, "")))
		got := ports(r.peers, 6)
		if len(got) != 4 || !seeders[got[0]] || !seeders[got[1]] || !leechers[got[2]] || !leechers[got[3]] {
			t.Errorf("leecher got %v: want the 2 seeders, then the 2 leechers", got)
		}
		r = parse(t, b.announce(pk(3), query(ih(1), pid(3, 2), 7102, 0, 0, 0, "")))
		for _, p := range ports(r.peers, 6) {
			if p == 7001 || p == 7101 {
				t.Errorf("seeder got seeder %d", p)
			}
			if p == 7101 {
				t.Error("the user's own peer was listed")
			}
		}
		r = parse(t, b.announce(pk(2), query(ih(9), pid(2, 9), 7003, 0, 0, 0, "")))
		r = parse(t, b.announce(pk(3), query(ih(9), pid(3, 9), 7103, 0, 0, 0, "")))
		if r.peers != "" {
			t.Errorf("no leecher, but peers %q", r.peers)
		}
		r = parse(t, b.announce(pk(8), query(ih(1), pid(8, 2), 7202, 0, 0, 10, "numwant=50")))
		if n := len(r.peers) / 6; n > 15 {
			t.Errorf("%d peers, above numwant_max", n)
		}
		r = parse(t, b.announce(pk(8), query(ih(1), pid(8, 2), 7202, 0, 0, 10, "event=stopped")))
		if r.peers != "" {
			t.Errorf("stopped, but peers %q", r.peers)
		}
	}},
	{point: 33, name: "IPv4 and IPv6 peers", run: func(t *testing.T, b *bed) {
		now := time.Now()
		b.direct(pk(3), ih(1), pid(3, 1), "[2001:db8::1]:6999", 0, 0, 0, bittorrent.None, now)
		ok(t, b.announce(pk(9), query(ih(1), pid(9, 1), 7000, 0, 0, 0, "")))
		body := b.announce(pk(2), query(ih(1), pid(2, 1), 7001, 0, 0, 10, ""))
		r := parse(t, body)
		want6 := string(netip.MustParseAddr("2001:db8::1").AsSlice()) + "\x1b\x57"
		if r.peers != "\x7f\x00\x00\x01\x1b\x58" || r.peers6 != want6 {
			t.Errorf("peers %q, peers6 %q", r.peers, r.peers6)
		}
		body = b.announce(pk(8), query(ih(9), pid(8, 1), 7002, 0, 0, 10, ""))
		if strings.Contains(body, "peers6") {
			t.Errorf("peers6 without IPv6 peers: %q", body)
		}
	}},
	{point: 34, name: "download slots", run: func(t *testing.T, b *bed) {
		ok(t, b.announce(pk(3), query(ih(6), pid(3, 1), 6881, 0, 0, 0, "")))
		ok(t, b.announce(pk(5), query(ih(1), pid(5, 1), 6882, 0, 0, 10, "")))
		got := b.announce(pk(5), query(ih(6), pid(5, 2), 6883, 0, 0, 10, ""))
		r := parse(t, got)
		if r.warning != "Download slot limit reached" || r.incomplete != 0 || !strings.HasSuffix(got, "5:peers0:15:warning message27:Download slot limit reachede") {
			t.Errorf("reply %q", got)
		}
		_, body := b.api("GET", "torrents/6", "")
		if !strings.Contains(body, `"leechers":0`) || !strings.Contains(body, `"is_visible":false`) {
			t.Errorf("torrent 6: %s", body)
		}
		b.flush()
		if v := b.int("SELECT visible FROM peers WHERE user_id = 5 AND torrent_id = 6"); v != 0 {
			t.Errorf("peers.visible %d, want 0", v)
		}
	}},
	{point: 35, name: "credit factors", params: `"donor_upload_factor_override": 150, "donor_download_factor_override": 25, "lifetime_donor_download_factor_override": 0`, extra: `
		INSERT INTO freeleech_tokens (user_id, torrent_id) VALUES (3, 6);
		INSERT INTO personal_freeleeches (user_id) VALUES (8);
		INSERT INTO featured_torrents (torrent_id) VALUES (8);`, run: func(t *testing.T, b *bed) {
		for _, c := range []struct {
			name             string
			user, torrent    int
			upWant, downWant int64
		}{
			{"torrent 50% free, double upload", 2, 5, 2000, 1}, // up max(100,100,200); down floor(50*3/100)
			{"freeleech token", 3, 6, 1000, 0},                 // token → 0
			{"personal freeleech", 8, 1, 1000, 0},              // personal → 0
			{"featured", 9, 8, 2000, 0},                        // featured → up 200, down 0
			{"donor overrides", 6, 1, 1500, 0},                 // up max(100,150); down min(100,25) = floor(25*3/100) = 0
			{"lifetime donor", 7, 1, 1000, 0},                  // lifetime download override 0
		} {
			b.announce(pk(c.user), query(ih(c.torrent), pid(c.user, 1), 6881, 0, 0, 10, ""))
			b.announce(pk(c.user), query(ih(c.torrent), pid(c.user, 1), 6881, 1000, 3, 7, ""))
			b.flush()
			up, down := b.int("SELECT uploaded FROM users WHERE id = ?", c.user), b.int("SELECT downloaded FROM users WHERE id = ?", c.user)
			if up != c.upWant || down != c.downWant {
				t.Errorf("%s: credited %d up, %d down, want %d and %d", c.name, up, down, c.upWant, c.downWant)
			}
		}
		// Featured is exactly 200, even under a larger global factor.
		b.close()
		b.open(`"upload_factor": 250`)
		b.announce(pk(9), query(ih(8), pid(9, 2), 6882, 0, 0, 10, ""))
		b.announce(pk(9), query(ih(8), pid(9, 2), 6882, 100, 0, 10, ""))
		b.announce(pk(9), query(ih(1), pid(9, 3), 6883, 0, 0, 10, ""))
		b.announce(pk(9), query(ih(1), pid(9, 3), 6883, 100, 0, 10, ""))
		b.flush()
		if up := b.int("SELECT uploaded FROM history WHERE user_id = 9 AND torrent_id = 8"); up != 2000+200 {
			t.Errorf("featured under upload_factor 250: history.uploaded %d, want 2200", up)
		}
		if up := b.int("SELECT uploaded FROM history WHERE user_id = 9 AND torrent_id = 1"); up != 250 {
			t.Errorf("upload_factor 250: history.uploaded %d, want 250", up)
		}
	}},
	{point: 36, name: "history columns", run: func(t *testing.T, b *bed) {
		b.announce(pk(2), query(ih(5), pid(2, 1), 6881, 100, 100, 10, ""))
		b.announce(pk(2), query(ih(5), pid(2, 1), 6881, 350, 300, 10, ""))
		b.flush()
		b.announce(pk(2), query(ih(5), pid(2, 1), 6881, 400, 500, 10, ""))
		b.flush()
		var up, aup, cup, down, adown, cdown int64
		if err := b.db.QueryRow("SELECT uploaded, actual_uploaded, client_uploaded, downloaded, actual_downloaded, client_downloaded FROM history WHERE user_id = 2 AND torrent_id = 5").
			Scan(&up, &aup, &cup, &down, &adown, &cdown); err != nil {
			t.Fatal(err)
		}
		if up != 600 || aup != 300 || cup != 400 || down != 200 || adown != 400 || cdown != 500 {
			t.Errorf("history: up %d/%d/%d, down %d/%d/%d; want 600/300/400, 200/400/500", up, aup, cup, down, adown, cdown)
		}
	}},
	{point: 37, name: "seedtime", run: func(t *testing.T, b *bed) {
		t0 := time.Now().UTC().Truncate(time.Second).Add(-5 * time.Hour)
		seed := func(user int, left uint64, at time.Duration) {
			b.direct(pk(user), ih(1), pid(user, 1), "127.0.0.1:6881", 0, 0, left, bittorrent.None, t0.Add(at))
			b.flush()
		}
		seed(2, 0, 0)
		seed(2, 0, 100*time.Second)
		seed(2, 0, 150*time.Second)
		seed(2, 0, 150*time.Second+9000*time.Second) // a gap of the TTLs' sum: not counted
		if st := b.int("SELECT seedtime FROM history WHERE user_id = 2"); st != 150 {
			t.Errorf("seeder: seedtime %d, want 150", st)
		}
		seed(3, 10, 0)
		seed(3, 0, 100*time.Second) // was leeching: nothing
		seed(3, 0, 160*time.Second)
		if st := b.int("SELECT seedtime FROM history WHERE user_id = 3"); st != 60 {
			t.Errorf("leecher then seeder: seedtime %d, want 60", st)
		}
	}},
	{point: 38, name: "history.immune only goes from 1 to 0", run: func(t *testing.T, b *bed) {
		b.announce(pk(6), query(ih(1), pid(6, 1), 6881, 0, 0, 0, "")) // immune group
		b.announce(pk(2), query(ih(1), pid(2, 1), 6882, 0, 0, 0, ""))
		b.flush()
		if a, e := b.int("SELECT immune FROM history WHERE user_id = 2"), b.int("SELECT immune FROM history WHERE user_id = 6"); a != 0 || e != 1 {
			t.Fatalf("immune %d and %d, want 0 and 1", a, e)
		}
		b.mustAPI("PUT", "groups", groupBody(1, "user", "null", true, false, false))
		b.mustAPI("PUT", "groups", groupBody(6, "immune", "null", false, false, false))
		b.announce(pk(6), query(ih(1), pid(6, 1), 6881, 0, 0, 0, ""))
		b.announce(pk(2), query(ih(1), pid(2, 1), 6882, 0, 0, 0, ""))
		b.flush()
		if a, e := b.int("SELECT immune FROM history WHERE user_id = 2"), b.int("SELECT immune FROM history WHERE user_id = 6"); a != 0 || e != 0 {
			t.Errorf("immune %d and %d, want 0 and 0", a, e)
		}
	}},
	{point: 39, name: "stopped peers", run: func(t *testing.T, b *bed) {
		b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 0, 0, 0, ""))
		b.announce(pk(2), query(ih(1), pid(2, 2), 6882, 0, 0, 0, ""))
		b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 0, 0, 0, "event=stopped"))
		b.flush()
		var active, visible int
		b.db.QueryRow("SELECT active, visible FROM peers WHERE user_id = 2 AND port = 6881").Scan(&active, &visible)
		if active != 0 || visible != 0 {
			t.Errorf("stopped peer's row: active %d, visible %d", active, visible)
		}
		if a := b.int("SELECT active FROM history WHERE user_id = 2"); a != 1 {
			t.Errorf("history.active %d with another peer active, want 1", a)
		}
		b.announce(pk(2), query(ih(1), pid(2, 2), 6882, 0, 0, 0, "event=stopped"))
		b.flush()
		if a := b.int("SELECT active FROM history WHERE user_id = 2"); a != 0 {
			t.Errorf("history.active %d after the last stop, want 0", a)
		}
	}},
	{point: 40, name: "torrent counters move by deltas", run: func(t *testing.T, b *bed) {
		b.exec("UPDATE torrents SET seeders = 100, leechers = 50, times_completed = 7, balance = 1000 WHERE id = 1")
		b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 0, 0, 0, ""))
		b.announce(pk(3), query(ih(1), pid(3, 1), 6882, 0, 0, 10, ""))
		b.announce(pk(3), query(ih(1), pid(3, 1), 6882, 30, 10, 0, ""))
		b.flush()
		var s, l, c, bal int64
		b.db.QueryRow("SELECT seeders, leechers, times_completed, balance FROM torrents WHERE id = 1").Scan(&s, &l, &c, &bal)
		if s != 102 || l != 50 || c != 8 || bal != 1000+30-10 {
			t.Errorf("torrent 1: %d seeders, %d leechers, %d completed, balance %d; want 102, 50, 8, 1020", s, l, c, bal)
		}
	}},
	{point: 41, name: "users change by credited deltas only", extra: `
		CREATE TABLE user_writes (n int NOT NULL);
		INSERT INTO user_writes VALUES (0);
		CREATE TRIGGER users_written BEFORE UPDATE ON users FOR EACH ROW UPDATE user_writes SET n = n + 1;`, run: func(t *testing.T, b *bed) {
		b.exec("UPDATE users SET uploaded = 5, downloaded = 6 WHERE id = 8")
		b.exec("UPDATE user_writes SET n = 0")
		b.mustAPI("PUT", "personal-freeleech", `{"user_id":8}`)
		b.announce(pk(8), query(ih(1), pid(8, 1), 6881, 0, 0, 10, ""))
		b.announce(pk(8), query(ih(1), pid(8, 1), 6881, 0, 100, 10, "")) // all freeleech: nothing credited
		b.flush()
		if n := b.int("SELECT n FROM user_writes"); n != 0 {
			t.Errorf("users written %d times for no credit", n)
		}
		b.announce(pk(8), query(ih(1), pid(8, 1), 6881, 40, 200, 10, ""))
		b.flush()
		if up, down := b.int("SELECT uploaded FROM users WHERE id = 8"), b.int("SELECT downloaded FROM users WHERE id = 8"); up != 45 || down != 6 {
			t.Errorf("users: %d up, %d down; want 45 and 6", up, down)
		}
	}},
	{point: 42, name: "peers.ip and created_at", run: func(t *testing.T, b *bed) {
		t0 := time.Now().UTC().Truncate(time.Second)
		b.direct(pk(2), ih(1), pid(2, 1), "198.51.100.11:6881", 0, 0, 0, bittorrent.None, t0)
		b.direct(pk(3), ih(1), pid(3, 1), "[2001:db8::1]:6881", 0, 0, 0, bittorrent.None, t0)
		b.flush()
		b.direct(pk(2), ih(1), pid(2, 1), "198.51.100.12:6881", 0, 0, 0, bittorrent.None, t0.Add(time.Hour))
		b.flush()
		var ip string
		var n int
		b.db.QueryRow("SELECT INET6_NTOA(ip), LENGTH(ip) FROM peers WHERE user_id = 2").Scan(&ip, &n)
		if ip != "198.51.100.12" || n != 4 {
			t.Errorf("IPv4 peer: %s in %d bytes", ip, n)
		}
		b.db.QueryRow("SELECT INET6_NTOA(ip), LENGTH(ip) FROM peers WHERE user_id = 3").Scan(&ip, &n)
		if ip != "2001:db8::1" || n != 16 {
			t.Errorf("IPv6 peer: %s in %d bytes", ip, n)
		}
		if c := b.int("SELECT UNIX_TIMESTAMP(created_at) FROM peers WHERE user_id = 2"); c != t0.Unix() {
			t.Errorf("created_at %d, want %d (kept)", c, t0.Unix())
		}
	}},
	{point: 43, name: "timestamps in UTC", run: func(t *testing.T, b *bed) {
		t0 := time.Date(2026, 3, 1, 12, 34, 56, 0, time.UTC)
		b.direct(pk(2), ih(1), pid(2, 1), "127.0.0.1:6881", 0, 0, 0, bittorrent.Completed, t0)
		b.flush()
		for _, q := range []string{
			"SELECT updated_at FROM peers WHERE user_id = 2", "SELECT created_at FROM peers WHERE user_id = 2",
			"SELECT updated_at FROM history WHERE user_id = 2", "SELECT completed_at FROM history WHERE user_id = 2",
		} {
			var got time.Time
			if err := b.db.QueryRow(q).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if !got.Equal(t0) {
				t.Errorf("%s: %v, want %v", q, got, t0)
			}
		}
	}},
	{point: 44, name: "writes within a flush interval", params: `"flush_interval": "300ms"`, run: func(t *testing.T, b *bed) {
		b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 0, 0, 0, ""))
		deadline := time.Now().Add(3 * time.Second)
		for b.int("SELECT COUNT(*) FROM peers") == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no peers row 3 s after the announce (flush_interval 300ms)")
			}
			time.Sleep(50 * time.Millisecond)
		}
		// A failed flush losing nothing: TestOutage.
	}},
	{point: 45, name: "start-up resync of seeders and leechers", extra: `
		UPDATE torrents SET seeders = 99, leechers = -4;
		INSERT INTO peers (peer_id, ip, port, agent, uploaded, downloaded, ` + "`left`" + `, seeder, created_at, updated_at, torrent_id, user_id, connectable, active, visible) VALUES
		 ('-qB4650-000002000001', INET6_ATON('10.0.0.2'), 6881, 'q', 0, 0, 0, 1, UTC_TIMESTAMP(), UTC_TIMESTAMP(), 1, 2, 0, 1, 1),
		 ('-qB4650-000003000001', INET6_ATON('10.0.0.3'), 6881, 'q', 0, 0, 5, 0, UTC_TIMESTAMP(), UTC_TIMESTAMP(), 1, 3, 0, 1, 1),
		 ('-qB4650-000008000001', INET6_ATON('10.0.0.8'), 6881, 'q', 0, 0, 0, 1, UTC_TIMESTAMP(), UTC_TIMESTAMP(), 1, 8, 0, 0, 0);`, run: func(t *testing.T, b *bed) {
		var s, l int64
		b.db.QueryRow("SELECT seeders, leechers FROM torrents WHERE id = 1").Scan(&s, &l)
		if s != 1 || l != 1 {
			t.Errorf("torrent 1 after start: %d seeders, %d leechers; want 1 and 1", s, l)
		}
		if n := b.int("SELECT COUNT(*) FROM torrents WHERE id <> 1 AND (seeders <> 0 OR leechers <> 0)"); n != 0 {
			t.Errorf("%d torrents without peers kept their counts", n)
		}
		r := parse(t, b.announce(pk(9), query(ih(1), pid(9, 1), 7000, 0, 0, 10, "")))
		if r.complete != 1 || r.incomplete != 2 || len(r.peers) != 12 {
			t.Errorf("announce after start: %+v", r)
		}
	}},
	{point: 46, name: "reaper", run: func(t *testing.T, b *bed) {
		b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 0, 0, 0, ""))
		b.announce(pk(3), query(ih(1), pid(3, 1), 6882, 0, 0, 10, ""))
		b.flush()
		seeders := b.int("SELECT seeders FROM torrents WHERE id = 1")
		peersAt := b.int("SELECT UNIX_TIMESTAMP(MAX(updated_at)) FROM peers")
		b.c.Reap(time.Now().Add(2*time.Hour + time.Minute))
		b.flush()
		var s, l int64
		b.db.QueryRow("SELECT seeders, leechers FROM torrents WHERE id = 1").Scan(&s, &l)
		if seeders != 1 || s != 0 || l != 0 {
			t.Errorf("after the reaper: %d seeders, %d leechers (were %d seeders)", s, l, seeders)
		}
		if got := b.int("SELECT UNIX_TIMESTAMP(MAX(updated_at)) FROM peers"); got != peersAt {
			t.Error("the reaper wrote peers rows")
		}
		if _, body := b.api("GET", "torrents/1", ""); !strings.Contains(body, `"is_active":false`) || strings.Contains(body, `"is_active":true`) {
			t.Errorf("peers not inactive: %s", body)
		}
	}},
	{point: 47, name: "closing flushes every queue", params: `"announce_logging": true`, run: func(t *testing.T, b *bed) {
		b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 0, 0, 10, "key=abc"))
		b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 10, 10, 10, "key=abc"))
		b.announce(pk(2), query(ih(40), pid(2, 1), 6881, 0, 0, 10, ""))
		if err := b.close(); err != nil { // what the daemon does on SIGTERM
			t.Fatal(err)
		}
		for q, want := range map[string]int64{
			"SELECT COUNT(*) FROM peers": 1, "SELECT COUNT(*) FROM history": 1, "SELECT uploaded FROM users WHERE id = 2": 10,
			"SELECT balance FROM torrents WHERE id = 1": 0, "SELECT COUNT(*) FROM unregistered_info_hashes": 1,
			"SELECT COUNT(*) FROM announces WHERE `key` = 'abc'": 2, "SELECT COUNT(*) FROM chihaya_flush": 0,
		} {
			if got := b.int(q); got != want {
				t.Errorf("%s = %d, want %d", q, got, want)
			}
		}
	}},
	{point: 48, name: "every reply is 200 application/octet-stream", run: func(t *testing.T, b *bed) {
		// announce() checks status and type: one reply of each kind.
		b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 0, 0, 0, ""))               // success
		b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 0, 0, 0, ""))               // silent warning
		b.announce(pk(2), query(ih(2), pid(2, 1), 6881, 0, 0, 0, ""))               // critical warning
		b.announce(pk(2), query(ih(40), pid(2, 1), 6881, 0, 0, 0, ""))              // failure
		b.announce(pk(5), query(ih(1), pid(5, 1), 6882, 0, 0, 1, ""))               // uses the slot
		b.announce(pk(5), query(ih(6), pid(5, 1), 6882, 0, 0, 1, ""))               // warning
		b.announceH(pk(2), "", map[string]string{"Referer": "x", "User-Agent": ""}) // parse failure
	}},
}

// checkTorrentShape runs UNIT3D's getTorrent checks (§2.4.1) on body.
func checkTorrentShape(t *testing.T, body string) {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	isInt := func(v any) bool { n, ok := v.(json.Number); return ok && !strings.ContainsAny(string(n), ".eE") }
	for _, k := range []string{"id", "seeders", "leechers", "times_completed", "download_factor", "upload_factor"} {
		if !isInt(m[k]) {
			t.Errorf("%s = %v, want an int", k, m[k])
		}
	}
	if s, ok := m["status"].(string); !ok || s != "Approved" {
		t.Errorf("status %v, want \"Approved\"", m["status"])
	}
	if _, ok := m["is_deleted"].(bool); !ok {
		t.Error("is_deleted is not a bool")
	}
	peers, ok := m["peers"].(map[string]any)
	if !ok || len(peers) == 0 {
		t.Fatalf("peers %v", m["peers"])
	}
	key := regexp.MustCompile(`^(\d+)\-([0-9a-fA-F]{40})$`)
	for k, v := range peers {
		if !key.MatchString(k) {
			t.Errorf("peer key %q", k)
		}
		p := v.(map[string]any)
		for _, f := range []string{"port", "updated_at", "uploaded", "downloaded"} {
			if !isInt(p[f]) {
				t.Errorf("peer %s = %v, want an int", f, p[f])
			}
		}
		for _, f := range []string{"is_seeder", "is_active", "is_visible"} {
			if _, ok := p[f].(bool); !ok {
				t.Errorf("peer %s = %v, want a bool", f, p[f])
			}
		}
		if _, ok := p["ip_address"].(string); !ok {
			t.Error("peer ip_address is not a string")
		}
	}
}

// checkUserShape runs UNIT3D's getUser checks (§2.4.2) on body.
func checkUserShape(t *testing.T, body string) {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"receive_seed_list_rates", "receive_leech_list_rates"} {
		r, ok := m[k].(map[string]any)
		if !ok {
			t.Fatalf("%s missing", k)
		}
		rates, ok := r["rates"].([]any)
		if !ok || len(rates) != 5 {
			t.Fatalf("%s.rates = %v, want the 5 default windows", k, r["rates"])
		}
		for _, x := range rates {
			for _, f := range []string{"count", "max_count", "window", "updated_at"} {
				n, ok := x.(map[string]any)[f].(json.Number)
				if !ok || !strings.ContainsAny(string(n), ".e") {
					t.Errorf("%s %s = %v, want a float", k, f, n)
				}
			}
		}
	}
	if !bytes.Contains([]byte(body), []byte(`"passkey":"00000000000000000000000000000002"`)) {
		t.Errorf("passkey: %s", body)
	}
}

// hashBytes is torrent n's info_hash as a slice, for SQL arguments.
func hashBytes(n int) []byte { h := ih(n); return h[:] }
