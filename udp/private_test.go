package udp

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/tracker/trackertest"
)

const (
	pkAlice   = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" // user 1
	pkNoLeech = "cccccccccccccccccccccccccccccccc" // user 3, may not leech
)

// newSite is a private tracker's site kept in memory, as in the HTTP
// frontend's tests.
func newSite() *trackertest.Site {
	return &trackertest.Site{
		Users:     map[string]backend.User{pkAlice: {ID: 1, CanLeech: true}, pkNoLeech: {ID: 3}},
		Torrents:  map[bittorrent.InfoHash]backend.Torrent{bittorrent.InfoHash([]byte(hash(1))): {ID: 10}},
		Reasons:   map[bittorrent.InfoHash]string{bittorrent.InfoHash([]byte(hash(2))): "Dupe"},
		Whitelist: []string{"-TT0001-"},
	}
}

// urlData is path as BEP 41 options, cut into parts of at most size bytes.
func urlData(path string, size int) []byte {
	var b []byte
	for len(path) > 0 {
		n := min(size, len(path))
		b = append(append(b, optionURLData, byte(n)), path[:n]...)
		path = path[n:]
	}
	return b
}

func TestPrivateAnnounce(t *testing.T) {
	site := newSite()
	s := newTestServer(t, nil, site)
	w := newWorker(s)
	c := newClient(t, w, "10.0.0.1:1")
	for _, tc := range []struct {
		name    string
		options []byte
		ih      string
		peer    string
		left    uint64
		want    string // the error answer; "" for success
	}{
		{"Alice", urlData("/"+pkAlice+"/announce", 255), hash(1), peer(1), 0, ""},
		{"SplitURL", urlData("/"+pkAlice+"/announce", 7), hash(1), peer(2), leecher, ""},
		{"WithQuery", urlData("/"+pkAlice+"/announce?info_hash=x", 255), hash(1), peer(3), leecher, ""},
		{"NoURL", nil, hash(1), peer(4), leecher, "Malformed announce"},
		{"PublicPath", urlData("/announce", 255), hash(1), peer(4), leecher, "Malformed announce"},
		{"ShortPasskey", urlData("/"+pkAlice[1:]+"/announce", 255), hash(1), peer(4), leecher, "Malformed announce"},
		{"Scrape", urlData("/"+pkAlice+"/scrape", 255), hash(1), peer(4), leecher, "Malformed announce"},
		{"UnknownPasskey", urlData("/"+strings.Repeat("x", 32)+"/announce", 255), hash(1), peer(4), leecher, "Passkey not found"},
		{"Unregistered", urlData("/"+pkAlice+"/announce", 255), hash(3), peer(4), leecher, "Unregistered torrent"},
		{"Deleted", urlData("/"+pkAlice+"/announce", 255), hash(2), peer(4), leecher, "Unregistered torrent: Dupe"},
		{"Client", urlData("/"+pkAlice+"/announce", 255), hash(1), "-XX0001-000000000004", leecher, "Your client is not on the whitelist"},
		{"NoLeech", urlData("/"+pkNoLeech+"/announce", 255), hash(1), peer(5), leecher, "Access denied, leeching forbidden"},
	} {
		r := c.announce(ann{ih: tc.ih, peer: tc.peer, left: tc.left, port: 6001, options: tc.options})
		if r.err != tc.want {
			t.Errorf("%s: answered %+v, want error %q", tc.name, r, tc.want)
		}
	}
	// Only Alice's three announces are in the swarm, and the backend saw
	// them as hers.
	if got, _ := newClient(t, w, "10.0.0.2:1").scrape(hash(1)); got != nil {
		t.Errorf("a private scrape without a passkey answered %v", got)
	}
	r := newClient(t, w, "10.0.0.3:1").announce(ann{ih: hash(1), peer: peer(9), left: 0, port: 6009, options: urlData("/"+pkAlice+"/announce", 255)})
	if r.seeders != 2 || r.leechers != 2 {
		t.Errorf("swarm after the refusals: %d seeders, %d leechers; want Alice's 2 and 2", r.seeders, r.leechers)
	}
	for _, a := range site.Announces() {
		if a.UserID != 1 && a.UserID != 3 {
			t.Errorf("backend got an announce of user %d", a.UserID)
		}
	}
}

func TestPrivateScrape(t *testing.T) {
	s := newTestServer(t, nil, newSite())
	c := newClient(t, newWorker(s), "10.0.0.1:1")
	// BEP 41 gives scrapes no options: a private tracker refuses them as it
	// refuses an HTTP scrape without a passkey.
	if got, errMsg := c.scrape(hash(1)); got != nil || errMsg != "Passkey not found" {
		t.Errorf("private scrape: %v %q, want Passkey not found", got, errMsg)
	}
}

// Interned passkeys stay bounded whatever passkeys arrive.
func TestPasskeysBounded(t *testing.T) {
	w := newWorker(newTestServer(t, nil, newSite()))
	for i := range maxPasskeys + 10 {
		if _, err := w.passkey(fmt.Appendf(nil, "/%032d/announce", i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(w.passkeys) > maxPasskeys {
		t.Errorf("%d passkeys interned, want at most %d", len(w.passkeys), maxPasskeys)
	}
}
