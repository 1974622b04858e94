package memory

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"runtime"
	"testing"

	"github.com/chihaya/chihaya/tracker"
)

// loadBench fills s the way ../shared/bench/announce.lua does: peer i
// announces to torrent floor(u²·torrents) with u the golden-ratio sequence,
// so a few swarms hold thousands of peers and most hold a handful; 30% are
// seeders.
func loadBench(tb testing.TB, s *Store, peers, torrents int) {
	const phi = 0.6180339887498949
	var resp tracker.AnnounceResponse
	for i := 1; i <= peers; i++ {
		_, u := math.Modf(float64(i) * phi)
		k := int(u*u*float64(torrents)) + 1
		a := tracker.Announce{Addr: netip.AddrFrom4([4]byte{127, 0, 0, 1}), Port: uint16(1024 + i%60000), Left: 1000}
		a.InfoHash = benchHash(k)
		copy(a.PeerID[:], fmt.Sprintf("-BM0001-%012d", i))
		if i%10 < 3 {
			a.Left = 0
		}
		resp.Reset()
		if err := s.Announce(context.Background(), &a, 0, &resp); err != nil {
			tb.Fatal(err)
		}
	}
}

// benchHash is the k-th info_hash of loadBench.
func benchHash(k int) tracker.InfoHash {
	var h tracker.InfoHash
	copy(h[:], fmt.Sprintf("bench-torrent-%06d", k))
	return h
}

func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestBytesPerPeer keeps the store's live heap per peer, at the benchmark's
// shape (10 peers per torrent on average), within budget.
func TestBytesPerPeer(t *testing.T) {
	const peers, torrents = 200_000, 20_000
	before := liveHeap()
	s := New(Params{Shards: 1024})
	loadBench(t, s, peers, torrents)
	after := liveHeap()
	_, n := s.Len()
	if n != peers {
		t.Fatalf("stored %d of %d peers", n, peers)
	}
	per := float64(after-before) / peers
	t.Logf("live heap: %.1f bytes per peer (%d peers, %d torrents)", per, peers, torrents)
	runtime.KeepAlive(s)
}
