package memory

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/tracker"
	"github.com/chihaya/chihaya/tracker/trackertest"
)

// TestScrapeAllAndDrop: ScrapeAll lists every swarm with Scrape's counts;
// Drop takes swarms out whole, counting their peers by family, and skips
// hashes without one.
func TestScrapeAllAndDrop(t *testing.T) {
	s := New(Params{Shards: 8, Peering: tracker.Peering{DualStacked: true}})
	defer s.Close()
	loadMixed(t, s, 300, 20)
	all, err := s.ScrapeAll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	swarms, peers := s.Len()
	if len(all) != swarms {
		t.Fatalf("ScrapeAll: %d swarms, Len says %d", len(all), swarms)
	}
	n := 0
	for _, sc := range all {
		one, _ := s.Scrape(context.Background(), []bittorrent.InfoHash{sc.InfoHash}, nil)
		if one[0].Counts != sc.Counts {
			t.Errorf("%x: ScrapeAll %+v, Scrape %+v", sc.InfoHash, sc.Counts, one[0].Counts)
		}
		n += sc.Complete + sc.Incomplete
	}
	if n != peers {
		t.Errorf("ScrapeAll counts %d peers, Len %d", n, peers)
	}

	gone := []bittorrent.InfoHash{all[0].InfoHash, all[1].InfoHash, {0xee}}
	p, err := s.Drop(context.Background(), gone)
	if err != nil || p.Swarms != 2 || len(p.Emptied) != 2 {
		t.Fatalf("Drop: %+v, %v", p, err)
	}
	if p.Peers[0] == 0 || p.Peers[1] == 0 {
		t.Errorf("Drop counted %v peers by family; the swarms had both", p.Peers)
	}
	if left, _ := s.Len(); left != swarms-2 {
		t.Errorf("%d swarms after dropping 2 of %d", left, swarms)
	}
	if sc, _ := s.Scrape(context.Background(), gone[:1], nil); sc[0].Counts != (tracker.Counts{}) {
		t.Errorf("a dropped swarm scrapes %+v", sc[0].Counts)
	}
	// The store still works where the swarms were.
	loadMixed(t, s, 300, 20)
	if _, p := s.Len(); p != peers {
		t.Errorf("%d peers after announcing them again, want %d", p, peers)
	}
}

// loadMixed announces peers peers to torrents torrents: peer i is on
// IPv4 unless i%3 == 0, on IPv6 unless i%3 == 1 (so dual-stacked when
// i%3 == 2), a seeder when i%4 == 0, has completed when i%5 == 0, and is
// user i%7+1's.
func loadMixed(tb testing.TB, s *Store, peers, torrents int) {
	loadMixedAt(tb, s, peers, torrents, time.Time{})
}

func loadMixedAt(tb testing.TB, s *Store, peers, torrents int, at time.Time) {
	tb.Helper()
	var resp tracker.AnnounceResponse
	for i := range peers {
		a := tracker.Announce{InfoHash: trackertest.Hash(i % torrents), PeerID: trackertest.ID(i), Port: uint16(1000 + i), Left: uint64(i % 4), Time: at}
		if i%5 == 0 {
			a.Event = bittorrent.Completed
		}
		u := tracker.Update{Event: a.Event, UserID: uint32(i%7 + 1)}
		if i%3 != 0 {
			a.Addr = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			resp.Reset()
			if err := s.Announce(context.Background(), &a, u, &resp); err != nil {
				tb.Fatal(err)
			}
		}
		if i%3 != 1 {
			a.Addr = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
			resp.Reset()
			if err := s.Announce(context.Background(), &a, u, &resp); err != nil {
				tb.Fatal(err)
			}
		}
	}
}
