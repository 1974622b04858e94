package http

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/chihaya/chihaya/tracker"
)

// benchQuery is an announce as the benchmark's load generator (bench/load)
// sends it.
func benchQuery(peer int) string {
	return fmt.Sprintf("info_hash=%%8A%%1F%%E3%%05%%9C%%7B%%22%%B1%%D0%%3E%%5A%%60%%11%%F2%%A4%%9C%%0D%%88%%47%%31"+
		"&peer_id=-BM0001-%012d&port=%d&uploaded=11264&downloaded=197520&left=13345&compact=1&numwant=50", peer, 1024+peer)
}

func BenchmarkParseAnnounce(b *testing.B) {
	q := benchQuery(12345)
	var a tracker.Announce
	var o announceOptions
	b.ReportAllocs()
	for b.Loop() {
		if err := parseAnnounce(q, &a, &o, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeAnnounce(b *testing.B) {
	r := tracker.AnnounceResponse{Counts: tracker.Counts{Complete: 10, Incomplete: 40}, Interval: 1800e9, MinInterval: 900e9}
	for n := range 50 {
		r.Peers4 = append(r.Peers4, 10, 0, 0, byte(n), 0x1a, 0xe1)
	}
	opt := announceOptions{compact: true}
	buf := make([]byte, 0, 1024)
	me := netip.MustParseAddr("10.0.0.1")
	b.ReportAllocs()
	for b.Loop() {
		buf = appendAnnounce(buf[:0], &r, &opt, me)
	}
}

// BenchmarkAnnounceHandler is the whole handler re-announcing into a swarm
// of 200 peers: parse, store update, selection of 50 peers, encoding and
// stats, without the network.
func BenchmarkAnnounceHandler(b *testing.B) {
	s := newTestServer(b, nil)
	h := s.Handler()
	for n := range 200 {
		req := httptest.NewRequest("GET", "/announce?"+benchQuery(n), nil)
		req.RemoteAddr = "10.0.0.1:1"
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	req := httptest.NewRequest("GET", "/announce?"+benchQuery(7), nil)
	req.RemoteAddr = "10.0.0.7:1"
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}
