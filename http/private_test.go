package http

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/tracker/trackertest"
)

// fakeSite is a private-mode backend kept in memory: trackertest's site,
// with the site API's updates and reports besides.
type fakeSite struct {
	*trackertest.Site
	updates []string
}

func (f *fakeSite) Update(action, raw string) ([]byte, error) {
	switch action {
	case "explode":
		return nil, errors.New("cannot explode")
	case "info_torrent":
		return []byte(`{"hash":x,"id":1,"free":0}`), nil
	}
	f.updates = append(f.updates, action+"?"+raw)
	return nil, nil
}
func (f *fakeSite) Report(q url.Values) ([]byte, error) {
	return []byte(`{"get":"` + q.Get("get") + `"}`), nil
}

const (
	pkAlice   = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" // user 1
	pkBob     = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" // user 2
	pkNoLeech = "cccccccccccccccccccccccccccccccc" // user 3, may not leech
	secret    = "0123456789abcdef0123456789abcdef"
	reportKey = "fedcba9876543210fedcba9876543210"
)

func newPrivateServer(t *testing.T) (*Server, *fakeSite) {
	t.Helper()
	// The site sets a 90-minute interval, no jitter, and counts 42
	// snatches of torrent 10.
	site := &fakeSite{Site: &trackertest.Site{
		Users: map[string]backend.User{
			pkAlice: {ID: 1, CanLeech: true}, pkBob: {ID: 2, CanLeech: true}, pkNoLeech: {ID: 3},
		},
		Torrents:  map[bittorrent.InfoHash]backend.Torrent{bittorrent.InfoHash([]byte(ih1)): {ID: 10}},
		Reasons:   map[bittorrent.InfoHash]string{bittorrent.InfoHash([]byte(ih2)): "Dupe"},
		Whitelist: []string{"-TT0001-", "-TR3000-"},
		Interval:  90 * time.Minute,
		JitterSet: true,
		Counts:    map[uint32]int64{10: 42},
	}}
	cfg := config.Default()
	cfg.Private, cfg.TrackerSecret, cfg.ReportSecret = true, secret, reportKey
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return NewServer(trackertest.NewTracker(t, cfg, site)), site
}

func TestPrivateAnnounce(t *testing.T) {
	s, _ := newPrivateServer(t)
	announce := func(pk, remote, ih, peer string, port, left int, extra ...string) map[string]any {
		t.Helper()
		return get(t, s, remote, "/"+pk+query(ih, peer, port, left, extra...))
	}
	failure := func(m map[string]any) string { r, _ := m["failure reason"].(string); return r }

	// Alice seeds from two boxes; Bob leeches.
	announce(pkAlice, "10.0.0.1:1", ih1, peerID(1), 6001, 0)
	announce(pkAlice, "10.0.0.2:1", ih1, peerID(2), 6002, 0)
	m := announce(pkBob, "10.0.0.3:1", ih1, peerID(3), 6003, 100, "corrupt=7")
	if len(m["peers"].(string)) != 12 {
		t.Errorf("Bob got %q, want Alice's two boxes", m["peers"])
	}
	// Alice leeching from a third box never gets her own seedboxes.
	m = announce(pkAlice, "10.0.0.4:1", ih1, peerID(4), 6004, 100)
	if m["peers"] != "\x0a\x00\x00\x03\x17\x73" {
		t.Errorf("Alice got %q, want only Bob (10.0.0.3:6003)", m["peers"])
	}

	for _, tc := range []struct {
		name string
		m    map[string]any
		want string
	}{
		{"UnknownPasskey", announce("dddddddddddddddddddddddddddddddd", "10.0.0.9:1", ih1, peerID(9), 1, 5), "Passkey not found"},
		{"ShortPasskey", get(t, s, "10.0.0.9:1", "/abc"+query(ih1, peerID(9), 1, 5)), "Malformed announce"},
		{"UnregisteredTorrent", announce(pkBob, "10.0.0.9:1", "zzzzzzzzzzzzzzzzzzzz", peerID(9), 1, 5), "Unregistered torrent"},
		{"DeletedTorrent", announce(pkBob, "10.0.0.9:1", ih2, peerID(9), 1, 5), "Unregistered torrent: Dupe"},
		{"NotWhitelisted", announce(pkBob, "10.0.0.9:1", ih1, "-XX0001-000000000009", 1, 5), "Your client is not on the whitelist"},
		{"LeechingForbidden", announce(pkNoLeech, "10.0.0.9:1", ih1, peerID(9), 1, 5, "uploaded=0"), "Access denied, leeching forbidden"},
	} {
		if got := failure(tc.m); got != tc.want {
			t.Errorf("%s: failure %q, want %q (%v)", tc.name, got, tc.want, tc.m)
		}
	}
	// A user who may not leech may still seed.
	if m := announce(pkNoLeech, "10.0.0.8:1", ih1, peerID(8), 6008, 0); failure(m) != "" {
		t.Errorf("seeding without leech rights: %v", m)
	}

	// The swarm: Alice's 2 seeders + user 3's seeder; Bob and Alice leeching.
	// The refused announces added nobody.
	sc := get(t, s, "10.0.0.9:1", "/"+pkBob+"/scrape?info_hash="+ih1)
	if f := sc["files"].(map[string]any)[ih1].(map[string]any); f["complete"] != int64(3) || f["incomplete"] != int64(2) {
		t.Errorf("scrape %v", f)
	}
	if m := get(t, s, "10.0.0.9:1", "/dddddddddddddddddddddddddddddddd/scrape?info_hash="+ih1); failure(m) != "Passkey not found" {
		t.Errorf("scrape with an unknown passkey: %v", m)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", query(ih1, peerID(9), 1, 5), nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("public announce in private mode: %d %q", rec.Code, rec.Body)
	}
}

func TestPrivateBackendRecords(t *testing.T) {
	s, site := newPrivateServer(t)
	req := httptest.NewRequest("GET", "/"+pkBob+query(ih1, peerID(3), 6003, 100, "corrupt=7", "uploaded=0"), nil)
	req.RemoteAddr = "10.0.0.3:1"
	req.Header.Set("User-Agent", "Transmission/3.00")
	s.Handler().ServeHTTP(httptest.NewRecorder(), req)
	get(t, s, "10.0.0.9:1", "/"+pkNoLeech+query(ih1, peerID(9), 1, 5))

	announces := site.Announces()
	if len(announces) != 2 {
		t.Fatalf("backend got %d announces, want 2 (the forbidden one too)", len(announces))
	}
	a := announces[0]
	if a.UserID != 2 || a.TorrentID != 10 || a.Corrupt != 7 || a.UserAgent != "Transmission/3.00" || a.Leechers != 1 || a.Left != 100 {
		t.Errorf("backend record %+v", a)
	}
	if f := announces[1]; f.UserID != 3 || f.Leechers != 1 {
		t.Errorf("forbidden leecher's record %+v: want user 3, and not counted in the swarm", f)
	}
}

func TestSiteFiguresAndExpiry(t *testing.T) {
	s, site := newPrivateServer(t)
	m := get(t, s, "10.0.0.1:1", "/"+pkAlice+query(ih1, peerID(1), 6001, 0))
	if m["interval"] != int64(5400) || m["downloaded"] != int64(42) {
		t.Errorf("announce %v: want the site's interval (5400) and snatches (42)", m)
	}
	sc := get(t, s, "10.0.0.1:1", "/"+pkAlice+"/scrape?info_hash="+ih1)
	if f := sc["files"].(map[string]any)[ih1].(map[string]any); f["downloaded"] != int64(42) {
		t.Errorf("scrape %v: want the site's snatches (42)", f)
	}
	// The site's interval is 90 minutes: a peer silent for 2 hours (past the
	// configured lifetime of 1 hour) is still within two of its intervals.
	if p, err := s.tracker.Reap(context.Background(), time.Now().Add(2*time.Hour)); err != nil || p.Peers[0] != 0 {
		t.Fatalf("Reap after 2h = %+v, %v: want the peer kept", p, err)
	}
	if _, err := s.tracker.Reap(context.Background(), time.Now().Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if swarms := site.Swarms(); len(swarms) != 1 || swarms[0] != "10:0/0" {
		t.Errorf("after expiry the site was told %q, want torrent 10 at 0/0", swarms)
	}
}

func TestSiteUpdates(t *testing.T) {
	s, site := newPrivateServer(t)
	admin := siteUpdates(s.tracker.Config(), s.tracker.Backend(), httpNotFound{})
	call := func(target string) (int, string) {
		rec := httptest.NewRecorder()
		admin.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		return rec.Code, rec.Body.String()
	}
	for _, tc := range []struct{ target, want string }{
		{"/" + secret + "/update?action=add_user&passkey=x&id=4", "success"},
		{"/" + secret + "/update?action=explode", "d14:failure reason14:cannot explodee"},
		{"/" + secret + "/update?action=info_torrent&info_hash=x", `{"hash":x,"id":1,"free":0}`},
		{"/" + reportKey + "/update?action=add_user", "d14:failure reason22:Authentication failuree"},
		{"/" + strings.Repeat("0", 32) + "/update?action=add_user", "d14:failure reason22:Authentication failuree"},
		{"/" + reportKey + "/report?get=stats", `{"get":"stats"}`},
		{"/" + secret + "/report?get=stats", "d14:failure reason22:Authentication failuree"},
		{"/check", "not found"},
		{"/short/update?action=add_user", "not found"},
	} {
		if code, body := call(tc.target); code != 200 && tc.want != "not found" || body != tc.want {
			t.Errorf("%s: %d %q, want %q", tc.target, code, body, tc.want)
		}
	}
	if len(site.updates) != 1 || site.updates[0] != "add_user?action=add_user&passkey=x&id=4" {
		t.Errorf("updates applied: %q", site.updates)
	}
}

type httpNotFound struct{}

func (httpNotFound) ServeHTTP(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("not found")) }
