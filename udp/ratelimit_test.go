package udp

import (
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/stats"
)

// TestRateLimit: past its burst an address gets an error naming the
// minutes to wait, for announces and scrapes alike; other addresses are
// served, the refused announce changes no swarm, connects are never
// limited, and a forged connection ID spends nobody's bucket.
func TestRateLimit(t *testing.T) {
	s := newTestServer(t, func(c *config.Config) {
		c.RateLimit = config.RateLimit{RequestsPerSecond: 1.0 / 600, Burst: 2}
	}, nil)
	w := newWorker(s)
	c := newClient(t, w, "10.0.0.1:1")
	// A forger in c's name: its packets carry no valid ID for c's address.
	forger := newClient(t, w, "10.0.0.66:1")
	forger.from = c.from
	for range 5 {
		forger.send(forger.scrapePacket(hash(1)))
	}
	if r := c.announce(ann{ih: hash(1), peer: peer(1), left: leecher, port: 6001}); r.err != "" {
		t.Fatalf("first announce: %q", r.err)
	}
	if _, err := c.scrape(hash(1)); err != "" {
		t.Fatalf("scrape within the burst: %q", err)
	}
	want := rateLimited + "10 min"
	if r := c.announce(ann{ih: hash(1), peer: peer(2), left: 0, port: 6002}); r.err != want {
		t.Errorf("announce over the limit: %+v, want the error %q", r, want)
	}
	if _, err := c.scrape(hash(1)); err != want {
		t.Errorf("scrape over the limit: %q, want %q", err, want)
	}
	c.connect() // never limited
	other := newClient(t, w, "10.0.0.2:1")
	files, err := other.scrape(hash(1))
	if err != "" || len(files) != 1 || files[0].leechers != 1 || files[0].seeders != 0 {
		t.Errorf("another address's scrape: %+v %q, want the one leecher", files, err)
	}
	c.now = c.now.Add(10 * time.Minute)
	c.connect()
	if _, err := c.scrape(hash(1)); err != "" {
		t.Errorf("ten minutes later: %q", err)
	}
	snap := s.stats.Snapshot()
	limited := snap.Transports[stats.UDP].Requests
	if limited[stats.Announce][stats.Limited] != 1 || limited[stats.Scrape][stats.Limited] != 1 {
		t.Errorf("limited requests counted: announces %d, scrapes %d; want 1 and 1",
			limited[stats.Announce][stats.Limited], limited[stats.Scrape][stats.Limited])
	}
}

// TestRateLimitOffByDefault: without rate_limit an address may ask as
// often as it likes, and no table is made.
func TestRateLimitOffByDefault(t *testing.T) {
	s := newTestServer(t, nil, nil)
	w := newWorker(s)
	c := newClient(t, w, "[2001:db8::1]:1")
	for n := range 200 {
		if _, err := c.scrape(hash(1)); err != "" {
			t.Fatalf("scrape %d: %q", n, err)
		}
	}
	if s.tracker.RateLimitEntries() != 0 {
		t.Error("a rate limit table was made with rate_limit off")
	}
}

// TestRateLimitPerSlash64: IPv6 addresses of one /64 share a bucket.
func TestRateLimitPerSlash64(t *testing.T) {
	s := newTestServer(t, func(c *config.Config) { c.RateLimit = config.RateLimit{RequestsPerSecond: 1, Burst: 1} }, nil)
	w := newWorker(s)
	if _, err := newClient(t, w, "[2001:db8::1]:1").scrape(hash(1)); err != "" {
		t.Fatal(err)
	}
	if _, err := newClient(t, w, "[2001:db8::2]:1").scrape(hash(1)); !strings.HasPrefix(err, rateLimited) {
		t.Errorf("same /64: %q, want refused", err)
	}
	if _, err := newClient(t, w, "[2001:db8:0:1::1]:1").scrape(hash(1)); err != "" {
		t.Errorf("another /64: %q", err)
	}
}
