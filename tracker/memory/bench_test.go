package memory

import (
	"context"
	"net/netip"
	"testing"

	"github.com/chihaya/chihaya/tracker"
	"github.com/chihaya/chihaya/tracker/trackertest"
)

// BenchmarkAnnounce re-announces peers of a loaded store (1M peers in 100k
// swarms, as compare.sh loads them) and selects 50 peers for each.
func BenchmarkAnnounce(b *testing.B) {
	s := New(Params{Shards: 1024})
	loadBench(b, s, 1_000_000, 100_000)
	ids := make([]tracker.PeerID, 4096)
	for n := range ids {
		ids[n] = trackertest.ID(n)
	}
	var resp tracker.AnnounceResponse
	a := tracker.Announce{InfoHash: benchHash(1), Addr: netip.AddrFrom4([4]byte{127, 0, 0, 1}), Port: 7000, Left: 10}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		a.PeerID = ids[i%len(ids)]
		resp.Reset()
		if err := s.Announce(context.Background(), &a, 50, &resp); err != nil {
			b.Fatal(err)
		}
	}
}
