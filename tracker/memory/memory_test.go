package memory

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/tracker"
	"github.com/chihaya/chihaya/tracker/trackertest"
)

func TestConformance(t *testing.T) {
	for _, shards := range []int{1, 64} {
		t.Run(map[int]string{1: "OneShard", 64: "Sharded"}[shards], func(t *testing.T) {
			trackertest.Run(t, func(_ *testing.T, o tracker.Options) tracker.Pool {
				return New(Params{Shards: shards, Private: o.Private, Peering: o.Peering})
			})
		})
	}
}

func TestOpenParams(t *testing.T) {
	for _, tc := range []struct {
		params string
		err    string // empty: no error
	}{
		{``, ""},
		{`null`, ""},
		{`{}`, ""},
		{`{"shards": 16}`, ""},
		{`{"shards": 0}`, "shards: want a power of two"},
		{`{"shards": 12}`, "shards: want a power of two"},
		{`{"shards": 16384}`, ""},
		{`{"shards": 32768}`, "shards: want a power of two from 1 to 16384"},
		{`{"shards": "16"}`, "tracker.params: shards"},
		{`{"shard": 16}`, `unknown key "shard"`},
	} {
		_, err := tracker.Open("memory", tracker.Options{Params: json.RawMessage(tc.params)})
		if tc.err == "" && err != nil {
			t.Errorf("%s: %v", tc.params, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: error %v, want one containing %q", tc.params, err, tc.err)
		}
	}
}

// TestCloseReleasesStore: Close gives the arenas back at once, as
// tracker.Pool promises, and a Conn used after it says so rather than
// reading freed memory; closing one Conn leaves the store open.
func TestCloseReleasesStore(t *testing.T) {
	s := New(Params{Shards: 4})
	loadBench(t, s, 1000, 100)
	c, err := s.Get()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Conn.Close: %v", err)
	}
	if _, n := s.Len(); n != 1000 || s.resident() == 0 {
		t.Fatalf("after a Conn's Close: %d peers, %d bytes resident; want the store untouched", n, s.resident())
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if swarms, peers := s.Len(); swarms != 0 || peers != 0 || s.resident() != 0 {
		t.Errorf("after Close: %d swarms, %d peers, %d bytes resident; want nothing", swarms, peers, s.resident())
	}
	a := benchAnnounce(1, 100)
	var resp tracker.AnnounceResponse
	if err := c.Announce(context.Background(), &a, tracker.Update{Want: 50}, &resp); err != errClosed {
		t.Errorf("Announce after Close: %v, want %v", err, errClosed)
	}
	if _, err := c.Scrape(context.Background(), []bittorrent.InfoHash{a.InfoHash}, nil); err != errClosed {
		t.Errorf("Scrape after Close: %v, want %v", err, errClosed)
	}
	if _, err := c.Purge(context.Background(), time.Now(), true); err != errClosed {
		t.Errorf("Purge after Close: %v, want %v", err, errClosed)
	}
}

// TestGetAllocatesNothing: Get is on every request's path.
func TestGetAllocatesNothing(t *testing.T) {
	s := New(Params{Shards: 1})
	defer s.Close()
	if n := testing.AllocsPerRun(100, func() {
		c, _ := s.Get()
		c.Close()
	}); n != 0 {
		t.Errorf("Get allocates %v times", n)
	}
}
