package http

import (
	"net/netip"
	"testing"
	"time"

	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/internal/metricstest"
	"github.com/chihaya/chihaya/stats"
	"github.com/chihaya/chihaya/tracker"
)

// limitTo sets rate_limit.
func limitTo(rps float64, burst int) func(*config.Config) {
	return func(c *config.Config) { c.RateLimit = config.RateLimit{RequestsPerSecond: rps, Burst: burst} }
}

// refused reports whether m is the rate limit's refusal, and its retry in.
func refused(m map[string]any) (retryIn int64, ok bool) {
	if m["failure reason"] != string(tracker.ErrRateLimited) || len(m) != 2 {
		return 0, false
	}
	retryIn, ok = m["retry in"].(int64)
	return retryIn, ok
}

// TestRateLimit: past its burst a client gets a failure with "retry in",
// whatever it asks (announce, scrape, a malformed request); other clients
// are served, and the refused announces change no swarm.
func TestRateLimit(t *testing.T) {
	s := newTestServer(t, limitTo(1.0/600, 3)) // one request every ten minutes
	for n := range 3 {
		if m := get(t, s, "10.0.0.1:1", query(ih1, peerID(1), 1, 5)); m["failure reason"] != nil {
			t.Fatalf("request %d within the burst: %v", n, m)
		}
	}
	for _, target := range []string{
		query(ih1, peerID(2), 2, 0, "event=started"), // a new peer: must not join
		"/scrape?info_hash=" + ih1,
		"/announce?info_hash=%zz",
	} {
		m := get(t, s, "10.0.0.1:1", target)
		if retry, ok := refused(m); !ok || retry != 10 {
			t.Errorf("%s over the limit: %v, want a refusal with retry in 10 (minutes)", target, m)
		}
	}
	// Another client, and another peer of the torrent from it: served, and
	// the swarm holds only the first peer.
	m := get(t, s, "10.0.0.2:1", "/scrape?info_hash="+ih1)
	f := m["files"].(map[string]any)[ih1].(map[string]any)
	if f["incomplete"] != int64(1) || f["complete"] != int64(0) {
		t.Errorf("swarm after refused announces: %v, want the one leecher", f)
	}
	s.stats.Flush()
	snap := s.stats.Snapshot()
	if got := snap.Requests[stats.Announce][stats.Limited] + snap.Requests[stats.Scrape][stats.Limited]; got != 3 {
		t.Errorf("%d requests counted as limited, want 3", got)
	}
	if snap.Announces != 3 || snap.Scrapes != 1 {
		t.Errorf("%d announces and %d scrapes answered, want 3 and 1", snap.Announces, snap.Scrapes)
	}
}

// TestRetryIn: BEP 31's "retry in" is in whole minutes, rounded up, and
// at least one.
func TestRetryIn(t *testing.T) {
	for _, tc := range []struct {
		retry time.Duration
		want  string
	}{
		{0, "i1e"},
		{time.Millisecond, "i1e"},
		{time.Minute, "i1e"},
		{time.Minute + time.Nanosecond, "i2e"},
		{90 * time.Minute, "i90e"},
	} {
		got := string(appendRetry(nil, "slow down", tc.retry))
		if want := "d14:failure reason9:slow down8:retry in" + tc.want + "e"; got != want {
			t.Errorf("retry %v: %q, want %q", tc.retry, got, want)
		}
	}
}

// TestRateLimitKeys: the bucket is the client's: per IPv4 address, per
// IPv6 /64, and behind a trusted proxy the address it names, never the
// proxy's nor the "ip" parameter's.
func TestRateLimitKeys(t *testing.T) {
	for _, tc := range []struct {
		name          string
		mutate        func(*config.Config)
		first, second string // remote addresses
		xff1, xff2    string // X-Forwarded-For, if any
		ip1, ip2      string // the "ip" parameter, if any
		shareBucket   bool
	}{
		{name: "same IPv4", first: "192.0.2.1:1", second: "192.0.2.1:2", shareBucket: true},
		{name: "other IPv4", first: "192.0.2.1:1", second: "192.0.2.2:1"},
		{name: "same /64", first: "[2001:db8::1]:1", second: "[2001:db8::ffff:2]:1", shareBucket: true},
		{name: "other /64", first: "[2001:db8::1]:1", second: "[2001:db8:0:1::1]:1"},
		{name: "mapped IPv4", first: "192.0.2.1:1", second: "[::ffff:192.0.2.1]:1", shareBucket: true},
		{name: "ip parameter ignored", mutate: func(c *config.Config) { c.AllowIPSpoofing = true },
			first: "192.0.2.1:1", second: "192.0.2.1:1", ip1: "198.51.100.1", ip2: "198.51.100.2", shareBucket: true},
		{name: "behind a proxy, two clients", mutate: behindProxy,
			first: "127.0.0.1:1", second: "127.0.0.1:2", xff1: "198.51.100.1", xff2: "198.51.100.2"},
		{name: "behind a proxy, one client", mutate: behindProxy,
			first: "127.0.0.1:1", second: "127.0.0.1:2", xff1: "198.51.100.1", xff2: "198.51.100.1", shareBucket: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, func(c *config.Config) {
				limitTo(1, 1)(c)
				if tc.mutate != nil {
					tc.mutate(c)
				}
			})
			ask := func(remote, xff, ip string, peer int) map[string]any {
				var extra []string
				if ip != "" {
					extra = append(extra, "ip="+ip)
				}
				return getVia(t, s, remote, xff, query(ih1, peerID(peer), peer, 5, extra...))
			}
			if _, limited := refused(ask(tc.first, tc.xff1, tc.ip1, 1)); limited {
				t.Fatal("first request refused")
			}
			_, limited := refused(ask(tc.second, tc.xff2, tc.ip2, 2))
			if limited != tc.shareBucket {
				t.Errorf("second request refused = %v, want %v", limited, tc.shareBucket)
			}
		})
	}
}

func behindProxy(c *config.Config) {
	c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	c.RealIPHeader = config.XForwardedFor
}

// TestRateLimitOffAndReloaded: off by default (a client may ask as often
// as it likes), on after a reload that sets it, off again after one that
// clears it.
func TestRateLimitOffAndReloaded(t *testing.T) {
	s := newTestServer(t, nil)
	ask := func() bool {
		_, limited := refused(get(t, s, "192.0.2.1:1", "/scrape?info_hash="+ih1))
		return limited
	}
	for range 100 {
		if ask() {
			t.Fatal("refused with rate_limit off")
		}
	}
	if s.tracker.RateLimitEntries() != 0 {
		t.Error("a limiter was made with rate_limit off")
	}
	on := *s.tracker.Config()
	limitTo(1, 2)(&on)
	s.tracker.Reload(&on)
	for i, want := range []bool{false, false, true} {
		if got := ask(); got != want {
			t.Errorf("after a reload turning it on, request %d: refused = %v, want %v", i, got, want)
		}
	}
	off := on
	off.RateLimit = config.RateLimit{}
	s.tracker.Reload(&off)
	if ask() {
		t.Error("refused after a reload turning it off")
	}
}

// TestLimitedInMetrics: /metrics counts limited requests by kind.
func TestLimitedInMetrics(t *testing.T) {
	f := newAdminFixture(t, limitTo(1, 1))
	f.public(t, "192.0.2.1:1", announceURL(ih1, 1, 5, "started"))
	f.public(t, "192.0.2.1:1", announceURL(ih1, 1, 5, ""))
	f.public(t, "192.0.2.1:1", "/scrape?info_hash="+ih1)
	f.stats.Flush()
	mfs := f.metrics(t)
	for labels, want := range map[string]float64{
		"transport=http,kind=announce,outcome=limited": 1,
		"transport=http,kind=scrape,outcome=limited":   1,
		"transport=http,kind=announce,outcome=ok":      1,
	} {
		if got, ok := metricstest.Value(mfs, "chihaya_requests_total", labels); !ok || got != want {
			t.Errorf("chihaya_requests_total{%s} = %v (found %v), want %v", labels, got, ok, want)
		}
	}
}
