//go:build !race

// The race detector makes sync.Pool drop items on purpose, so allocation
// counts are only meaningful without it: `make test` runs this file in a
// pass of its own.

package http

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chihaya/chihaya/config"
)

// TestSteadyStateAnnounceAllocatesNothing measures the handler alone: the
// request and the response writer are the caller's.
func TestSteadyStateAnnounceAllocatesNothing(t *testing.T) {
	h, req, w := steadyAnnounce(t, nil)
	if n := testing.AllocsPerRun(200, func() { h.ServeHTTP(w, req) }); n != 0 {
		t.Errorf("a steady-state announce allocates %v times", n)
	}
	if len(w.last) < 50*6 {
		t.Errorf("answer %q too short for 50 peers", w.last)
	}
}

// TestRateLimitedAnnounceAllocatesNothing: with rate_limit on, an allowed
// announce still allocates nothing, and neither does a refused one.
func TestRateLimitedAnnounceAllocatesNothing(t *testing.T) {
	h, req, w := steadyAnnounce(t, limitTo(1e6, 10000))
	if n := testing.AllocsPerRun(200, func() { h.ServeHTTP(w, req) }); n != 0 {
		t.Errorf("an announce under the rate limit allocates %v times", n)
	}
	if _, limited := refused(decodeCanonical(t, w.last)); limited || len(w.last) < 50*6 {
		t.Errorf("answer %q: want 50 peers", w.last)
	}

	strict := newTestServer(t, limitTo(1.0/3600, 1))
	h = strict.Handler()
	h.ServeHTTP(w, req)
	h.ServeHTTP(w, req)
	if n := testing.AllocsPerRun(200, func() { h.ServeHTTP(w, req) }); n != 0 {
		t.Errorf("a refused announce allocates %v times", n)
	}
	if retry, limited := refused(decodeCanonical(t, w.last)); !limited || retry != 60 {
		t.Errorf("answer %q: want a refusal with retry in 60", w.last)
	}
}

// steadyAnnounce returns the handler of a server configured by mutate,
// with a swarm of 60 peers, and a compact announce of one of them asking
// for 50 peers, already answered once, so that the pools are warm.
func steadyAnnounce(t *testing.T, mutate func(*config.Config)) (http.Handler, *http.Request, *discardWriter) {
	t.Helper()
	s := newTestServer(t, mutate)
	for n := range 60 {
		get(t, s, "10.0.0.1:1", query(ih1, peerID(n), 1000+n, n%2))
	}
	req := httptest.NewRequest("GET", query(ih1, peerID(7), 1007, 1, "numwant=50", "compact=1"), nil)
	req.RemoteAddr = "10.0.0.7:1"
	w := &discardWriter{h: http.Header{}}
	h := s.Handler()
	h.ServeHTTP(w, req)
	return h, req, w
}
