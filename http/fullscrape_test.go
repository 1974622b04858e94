package http

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bench/workload"
	"github.com/chihaya/chihaya/config"
)

// fullGet serves a full scrape, with Accept-Encoding enc if not empty, and
// returns the answer and its body, gunzipped if it came gzipped.
func fullGet(t *testing.T, s *Server, enc string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest("GET", "/scrape", nil)
	req.RemoteAddr = "10.0.0.1:1000"
	if enc != "" {
		req.Header.Set("Accept-Encoding", enc)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	resp := rec.Result()
	var body io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestFullScrape: /scrape without info_hash answers every torrent (BEP 48),
// gzipped for a client that takes it, with its build time; the copy is
// rebuilt once older than full_scrape_interval, and never on the request.
func TestFullScrape(t *testing.T) {
	s := newTestServer(t, func(c *config.Config) {
		c.FullScrape, c.FullScrapeInterval = true, config.Duration{Duration: 50 * time.Millisecond}
	})
	announce := func(torrent, peer int) {
		t.Helper()
		get(t, s, fmt.Sprintf("10.0.0.%d:1000", peer), fmt.Sprintf("/announce?info_hash=%020d&peer_id=-TR4050-%012d&port=7000&uploaded=0&downloaded=0&left=%d", torrent, peer, peer%2))
	}
	for torrent := range 30 {
		for peer := range torrent%3 + 1 {
			announce(torrent, peer)
		}
	}
	for _, enc := range []string{"", "gzip", "br, gzip;q=0.5", "gzip;q=0", "identity"} {
		resp, body := fullGet(t, s, enc)
		gz := resp.Header.Get("Content-Encoding") == "gzip"
		if want := acceptsGzip(enc); gz != want {
			t.Errorf("Accept-Encoding %q: gzipped %v", enc, gz)
		}
		m := decodeCanonical(t, body)
		files, _ := m["files"].(map[string]any)
		if len(files) != 30 {
			t.Fatalf("Accept-Encoding %q: %d files, want 30", enc, len(files))
		}
		if f := files[fmt.Sprintf("%020d", 2)].(map[string]any); f["complete"] != int64(2) || f["incomplete"] != int64(1) {
			t.Errorf("torrent 2: %v", f)
		}
		if _, err := http.ParseTime(resp.Header.Get("Last-Modified")); err != nil || !strings.Contains(resp.Header.Get(generatedHeader), "; took=") {
			t.Errorf("Last-Modified %q, %s %q", resp.Header.Get("Last-Modified"), generatedHeader, resp.Header.Get(generatedHeader))
		}
	}
	// A new torrent shows once the copy is older than the interval: the
	// request that finds it so starts the build, a later one gets it.
	announce(99, 1)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body := fullGet(t, s, "")
		if files := decodeCanonical(t, body)["files"].(map[string]any); len(files) == 31 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the full scrape does not show a new torrent after 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Off (the default), /scrape without info_hash is refused as before.
func TestFullScrapeOff(t *testing.T) {
	s := newTestServer(t, nil)
	if m := get(t, s, "10.0.0.1:1000", "/scrape"); m["failure reason"] == nil {
		t.Errorf("full scrape while off: %v", m)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for h, want := range map[string]bool{
		"": false, "gzip": true, "GZIP": true, "deflate, gzip": true, "gzip;q=0": false, "gzip; q=0.000": false,
		"gzip;q=0.1": true, "*": true, "br": false, "x-gzip": false,
	} {
		if got := acceptsGzip(h); got != want {
			t.Errorf("acceptsGzip(%q) = %v", h, got)
		}
	}
}

// BenchmarkAnnounceDuringFullScrape measures announces (p99, through the
// handler) over a store of 1M peers in 100k torrents, loaded as
// bench/workload loads them, with and without a client fetching the full
// scrape (gzipped) in a loop, rebuilt every second:
//
//	go test -run '^$' -bench DuringFullScrape -benchtime 1x ./http
func BenchmarkAnnounceDuringFullScrape(b *testing.B) {
	const peers, torrents = 1_000_000, 100_000
	s := newTestServer(b, func(c *config.Config) {
		c.FullScrape, c.FullScrapeInterval = true, config.Duration{Duration: time.Second}
	})
	target := func(i int) string {
		p := workload.Request(i, torrents)
		h, id := workload.InfoHash(p.Torrent), p.PeerID()
		return "/announce?info_hash=" + url.QueryEscape(string(h[:])) + "&peer_id=" + url.QueryEscape(string(id[:])) +
			"&port=" + strconv.Itoa(int(p.Port)) + "&uploaded=0&downloaded=0&left=" + strconv.Itoa(int(p.Left)) + "&compact=1"
	}
	serve := func(target, enc string) {
		req := httptest.NewRequest("GET", target, nil)
		req.RemoteAddr = "10.0.0.1:1000"
		if enc != "" {
			req.Header.Set("Accept-Encoding", enc)
		}
		s.Handler().ServeHTTP(httptest.NewRecorder(), req)
	}
	for i := 1; i <= peers; i++ {
		serve(target(i), "")
	}
	measure := func(scraping bool) (p99 time.Duration, fetches int) {
		var stop atomic.Bool
		done := make(chan struct{})
		if scraping {
			go func() {
				defer close(done)
				for !stop.Load() {
					serve("/scrape", "gzip")
					fetches++
				}
			}()
		}
		var lat []time.Duration
		for i, end := 0, time.Now().Add(5*time.Second); time.Now().Before(end); i++ {
			t := target(1 + (i*7919)%peers)
			start := time.Now()
			serve(t, "")
			lat = append(lat, time.Since(start))
		}
		stop.Store(true)
		if scraping {
			<-done
		}
		slices.Sort(lat)
		return lat[len(lat)*99/100], fetches
	}
	for b.Loop() {
		idle, _ := measure(false)
		busy, n := measure(true)
		b.ReportMetric(float64(idle.Microseconds()), "p99-µs-idle")
		b.ReportMetric(float64(busy.Microseconds()), "p99-µs-full-scraping")
		b.ReportMetric(float64(n)/5, "full-scrapes/s")
	}
	c := s.full.cur.Load()
	b.ReportMetric(float64(len(c.plain)), "full-scrape-bytes")
	b.ReportMetric(float64(len(c.gz)), "gzipped-bytes")
	b.ReportMetric(float64(c.took.Milliseconds()), "build-ms")
}
