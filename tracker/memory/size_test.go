package memory

import (
	"context"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bench/workload"
	"github.com/chihaya/chihaya/tracker"
)

// loadBench fills s the way the project's benchmark (bench/workload) does:
// peer i announces to torrent floor(u²·torrents) with u the golden-ratio
// sequence, so a few swarms hold thousands of peers and most hold a
// handful; 30% are seeders.
func loadBench(tb testing.TB, s *Store, peers, torrents int) {
	loadPeers(tb, s, 1, peers, torrents, time.Time{})
}

// loadPeers announces peers from to last of loadBench's sequence at t (now
// if zero).
func loadPeers(tb testing.TB, s *Store, from, last, torrents int, t time.Time) {
	var resp tracker.AnnounceResponse
	for i := from; i <= last; i++ {
		a := benchAnnounce(i, torrents)
		a.Time = t
		resp.Reset()
		if err := s.Announce(context.Background(), &a, tracker.Update{}, &resp); err != nil {
			tb.Fatal(err)
		}
	}
}

// benchAnnounce is the i-th announce of loadBench's sequence, the
// project benchmark's (bench/workload): peer i, in a swarm of a skewed
// popularity, three in ten of them seeders. It is arithmetic only, so that
// a benchmark can make each announce afresh, in the cache as a server's
// freshly parsed request is.
func benchAnnounce(i, torrents int) tracker.Announce {
	p := workload.Request(i, torrents)
	return tracker.Announce{InfoHash: workload.InfoHash(p.Torrent), PeerID: p.PeerID(), Addr: netip.AddrFrom4([4]byte{127, 0, 0, 1}), Port: p.Port, Left: p.Left}
}

func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestBytesPerPeer keeps the store's memory per peer, at the benchmark's
// shape (10 peers per torrent on average), within budget: its live heap
// plus the resident part of its arenas.
func TestBytesPerPeer(t *testing.T) {
	const peers, torrents = 200_000, 20_000
	before := liveHeap()
	s := New(Params{Shards: DefaultShards})
	loadBench(t, s, peers, torrents)
	after := liveHeap()
	_, n := s.Len()
	if n != peers {
		t.Fatalf("stored %d of %d peers", n, peers)
	}
	heap := float64(after-before) / peers
	arenas := float64(s.resident()) / peers
	t.Logf("%.1f bytes per peer: %.1f live heap, %.1f arenas (%d peers, %d torrents)", heap+arenas, heap, arenas, peers, torrents)
	// 30-byte records, a sixteenth of growth room, holes up to a 32nd
	// before a compaction, partly used pages, swarms and maps.
	if budget := 50.0; heap+arenas > budget {
		t.Errorf("%.1f bytes per peer, budget %.0f", heap+arenas, budget)
	}
	runtime.KeepAlive(s)
}

// TestPurgeGivesMemoryBack checks that the arenas shrink as peers expire:
// to about half when half the peers go, to nothing when all go.
func TestPurgeGivesMemoryBack(t *testing.T) {
	const peers, torrents = 100_000, 10_000
	s := New(Params{Shards: 64})
	start := time.Now()
	loadPeers(t, s, 1, peers/2, torrents, start)
	half := start.Add(time.Minute)
	loadPeers(t, s, peers/2+1, peers, torrents, half)
	full := s.resident()

	if _, err := s.Purge(context.Background(), half, true); err != nil {
		t.Fatal(err)
	}
	if _, n := s.Len(); n != peers/2 {
		t.Fatalf("%d peers left, want %d", n, peers/2)
	}
	if got := s.resident(); got > full*6/10 {
		t.Errorf("half the peers purged: %d of %d bytes resident", got, full)
	}
	if _, err := s.Purge(context.Background(), time.Now().Add(time.Hour), true); err != nil {
		t.Fatal(err)
	}
	if got := s.resident(); got != 0 {
		t.Errorf("every peer purged: %d bytes resident", got)
	}
	// And the store still works.
	loadBench(t, s, 1000, 100)
	if _, n := s.Len(); n != 1000 {
		t.Fatalf("%d peers after reloading, want 1000", n)
	}
}
