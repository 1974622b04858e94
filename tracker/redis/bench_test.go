package redis

import (
	"context"
	"math"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/internal/redistest"
	"github.com/chihaya/chihaya/tracker"
	"github.com/chihaya/chihaya/tracker/trackertest"
)

// benchAnnounce is request i of ../shared/bench/announce.lua's pool over
// torrents swarms: a few swarms of thousands, a long tail of small ones.
func benchAnnounce(i, torrents int) *tracker.Announce {
	u := math.Mod(float64(i)*0.6180339887498949, 1)
	k := int(u*u*float64(torrents)) + 1
	a := &tracker.Announce{
		InfoHash: trackertest.Hash(k), PeerID: trackertest.ID(i),
		Addr: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}),
		Port: uint16(1024 + i%60000), Left: uint64(1000 + i%100000), NumWant: 50,
	}
	if i%10 < 3 {
		a.Left = 0
	}
	return a
}

// BenchmarkAnnounce re-announces a pool of loaded peers, in parallel, with
// numwant 50, as compare.sh's keep-alive run does. The figures at the end
// are Redis's own: its CPU time per script call.
func BenchmarkAnnounce(b *testing.B) {
	srv := redistest.Start(b)
	s := openStore(b, tracker.Options{Peering: tracker.Peering{DualStacked: true}}, nil, srv.Addr)
	const peers, torrents = 100_000, 10_000
	ctx := context.Background()
	var resp tracker.AnnounceResponse
	for i := 1; i <= peers; i++ {
		a := benchAnnounce(i, torrents)
		if err := s.Announce(ctx, a, tracker.Update{Event: bittorrent.Started}, &resp); err != nil {
			b.Fatal(err)
		}
	}
	srv.Do("CONFIG", "RESETSTAT")
	var next atomic.Int64
	b.SetParallelism(16) // as many announces in flight as compare.sh keeps, about
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var resp tracker.AnnounceResponse
		for pb.Next() {
			i := int(next.Add(1))%peers + 1
			resp.Reset()
			if err := s.Announce(ctx, benchAnnounce(i, torrents), tracker.Update{Want: 50}, &resp); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if v, err := srv.Do("INFO", "commandstats"); err == nil {
		for _, line := range strings.Split(v, "\n") {
			if strings.HasPrefix(line, "cmdstat_evalsha:") {
				b.Log(strings.TrimSpace(line))
			}
		}
	}
}
