package stats

import (
	"sync"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
)

func TestPeerEventBits(t *testing.T) {
	for _, c := range []struct {
		e   peerEvents
		bit int
	}{
		{leecherJoined, bitLeecherJoined}, {seederJoined, bitSeederJoined},
		{leecherLeft, bitLeecherLeft}, {seederLeft, bitSeederLeft},
		{leecherToSeeder, bitLeecherToSeeder}, {seederToLeecher, bitSeederToLeecher},
		{completed, bitCompleted}, {swarmAdded, bitSwarmAdded}, {swarmRemoved, bitSwarmRemoved},
	} {
		if c.e != 1<<c.bit || c.bit >= numPeerEvents {
			t.Errorf("peerEvents %#x is not bit %d", c.e, c.bit)
		}
	}
}

// Each store Change counts as the events it means.
func TestEventsOf(t *testing.T) {
	const (
		added, removed = bittorrent.PeerAdded, bittorrent.PeerRemoved
		before, after  = bittorrent.SeederBefore, bittorrent.SeederAfter
	)
	for _, c := range []struct {
		name   string
		change bittorrent.Change
		want   peerEvents
	}{
		{"Refresh", 0, 0},
		{"SeederRefresh", before | after, 0},
		{"LeecherJoined", added, leecherJoined},
		{"SeederJoined", added | after, seederJoined},
		{"LeecherLeft", removed, leecherLeft},
		{"SeederLeft", removed | before, seederLeft},
		{"Completed", after | bittorrent.Snatched, leecherToSeeder | completed},
		{"BackToLeeching", before, seederToLeecher},
		{"FirstPeer", added | bittorrent.SwarmAdded, leecherJoined | swarmAdded},
		{"LastPeer", removed | before | bittorrent.SwarmRemoved, seederLeft | swarmRemoved},
	} {
		if got := eventsOf(c.change); got != c.want {
			t.Errorf("%s: eventsOf(%#x) = %#x, want %#x", c.name, c.change, got, c.want)
		}
	}
}

func TestSnapshot(t *testing.T) {
	s := New()
	defer s.Close()

	// Requests.
	s.RecordRequest(Announce, OK, 100*time.Microsecond)
	s.RecordRequest(Announce, OK, 200*time.Microsecond)
	s.RecordRequest(Announce, ClientError, 30*time.Microsecond)
	s.RecordRequest(Scrape, OK, 2*time.Millisecond)
	s.RecordRequest(Scrape, ServerError, 7*time.Second)
	s.RecordRequest(Other, OK, -time.Second) // a clock step: counted as 0
	// IPv4: two leechers and a seeder join (one swarm), a leecher completes,
	// the other leaves, the seeder goes back to leeching.
	s.RecordPeer(bittorrent.PeerAdded|bittorrent.SwarmAdded, false)
	s.RecordPeer(bittorrent.PeerAdded, false)
	s.RecordPeer(bittorrent.PeerAdded|bittorrent.SeederAfter, false)
	s.RecordPeer(bittorrent.SeederAfter|bittorrent.Snatched, false)
	s.RecordPeer(bittorrent.PeerRemoved, false)
	s.RecordPeer(bittorrent.SeederBefore, false)
	s.RecordPeer(0, false)
	// IPv6: a seeder joins a second swarm and leaves, removing it.
	s.RecordPeer(bittorrent.PeerAdded|bittorrent.SeederAfter|bittorrent.SwarmAdded, true)
	s.RecordPeer(bittorrent.PeerRemoved|bittorrent.SeederBefore|bittorrent.SwarmRemoved, true)
	// The reaper takes the IPv4 leecher and seeder and their swarm.
	s.RecordReap([2]int{1, 0}, [2]int{1, 0}, 1)
	// Connections.
	for range 3 {
		s.RecordConn(true)
	}
	s.RecordConn(false)
	s.Flush()

	got := s.Snapshot()
	want := Snapshot{
		ConnectionsOpen: 2, ConnectionsAccepted: 3,
		RequestsHandled: 6, RequestsErrored: 1, RequestsBad: 1,
		Announces: 2, Scrapes: 1,
		Requests:      [NumKinds][NumOutcomes]int64{{2, 1, 0}, {1, 0, 1}, {1, 0, 0}},
		TorrentsAdded: 2, TorrentsRemoved: 1, TorrentsReaped: 1, Torrents: 0,
		Peers: [2]FamilyCounts{
			{
				Leechers:  PeerCounts{Current: 0, Joined: 2, Left: 1, Reaped: 1},
				Seeders:   PeerCounts{Current: 0, Joined: 1, Left: 0, Reaped: 1},
				Completed: 1,
			},
			{Seeders: PeerCounts{Current: 0, Joined: 1, Left: 1}},
		},
	}
	type counters struct {
		ConnectionsOpen, ConnectionsAccepted               int64
		RequestsHandled, RequestsErrored, RequestsBad      int64
		Announces, Scrapes                                 int64
		Requests                                           [NumKinds][NumOutcomes]int64
		TorrentsAdded, TorrentsRemoved, TorrentsReaped, Nt int64
		Peers                                              [2]FamilyCounts
	}
	pick := func(s Snapshot) counters {
		return counters{s.ConnectionsOpen, s.ConnectionsAccepted, s.RequestsHandled, s.RequestsErrored, s.RequestsBad,
			s.Announces, s.Scrapes, s.Requests, s.TorrentsAdded, s.TorrentsRemoved, s.TorrentsReaped, s.Torrents, s.Peers}
	}
	if pick(got) != pick(want) {
		t.Errorf("counters:\n got %+v\nwant %+v", pick(got), pick(want))
	}

	// Latency histograms: announce 30µs, 100µs, 200µs; scrape 2ms, 7s; other 0.
	bounds := LatencyBuckets()
	for _, c := range []struct {
		kind  Kind
		count uint64
		sum   time.Duration
		at    map[time.Duration]uint64 // cumulative count at some bounds
	}{
		{Announce, 3, 330 * time.Microsecond, map[time.Duration]uint64{25 * time.Microsecond: 0, 50 * time.Microsecond: 1, 100 * time.Microsecond: 2, 250 * time.Microsecond: 3, 5 * time.Second: 3}},
		{Scrape, 2, 7*time.Second + 2*time.Millisecond, map[time.Duration]uint64{time.Millisecond: 0, 2500 * time.Microsecond: 1, 5 * time.Second: 1}},
		{Other, 1, 0, map[time.Duration]uint64{25 * time.Microsecond: 1}},
	} {
		h := got.Latency[c.kind]
		if h.Count != c.count || h.Sum != c.sum {
			t.Errorf("%v latency: count %d sum %v, want %d and %v", c.kind, h.Count, h.Sum, c.count, c.sum)
		}
		for i, b := range bounds {
			if n, ok := c.at[b]; ok && h.Buckets[i] != n {
				t.Errorf("%v latency: %d requests at most %v, want %d", c.kind, h.Buckets[i], b, n)
			}
		}
	}

	// Percentiles of 0, 30µs, 100µs, 200µs, 2ms, 7s (ranks 3, 6, 6, 6).
	rt := got.ResponseTime
	near := func(got, want float64) bool { return got >= want*15/16 && got <= want*17/16 }
	if !near(rt.P50, 0.1) || !near(rt.P90, 7000) || !near(rt.P95, 7000) || !near(rt.P99, 7000) {
		t.Errorf("response time percentiles %+v, want about 0.1, 7000, 7000, 7000 ms", rt)
	}
	if got.Memory.Sys == 0 || got.Memory.HeapAlloc == 0 || got.Goroutines == 0 {
		t.Errorf("memory %+v, goroutines %d: want figures", got.Memory, got.Goroutines)
	}
	if got.Started.IsZero() || time.Since(got.Started) > time.Minute {
		t.Errorf("started %v", got.Started)
	}
}

// TestConcurrentRecording runs recorders against readers (for -race) and
// checks that nothing is lost.
func TestConcurrentRecording(t *testing.T) {
	s := New()
	defer s.Close()
	const workers, each = 8, 5000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
				snap := s.Snapshot()
				if snap.ConnectionsOpen < 0 {
					t.Errorf("open connections %d", snap.ConnectionsOpen)
				}
				s.Flush()
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				s.RecordConn(true)
				s.RecordRequest(Kind(i%NumKinds), Outcome(w%NumOutcomes), time.Duration(i)*time.Microsecond)
				s.RecordPeer(bittorrent.PeerAdded, w%2 == 1)
				s.RecordPeer(bittorrent.PeerRemoved, w%2 == 1)
				s.RecordConn(false)
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	snap := s.Snapshot()
	if snap.RequestsHandled != workers*each || snap.ConnectionsAccepted != workers*each || snap.ConnectionsOpen != 0 {
		t.Errorf("handled %d accepted %d open %d, want %d %d 0", snap.RequestsHandled, snap.ConnectionsAccepted, snap.ConnectionsOpen, workers*each, workers*each)
	}
	var count uint64
	for _, h := range snap.Latency {
		count += h.Count
	}
	if count != workers*each {
		t.Errorf("latency count %d, want %d", count, workers*each)
	}
	for f, fc := range snap.Peers {
		if fc.Leechers.Joined != workers/2*each || fc.Leechers.Current != 0 {
			t.Errorf("family %d: %+v", f, fc.Leechers)
		}
	}
}

// Requests are counted per transport and in the totals; the UDP events
// apart.
func TestTransports(t *testing.T) {
	s := New()
	defer s.Close()
	s.RecordRequest(Announce, OK, 100*time.Microsecond) // HTTP
	s.RecordRequestVia(HTTP, Scrape, ClientError, time.Millisecond)
	s.RecordRequestVia(UDP, Announce, OK, 20*time.Microsecond)
	s.RecordRequestVia(UDP, Announce, OK, 40*time.Microsecond)
	s.RecordRequestVia(UDP, Scrape, ServerError, 3*time.Millisecond)
	s.RecordRequestVia(Transport(9), Other, OK, 0) // counted as HTTP
	for e, n := range map[UDPEvent]int{UDPConnect: 3, UDPBadConnectionID: 2, UDPError: 4, UDPDropped: 1, UDPEvent(200): 5} {
		for range n {
			s.RecordUDP(e)
		}
	}
	got := s.Snapshot()
	for _, c := range []struct {
		name      string
		got, want [NumKinds][NumOutcomes]int64
	}{
		{"http", got.Transports[HTTP].Requests, [NumKinds][NumOutcomes]int64{{1, 0, 0}, {0, 1, 0}, {1, 0, 0}}},
		{"udp", got.Transports[UDP].Requests, [NumKinds][NumOutcomes]int64{{2, 0, 0}, {0, 0, 1}, {0, 0, 0}}},
		{"all", got.Requests, [NumKinds][NumOutcomes]int64{{3, 0, 0}, {0, 1, 1}, {1, 0, 0}}},
	} {
		if c.got != c.want {
			t.Errorf("%s requests %v, want %v", c.name, c.got, c.want)
		}
	}
	if got.Announces != 3 || got.Scrapes != 0 || got.RequestsHandled != 6 || got.RequestsBad != 1 || got.RequestsErrored != 1 {
		t.Errorf("announces %d scrapes %d handled %d bad %d errored %d, want 3 0 6 1 1",
			got.Announces, got.Scrapes, got.RequestsHandled, got.RequestsBad, got.RequestsErrored)
	}
	udp, all := got.Transports[UDP].Latency[Announce], got.Latency[Announce]
	if udp.Count != 2 || udp.Sum != 60*time.Microsecond || udp.Buckets[0] != 1 || udp.Buckets[1] != 2 {
		t.Errorf("UDP announce latency %+v, want 2 requests, 60µs, 1 within 25µs, 2 within 50µs", udp)
	}
	if all.Count != 3 || all.Sum != 160*time.Microsecond || all.Buckets[1] != 2 || all.Buckets[2] != 3 {
		t.Errorf("announce latency %+v, want 3 requests, 160µs, 2 within 50µs, 3 within 100µs", all)
	}
	if want := (UDPCounts{Connects: 3, BadConnectionIDs: 2, Errors: 4, Dropped: 1}); got.UDP != want {
		t.Errorf("UDP counts %+v, want %+v", got.UDP, want)
	}
}

func TestCloseThenFlush(t *testing.T) {
	s := New()
	s.Close()
	s.Close()
	s.RecordRequest(Announce, OK, time.Millisecond)
	s.Flush() // must not block
	if n := s.Snapshot().Announces; n != 1 {
		t.Fatalf("announces after Close: %d, want 1", n)
	}
}

func TestNames(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{Announce.String(), "announce"}, {Scrape.String(), "scrape"}, {Other.String(), "other"}, {Kind(9).String(), "other"},
		{OK.String(), "ok"}, {ClientError.String(), "client_error"}, {ServerError.String(), "server_error"}, {Limited.String(), "limited"},
		{HTTP.String(), "http"}, {UDP.String(), "udp"}, {Transport(7).String(), "unknown"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// The request path: RecordRequest for every request, RecordPeer for every
// announce (bits == 0 for a plain re-announce).
func BenchmarkRecordRequest(b *testing.B) {
	s := New()
	defer s.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		d := 37 * time.Microsecond
		for pb.Next() {
			s.RecordRequest(Announce, OK, d)
			d += 13
		}
	})
}

func BenchmarkRecordRequestSerial(b *testing.B) {
	s := New()
	defer s.Close()
	b.ReportAllocs()
	for i := range b.N {
		s.RecordRequest(Announce, OK, time.Duration(i&0xffff)*time.Microsecond)
	}
}

func BenchmarkRecordPeer(b *testing.B) {
	s := New()
	defer s.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.RecordPeer(bittorrent.PeerAdded|bittorrent.SwarmAdded, false)
		}
	})
}

func BenchmarkSnapshot(b *testing.B) {
	s := New()
	defer s.Close()
	b.ReportAllocs()
	for range b.N {
		s.Snapshot()
	}
}
