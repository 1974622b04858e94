package mysql

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/bittorrent"
)

// tokenSite is a Gazelle stand-in that records token expiry requests.
type tokenSite struct {
	*httptest.Server
	mu       sync.Mutex
	requests []url.Values
	status   int
}

func newTokenSite(t *testing.T) *tokenSite {
	ts := &tokenSite{status: http.StatusOK}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		if r.URL.Path != "/tools.php" {
			t.Errorf("token expiry went to %s", r.URL.Path)
		}
		if ts.status != http.StatusOK {
			w.WriteHeader(ts.status)
			return
		}
		ts.requests = append(ts.requests, r.URL.Query())
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenSite) setStatus(code int) {
	ts.mu.Lock()
	ts.status = code
	ts.mu.Unlock()
}

func (ts *tokenSite) tokens() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var out []string
	for _, q := range ts.requests {
		out = append(out, q.Get("tokens"))
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Freeleech zeroes the download, neutral zeroes both, a token acts as
// freeleech for its holder and records its raw download in
// users_freeleeches; a completed download spends the token: the site is
// told and the torrent counts normally again.
func TestFreeleechNeutralAndTokens(t *testing.T) {
	bothSchemas(t, func(t *testing.T, schema string) {
		s := newSite(t, schema)
		alice, bob := s.addUser(1), s.addUser(2)
		normal := s.addTorrent(1, "0")
		free := s.addTorrent(2, "1")
		neutral := s.addTorrent(3, "2")
		tokened := s.addTorrent(4, "0")
		tokenedNeutral := s.addTorrent(5, "2")
		// Gazelle inserts the token row when the user spends a token
		// (after add_token, or before a reload picks it up).
		s.exec("INSERT INTO users_freeleeches (UserID, TorrentID, Time) VALUES (?, ?, '2020-01-02 03:04:05')", alice, tokened)
		s.exec("INSERT INTO users_freeleeches (UserID, TorrentID, Time) VALUES (?, ?, NOW())", alice, tokenedNeutral)
		ts := newTokenSite(t)
		c := s.open(map[string]any{"site_url": ts.URL + "/", "site_secret": "0123456789abcdef0123456789abcdef", "flush_interval": "20ms"})

		if tor, ok, _ := c.Torrent(hash(2)); !ok || tor.Free != backend.Free {
			t.Fatalf("torrent 2: %+v %v", tor, ok)
		}
		if tor, _, _ := c.Torrent(hash(3)); tor.Free != backend.Neutral {
			t.Fatalf("torrent 3: %+v", tor)
		}
		for i, tid := range []uint32{normal, free, neutral, tokened, tokenedNeutral} {
			n := i + 1
			for _, uid := range []uint32{alice, bob} {
				peer := int(uid)*10 + n
				record(t, c,
					announce{uid: uid, tid: tid, torrent: n, peer: peer, left: 100, event: bittorrent.Started},
					announce{uid: uid, tid: tid, torrent: n, peer: peer, up: 1000, down: 400, left: 100},
				)
			}
		}
		if err := c.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		// alice: normal 1000/400, free 1000/0, neutral 0/0, tokened 1000/0, tokened neutral 0/0
		// bob:   normal 1000/400, free 1000/0, neutral 0/0, tokened 1000/400, neutral 0/0
		if up, down := s.credit(alice); up != 3000 || down != 400 {
			t.Errorf("alice credited %d/%d, want 3000/400", up, down)
		}
		if up, down := s.credit(bob); up != 3000 || down != 800 {
			t.Errorf("bob credited %d/%d, want 3000/800", up, down)
		}
		if got := s.int("SELECT Downloaded FROM users_freeleeches WHERE UserID = ? AND TorrentID = ?", alice, tokened); got != 400 {
			t.Errorf("token row Downloaded %d, want 400", got)
		}
		if got := s.str("SELECT Time FROM users_freeleeches WHERE UserID = ? AND TorrentID = ?", alice, tokened); got != "2020-01-02 03:04:05" {
			t.Errorf("token row Time changed to %s", got)
		}
		// Neutral takes precedence: no token bookkeeping.
		if got := s.int("SELECT Downloaded FROM users_freeleeches WHERE UserID = ? AND TorrentID = ?", alice, tokenedNeutral); got != 0 {
			t.Errorf("neutral token row Downloaded %d, want 0", got)
		}
		if got := s.int("SELECT COUNT(*) FROM users_freeleeches WHERE UserID = ?", bob); got != 0 {
			t.Errorf("bob has %d token rows", got)
		}

		// alice completes the tokened torrent: the token is spent.
		record(t, c, announce{uid: alice, tid: tokened, torrent: 4, peer: int(alice)*10 + 4, up: 1500, down: 500, event: bittorrent.Completed, snatched: true})
		waitFor(t, "the token expiry request", func() bool { return len(ts.tokens()) > 0 })
		if got := ts.tokens(); len(got) != 1 || got[0] != itoa(alice)+":"+itoa(tokened) {
			t.Errorf("token expiry requests %q", got)
		}
		ts.mu.Lock()
		q := ts.requests[0]
		ts.mu.Unlock()
		if q.Get("key") != "0123456789abcdef0123456789abcdef" || q.Get("type") != "expiretoken" || q.Get("action") != "ocelot" {
			t.Errorf("token expiry query %v", q)
		}
		// Further downloads count.
		record(t, c, announce{uid: alice, tid: tokened, torrent: 4, peer: int(alice)*10 + 4, up: 1500, down: 900})
		flush(t, c)
		if up, down := s.credit(alice); up != 3500 || down != 800 {
			t.Errorf("alice credited %d/%d after the token was spent, want 3500/800", up, down)
		}
		if got := s.int("SELECT Downloaded FROM users_freeleeches WHERE UserID = ? AND TorrentID = ?", alice, tokened); got != 500 {
			t.Errorf("token row Downloaded %d, want 500", got)
		}
	})
}

// The site is down: token expiries stay queued and are sent once it is
// back, in lists of at most 350 characters.
func TestTokenExpiryRetriesAndSplits(t *testing.T) {
	s := newSite(t, SchemaLeechStats)
	ts := newTokenSite(t)
	ts.setStatus(http.StatusServiceUnavailable)
	c := s.open(map[string]any{"site_url": ts.URL, "site_secret": "0123456789abcdef0123456789abcdef", "flush_interval": "20ms"})
	for i := range 100 {
		c.comm.expire(uint32(100000+i), uint32(200000+i))
	}
	time.Sleep(100 * time.Millisecond)
	if n := c.comm.queued(); n != 100 {
		t.Fatalf("%d tokens queued while the site fails, want 100", n)
	}
	ts.setStatus(http.StatusOK)
	waitFor(t, "the tokens to be sent", func() bool { return c.comm.queued() == 0 })
	seen := 0
	for _, list := range ts.tokens() {
		if len(list) > maxTokenList {
			t.Errorf("a list of %d characters", len(list))
		}
		for range splitComma(list) {
			seen++
		}
	}
	if seen != 100 {
		t.Errorf("%d tokens sent, want 100", seen)
	}
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

func itoa(v uint32) string {
	var b [10]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
