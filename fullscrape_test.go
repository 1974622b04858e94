package chihaya

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/anacrolix/torrent/bencode"
)

// TestFullScrapeBinary: with full_scrape on, the built daemon answers
// /scrape without info_hash with every torrent, gzipped to a client that
// takes it, with its build time in Last-Modified and X-Full-Scrape-Generated.
func TestFullScrapeBinary(t *testing.T) {
	d := startDaemon(t, `{"addr": "127.0.0.1:0", "admin_addr": "", "udp_addr": "", "full_scrape": true}`)
	fillState(t, d.public)
	req, _ := http.NewRequest("GET", "http://"+d.public+"/scrape", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Last-Modified") == "" || !strings.Contains(resp.Header.Get("X-Full-Scrape-Generated"), "took=") {
		t.Errorf("headers %v", resp.Header)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(zr)
	var m struct {
		Files map[string]struct {
			Complete   int `bencode:"complete"`
			Incomplete int `bencode:"incomplete"`
			Downloaded int `bencode:"downloaded"`
		} `bencode:"files"`
	}
	if err := bencode.Unmarshal(body, &m); err != nil {
		t.Fatalf("%q: %v", body, err)
	}
	a, b := m.Files[strings.Repeat("a", 20)], m.Files[strings.Repeat("b", 20)]
	if len(m.Files) != 2 || a.Complete != 1 || a.Incomplete != 2 || a.Downloaded != 1 || b.Incomplete != 1 {
		t.Errorf("full scrape %+v", m)
	}
	d.shutdown(t, syscall.SIGTERM)
}
