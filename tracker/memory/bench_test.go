package memory

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chihaya/chihaya/bench/workload"
	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/tracker"
	"github.com/chihaya/chihaya/tracker/trackertest"
)

// BenchmarkAnnounce re-announces peers of a loaded store (1M peers in 100k
// swarms, as make bench loads them) and selects 50 peers for each.
func BenchmarkAnnounce(b *testing.B) {
	s := New(Params{Shards: DefaultShards})
	loadBench(b, s, 1_000_000, 100_000)
	ids := make([]bittorrent.PeerID, 4096)
	for n := range ids {
		ids[n] = trackertest.ID(n)
	}
	var resp tracker.AnnounceResponse
	a := tracker.Announce{InfoHash: workload.InfoHash(1), Addr: netip.AddrFrom4([4]byte{127, 0, 0, 1}), Port: 7000, Left: 10}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		a.PeerID = ids[i%len(ids)]
		resp.Reset()
		if err := s.Announce(context.Background(), &a, tracker.Update{Want: 50}, &resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAnnounceSmallSwarms re-announces peers of the benchmark's
// typical swarms (about 10 peers, below the index threshold), each time in
// another torrent: a store small enough to stay in the caches.
func BenchmarkAnnounceSmallSwarms(b *testing.B) {
	const torrents = 10_000
	const peers = 10 * torrents
	s := New(Params{Shards: DefaultShards})
	announce := func(i int) tracker.Announce {
		return tracker.Announce{InfoHash: workload.InfoHash(i % torrents), PeerID: (&workload.Peer{Serial: i}).PeerID(), Addr: netip.AddrFrom4([4]byte{127, 0, 0, 1}), Port: 7000, Left: uint64(i % 3)}
	}
	var resp tracker.AnnounceResponse
	for i := range peers {
		a := announce(i)
		resp.Reset()
		s.Announce(context.Background(), &a, tracker.Update{}, &resp)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i = (i + 7919) % peers
		a := announce(i)
		resp.Reset()
		if err := s.Announce(context.Background(), &a, tracker.Update{Want: 50}, &resp); err != nil {
			b.Fatal(err)
		}
	}
}

// mix is BenchmarkAnnounceMix's store, loaded once for all its runs.
var mix struct {
	once sync.Once
	s    *Store
}

// BenchmarkAnnounceMix re-announces peers of a loaded store from
// GOMAXPROCS goroutines, in bench/workload's mix: 1M peers in 100k swarms of
// skewed sizes, each announce another peer's, most of them in a different
// shard and cache line from the last. Each announce is made afresh, so
// that, as in a server, the request is in the cache and the store is not.
func BenchmarkAnnounceMix(b *testing.B) {
	const peers, torrents = 1_000_000, 100_000
	mix.once.Do(func() {
		mix.s = New(Params{Shards: DefaultShards})
		loadBench(b, mix.s, peers, torrents)
	})
	s := mix.s
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var resp tracker.AnnounceResponse
		i := int(next.Add(1) * 104729)
		for pb.Next() {
			i = (i + 7919) % peers
			a := benchAnnounce(1+i, torrents)
			resp.Reset()
			if err := s.Announce(context.Background(), &a, tracker.Update{Want: 50}, &resp); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
