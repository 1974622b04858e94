package http

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	_ "github.com/chihaya/chihaya/backend/noop"
	"github.com/chihaya/chihaya/config"
	_ "github.com/chihaya/chihaya/tracker/memory"
	"github.com/chihaya/chihaya/tracker/trackertest"
)

// newTestServer returns a server over a fresh memory store, with cfg
// adjusted by mutate.
func newTestServer(t testing.TB, mutate func(*config.Config)) *Server {
	t.Helper()
	cfg := config.Default()
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return NewServer(trackertest.NewTracker(t, cfg, nil))
}

// get serves one request from remote and returns the body after checking
// what every answer must be: 200, text/plain, canonical bencode.
func get(t *testing.T, s *Server, remote, target string) map[string]any {
	t.Helper()
	return getStatus(t, s, remote, target, http.StatusOK)
}

// getStatus is get for an answer of status code.
func getStatus(t *testing.T, s *Server, remote, target string, code int) map[string]any {
	t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != code {
		t.Fatalf("GET %s: status %d, want %d", target, rec.Code, code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/plain" {
		t.Errorf("GET %s: Content-Type %q", target, ct)
	}
	return decodeCanonical(t, rec.Body.Bytes())
}

// decodeCanonical decodes body with anacrolix's strict decoder and checks
// that re-encoding it (which sorts keys) gives the same bytes.
func decodeCanonical(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := bencode.Unmarshal(body, &m); err != nil {
		t.Fatalf("strict decode of %q: %v", body, err)
	}
	again, err := bencode.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, body) {
		t.Fatalf("not canonical bencode:\n got %q\nwant %q", body, again)
	}
	return m
}

// query builds an announce target for peer n of torrent ih.
func query(ih, peer string, port int, left int, extra ...string) string {
	v := url.Values{}
	v.Set("info_hash", ih)
	v.Set("peer_id", peer)
	v.Set("port", strconv.Itoa(port))
	v.Set("uploaded", "0")
	v.Set("downloaded", "0")
	v.Set("left", strconv.Itoa(left))
	q := v.Encode()
	for _, e := range extra {
		q += "&" + e
	}
	return "/announce?" + q
}

const (
	ih1 = "aaaaaaaaaaaaaaaaaaaa"
	ih2 = "bbbbbbbbbbbbbbbbbbbb"
)

func peerID(n int) string {
	return "-TT0001-" + strings.Repeat("0", 12-len(strconv.Itoa(n))) + strconv.Itoa(n)
}

func TestAnnounceCounts(t *testing.T) {
	s := newTestServer(t, nil)
	m := get(t, s, "10.0.0.1:5000", query(ih1, peerID(1), 6881, 100, "event=started"))
	want := map[string]any{
		"complete": int64(0), "incomplete": int64(1), "downloaded": int64(0),
		"interval": int64(1800), "min interval": int64(900), "peers": "",
		"external ip": "\x0a\x00\x00\x01", // BEP 24: raw bytes of 10.0.0.1
	}
	if !equal(m, want) {
		t.Errorf("first announce: %v, want %v", m, want)
	}
	m = get(t, s, "10.0.0.2:5000", query(ih1, peerID(2), 6882, 0))
	if m["complete"] != int64(1) || m["incomplete"] != int64(1) || m["peers"] != "\x0a\x00\x00\x01\x1a\xe1" {
		t.Errorf("seeder: %q", m)
	}
	// completed counts once per peer
	for range 2 {
		m = get(t, s, "10.0.0.1:5000", query(ih1, peerID(1), 6881, 0, "event=completed"))
	}
	if m["complete"] != int64(2) || m["incomplete"] != int64(0) || m["downloaded"] != int64(1) {
		t.Errorf("after completed: %v", m)
	}
	// stopped removes, and answers normally even for an unknown peer
	m = get(t, s, "10.0.0.2:5000", query(ih1, peerID(2), 6882, 0, "event=stopped"))
	if m["complete"] != int64(1) || m["peers"] != "" {
		t.Errorf("after stopped: %q", m)
	}
	m = get(t, s, "10.0.0.3:5000", query(ih2, peerID(3), 6883, 10, "event=stopped"))
	if _, failed := m["failure reason"]; failed || m["incomplete"] != int64(0) {
		t.Errorf("stopped from a stranger: %v", m)
	}
}

func equal(got map[string]any, want map[string]any) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func TestFailuresChangeNothing(t *testing.T) {
	s := newTestServer(t, nil)
	for _, target := range []string{
		"/announce",
		"/announce?info_hash=%zz",
		query(ih1, peerID(1), 0, 10),
		query(ih1, peerID(1), 6881, -1),
		query(ih1, peerID(1), 6881, 10, "event=finished"),
		query(ih1, peerID(1), 6881, 10, "numwant=lots"),
		query(ih1, peerID(1), 6881, 10, "key=%"),
		"/scrape",
		"/scrape?info_hash=short",
	} {
		m := get(t, s, "10.0.0.1:5000", target)
		reason, ok := m["failure reason"].(string)
		if !ok || reason == "" || len(m) != 1 {
			t.Errorf("%s: %v, want only a failure reason", target, m)
		}
	}
	m := get(t, s, "10.0.0.1:5000", "/scrape?info_hash="+ih1)
	files := m["files"].(map[string]any)
	if f := files[ih1].(map[string]any); f["incomplete"] != int64(0) {
		t.Errorf("a refused announce changed the swarm: %v", f)
	}
	s.stats.Flush()
	if snap := s.stats.Snapshot(); snap.RequestsBad != 9 || snap.Announces != 0 {
		t.Errorf("stats: %d bad requests (want 9), %d announces (want 0)", snap.RequestsBad, snap.Announces)
	}
}

func TestCompactPeersByFamily(t *testing.T) {
	s := newTestServer(t, nil)
	get(t, s, "192.0.2.1:1", query(ih1, peerID(1), 0x1ae1, 0))
	get(t, s, "[2001:db8::2]:1", query(ih1, peerID(2), 0x1ae2, 0))
	get(t, s, "[::ffff:192.0.2.3]:1", query(ih1, peerID(3), 0x1ae3, 0)) // a dual-stack socket's view of IPv4
	m := get(t, s, "192.0.2.9:1", query(ih1, peerID(9), 9, 5))
	peers, peers6 := m["peers"].(string), m["peers6"].(string)
	if m6 := get(t, s, "[2001:db8::9]:1", query(ih1, peerID(10), 10, 5)); m6["external ip"] != "\x20\x01\x0d\xb8"+strings.Repeat("\x00", 11)+"\x09" {
		t.Errorf("IPv6 external ip %q", m6["external ip"])
	}
	if len(peers) != 12 || len(peers6) != 18 {
		t.Fatalf("peers %q (want 2 entries of 6 bytes), peers6 %q (want 1 of 18)", peers, peers6)
	}
	got := map[string]bool{peers[:6]: true, peers[6:]: true}
	if !got["\xc0\x00\x02\x01\x1a\xe1"] || !got["\xc0\x00\x02\x03\x1a\xe3"] {
		t.Errorf("peers %q", peers)
	}
	if peers6 != "\x20\x01\x0d\xb8"+strings.Repeat("\x00", 11)+"\x02\x1a\xe2" {
		t.Errorf("peers6 %q", peers6)
	}
	// Without IPv6 peers there is no peers6 key at all.
	m = get(t, s, "192.0.2.9:1", query(ih2, peerID(9), 9, 5))
	if _, ok := m["peers6"]; ok {
		t.Errorf("peers6 in an IPv4-only swarm: %q", m)
	}
}

func TestDictionaryPeers(t *testing.T) {
	s := newTestServer(t, nil)
	get(t, s, "192.0.2.1:1", query(ih1, peerID(1), 6881, 0))
	get(t, s, "[2001:db8::2]:1", query(ih1, peerID(2), 6882, 0))
	for _, tc := range []struct {
		extra  string
		withID bool
	}{{"compact=0", true}, {"compact=0&no_peer_id=1", false}} {
		m := get(t, s, "192.0.2.9:1", query(ih1, peerID(9), 9, 5, tc.extra))
		list, ok := m["peers"].([]any)
		if !ok || len(list) != 2 {
			t.Fatalf("%s: peers %v", tc.extra, m["peers"])
		}
		want := map[string]map[string]any{
			"192.0.2.1":   {"ip": "192.0.2.1", "port": int64(6881), "peer id": peerID(1)},
			"2001:db8::2": {"ip": "2001:db8::2", "port": int64(6882), "peer id": peerID(2)},
		}
		for _, p := range list {
			d := p.(map[string]any)
			w := want[d["ip"].(string)]
			if !tc.withID {
				delete(w, "peer id")
			}
			if !equal(d, w) {
				t.Errorf("%s: peer %v, want %v", tc.extra, d, w)
			}
		}
	}
}

func TestNumWant(t *testing.T) {
	s := newTestServer(t, func(c *config.Config) { c.MaxNumWant = 60 })
	for n := range 80 {
		get(t, s, "10.0.0.1:1", query(ih1, peerID(n), 1000+n, 5))
	}
	for _, tc := range []struct {
		extra string
		want  int
	}{{"", 50}, {"numwant=0", 0}, {"numwant=3", 3}, {"numwant=-1", 50}, {"numwant=1000", 60}} {
		m := get(t, s, "10.0.0.1:1", query(ih1, peerID(0), 1000, 5, tc.extra))
		if got := len(m["peers"].(string)) / 6; got != tc.want {
			t.Errorf("%q: %d peers, want %d", tc.extra, got, tc.want)
		}
	}
}

func TestIPParameter(t *testing.T) {
	for _, allow := range []bool{false, true} {
		s := newTestServer(t, func(c *config.Config) { c.AllowIPSpoofing = allow })
		get(t, s, "10.0.0.1:1", query(ih1, peerID(1), 0x1ae1, 0, "ip=192.0.2.77"))
		m := get(t, s, "10.0.0.2:1", query(ih1, peerID(2), 2, 5))
		want := "\x0a\x00\x00\x01\x1a\xe1"
		if allow {
			want = "\xc0\x00\x02\x4d\x1a\xe1"
		}
		if m["peers"] != want {
			t.Errorf("allow_ip_spoofing=%v: peers %q, want %q", allow, m["peers"], want)
		}
	}
}

func TestScrape(t *testing.T) {
	s := newTestServer(t, func(c *config.Config) { c.MaxScrapeInfoHashes = 3 })
	get(t, s, "10.0.0.1:1", query(ih2, peerID(1), 1, 0))
	get(t, s, "10.0.0.2:1", query(ih2, peerID(2), 2, 5))
	get(t, s, "10.0.0.2:1", query(ih2, peerID(2), 2, 0, "event=completed"))
	// ih2 before ih1 and repeated: the answer must still be sorted and unique.
	m := get(t, s, "10.0.0.9:1", "/scrape?info_hash="+ih2+"&info_hash="+ih1+"&info_hash="+ih2)
	files := m["files"].(map[string]any)
	if len(files) != 2 {
		t.Fatalf("files %v", files)
	}
	if f := files[ih2].(map[string]any); !equal(f, map[string]any{"complete": int64(2), "incomplete": int64(0), "downloaded": int64(1)}) {
		t.Errorf("known torrent: %v", f)
	}
	if f := files[ih1].(map[string]any); !equal(f, map[string]any{"complete": int64(0), "incomplete": int64(0), "downloaded": int64(0)}) {
		t.Errorf("unknown torrent: %v", f)
	}
	if flags := m["flags"].(map[string]any); flags["min_request_interval"] != int64(900) {
		t.Errorf("flags %v", flags)
	}
	// Over the cap: 414, the status on which Transmission splits its
	// multi-scrape (see headlimit.go).
	m = getStatus(t, s, "10.0.0.9:1", "/scrape?"+strings.Repeat("info_hash="+ih1+"&", 4), http.StatusRequestURITooLong)
	if r := m["failure reason"].(string); !strings.HasPrefix(r, "Request-URI Too Long: ") || !strings.Contains(r, "too many") {
		t.Errorf("four hashes over a cap of three: %v", m)
	}
}

// discardWriter is a ResponseWriter that keeps only the last body, and
// allocates nothing.
type discardWriter struct {
	h    http.Header
	last []byte
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(int)     {}
func (w *discardWriter) Write(b []byte) (int, error) {
	w.last = append(w.last[:0], b...)
	return len(b), nil
}
