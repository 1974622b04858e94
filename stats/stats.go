// Package stats counts what the tracker does, for /stats and /metrics.
//
// Recording is a few atomic increments on counters of the shard the
// calling goroutine's P (processor) holds, so concurrent requests on
// different CPUs seldom touch the same cache line: a request never waits
// for anything, nothing is allocated, and nothing is ever dropped. Reading (Snapshot) sums the
// shards. One collector goroutine derives what is too costly for the
// request path: response-time percentiles over a recent window (from a
// fine histogram the requests fill) and the Go memory statistics, read
// every few seconds.
package stats

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
)

// Kind is the kind of request being recorded.
type Kind uint8

// Request kinds.
const (
	Announce Kind = iota
	Scrape
	Other
)

// NumKinds is the number of request kinds.
const NumKinds = int(Other) + 1

var kindNames = [NumKinds]string{"announce", "scrape", "other"}

// String returns the kind's name as a metric label: "announce", "scrape" or
// "other".
func (k Kind) String() string {
	if int(k) < NumKinds {
		return kindNames[k]
	}
	return "other"
}

// Transport is the frontend a request came through.
type Transport uint8

// Transports.
const (
	HTTP Transport = iota
	UDP
)

// NumTransports is the number of transports.
const NumTransports = int(UDP) + 1

var transportNames = [NumTransports]string{"http", "udp"}

// String returns the transport's name as a metric label: "http" or "udp".
func (t Transport) String() string {
	if int(t) < NumTransports {
		return transportNames[t]
	}
	return "unknown"
}

// UDPEvent is something the UDP frontend counts besides requests: BEP 15's
// connects, and the packets it refuses before they become requests.
type UDPEvent uint8

// UDP events.
const (
	UDPConnect         UDPEvent = iota // a connect answered with a connection ID
	UDPBadConnectionID                 // an announce or scrape with a forged or expired connection ID
	UDPError                           // an error packet sent, whatever its cause
	UDPDropped                         // a packet left unanswered: malformed, or refused from an unproven address
)

// NumUDPEvents is the number of UDP events.
const NumUDPEvents = int(UDPDropped) + 1

// Outcome is how a request ended.
type Outcome uint8

// Request outcomes.
const (
	OK          Outcome = iota // answered normally
	ClientError                // the client's fault: answered with a failure reason
	ServerError                // the tracker's fault
	Limited                    // refused by the per-address rate limit, before reaching the tracker
)

// NumOutcomes is the number of request outcomes.
const NumOutcomes = int(Limited) + 1

var outcomeNames = [NumOutcomes]string{"ok", "client_error", "server_error", "limited"}

// String returns the outcome's name as a metric label: "ok",
// "client_error", "server_error" or "limited".
func (o Outcome) String() string {
	if int(o) < NumOutcomes {
		return outcomeNames[o]
	}
	return "server_error"
}

// peerEvents are the bits of what one announce did to a swarm, as the
// statistics count it: derived from the store's bittorrent.Change.
type peerEvents uint16

// The bits of peerEvents.
const (
	leecherJoined   peerEvents = 1 << iota // a new peer joined as a leecher
	seederJoined                           // a new peer joined as a seeder
	leecherLeft                            // a leecher sent stopped
	seederLeft                             // a seeder sent stopped
	leecherToSeeder                        // a known leecher now has everything
	seederToLeecher                        // a known seeder now misses data
	completed                              // a download was counted as complete
	swarmAdded                             // a torrent got its first peer
	swarmRemoved                           // a torrent lost its last peer and was removed
)

// eventsOf derives the counted events from what an announce did to the
// store.
func eventsOf(c bittorrent.Change) peerEvents {
	var e peerEvents
	before, after := c.Has(bittorrent.SeederBefore), c.Has(bittorrent.SeederAfter)
	switch {
	case c.Has(bittorrent.PeerAdded) && after:
		e |= seederJoined
	case c.Has(bittorrent.PeerAdded):
		e |= leecherJoined
	case c.Has(bittorrent.PeerRemoved) && before:
		e |= seederLeft
	case c.Has(bittorrent.PeerRemoved):
		e |= leecherLeft
	case !before && after:
		e |= leecherToSeeder
	case before && !after:
		e |= seederToLeecher
	}
	if c.Has(bittorrent.Snatched) {
		e |= completed
	}
	if c.Has(bittorrent.SwarmAdded) {
		e |= swarmAdded
	}
	if c.Has(bittorrent.SwarmRemoved) {
		e |= swarmRemoved
	}
	return e
}

// Family is an address family index: 0 for IPv4, 1 for IPv6.
func Family(ipv6 bool) int {
	if ipv6 {
		return 1
	}
	return 0
}

// shard is one set of counters. Each is only ever incremented; the figures
// of a Snapshot are sums over every shard.
type shard struct {
	requests [NumTransports][NumKinds][NumOutcomes]atomic.Uint64
	// latencySum is in nanoseconds; latency counts requests per coarse
	// bucket (the last is +Inf), not cumulatively.
	latencySum [NumTransports][NumKinds]atomic.Uint64
	latency    [NumTransports][NumKinds][NumLatencyBuckets + 1]atomic.Uint64
	udp        [NumUDPEvents]atomic.Uint64
	// peers counts each peerEvents bit, per family.
	peers       [2][numPeerEvents]atomic.Uint64
	connsOpened atomic.Uint64
	connsClosed atomic.Uint64
	fine        [numFine]atomic.Uint64
	_           [64]byte // keeps the next shard's first counters off this one's last cache line
}

// PeerCounts are the figures of one class of peers (leechers or seeders) of
// one family.
type PeerCounts struct {
	Current int64
	Joined  int64
	Left    int64
	Reaped  int64
}

// FamilyCounts are the peer figures of one address family.
type FamilyCounts struct {
	Leechers  PeerCounts
	Seeders   PeerCounts
	Completed int64
}

// Histogram is a response-time histogram in Prometheus' shape.
type Histogram struct {
	Count uint64
	Sum   time.Duration
	// Buckets[i] counts the requests that took at most LatencyBuckets()[i]
	// (cumulative counts).
	Buckets [NumLatencyBuckets]uint64
}

// MemStats are the basic figures of runtime.MemStats that /stats has
// always shown.
type MemStats struct {
	Alloc        uint64
	TotalAlloc   uint64
	Sys          uint64
	Lookups      uint64
	Mallocs      uint64
	Frees        uint64
	HeapAlloc    uint64
	HeapSys      uint64
	HeapIdle     uint64
	HeapInuse    uint64
	HeapReleased uint64
	HeapObjects  uint64
	PauseTotalNs uint64
}

// TransportCounts are the request figures of one transport.
type TransportCounts struct {
	// Requests counts the transport's requests by Kind and Outcome.
	Requests [NumKinds][NumOutcomes]int64
	// Latency is the response-time histogram of each Kind, since start.
	Latency [NumKinds]Histogram
}

// UDPCounts are the UDP frontend's own figures; its announces and scrapes
// are in Snapshot.Transports[UDP].
type UDPCounts struct {
	Connects         int64 // connects answered
	BadConnectionIDs int64 // requests refused for a forged or expired connection ID
	Errors           int64 // error packets sent
	Dropped          int64 // packets left unanswered
}

// Snapshot is a copy of every figure. Counters are read one after another
// while requests go on, so two figures may disagree by the requests in
// flight; once requests stop, every figure is exact.
type Snapshot struct {
	Started time.Time

	ConnectionsOpen     int64
	ConnectionsAccepted int64

	RequestsHandled int64 // every request answered
	RequestsErrored int64 // server errors
	RequestsBad     int64 // client errors

	Announces int64 // announces answered normally
	Scrapes   int64 // scrapes answered normally

	// Requests counts every request by Kind and Outcome, all transports
	// together.
	Requests [NumKinds][NumOutcomes]int64
	// Transports splits Requests and Latency by Transport.
	Transports [NumTransports]TransportCounts
	UDP        UDPCounts

	TorrentsAdded   int64
	TorrentsRemoved int64
	TorrentsReaped  int64
	Torrents        int64 // current: added minus removed and reaped

	// Peers is indexed by Family.
	Peers [2]FamilyCounts

	// Latency is the response-time histogram of each Kind, since start,
	// all transports together.
	Latency [NumKinds]Histogram
	// ResponseTime holds the percentiles of the response times of the last
	// minute or so, every kind together; when no request came in that
	// minute, those of the last minute that saw any.
	ResponseTime Percentiles

	// Memory is as of the collector's last reading (every MemStatsInterval).
	Memory     MemStats
	Goroutines int
}

// MemStatsInterval is how often the collector reads the memory statistics:
// runtime.ReadMemStats briefly stops the world.
const MemStatsInterval = 5 * time.Second

// Stats collects the tracker's figures. Its methods are safe for
// concurrent use.
type Stats struct {
	started time.Time
	shards  []shard
	// local hands each P a shard of its own: a sync.Pool keeps one object
	// per P, and Put right after Get gives it back to the same P. After a
	// garbage collection empties the pool, New hands out the next shard;
	// should two Ps end up sharing one, only speed suffers.
	local sync.Pool
	next  atomic.Uint32

	// Reaps are once per expiry pass: no need for shards.
	reapedLeechers [2]atomic.Int64
	reapedSeeders  [2]atomic.Int64
	reapedSwarms   atomic.Int64

	flush chan chan struct{}
	done  chan struct{}
	once  sync.Once

	mu           sync.Mutex
	responseTime Percentiles // guarded by mu
	memory       MemStats    // guarded by mu
}

// New starts a collector.
func New() *Stats {
	n := 1
	for n < 2*runtime.GOMAXPROCS(0) && n < 64 {
		n *= 2
	}
	s := &Stats{
		started: time.Now(),
		shards:  make([]shard, n),
		flush:   make(chan chan struct{}),
		done:    make(chan struct{}),
	}
	s.local.New = func() any { return &s.shards[int(s.next.Add(1))%len(s.shards)] }
	s.memory = readMemStats()
	go s.collect()
	return s
}

// shard returns a shard for the caller to count on and then hand back with
// put.
func (s *Stats) shard() *shard { return s.local.Get().(*shard) }

func (s *Stats) put(sh *shard) { s.local.Put(sh) }

// RecordRequest records one answered HTTP request and how long it took:
// RecordRequestVia(HTTP, kind, outcome, d).
func (s *Stats) RecordRequest(kind Kind, outcome Outcome, d time.Duration) {
	s.RecordRequestVia(HTTP, kind, outcome, d)
}

// RecordRequestVia records one request answered through transport tr, and
// how long it took.
func (s *Stats) RecordRequestVia(tr Transport, kind Kind, outcome Outcome, d time.Duration) {
	if int(tr) >= NumTransports {
		tr = HTTP
	}
	if int(kind) >= NumKinds {
		kind = Other
	}
	if int(outcome) >= NumOutcomes {
		outcome = ServerError
	}
	ns := uint64(max(d, 0))
	fine, coarse := buckets(ns)
	sh := s.shard()
	sh.requests[tr][kind][outcome].Add(1)
	sh.latencySum[tr][kind].Add(ns)
	sh.latency[tr][kind][coarse].Add(1)
	sh.fine[fine].Add(1)
	s.put(sh)
}

// RecordUDP counts one UDP event.
func (s *Stats) RecordUDP(e UDPEvent) {
	if int(e) >= NumUDPEvents {
		return
	}
	sh := s.shard()
	sh.udp[e].Add(1)
	s.put(sh)
}

// RecordPeer records what one announce did to its swarm.
func (s *Stats) RecordPeer(change bittorrent.Change, ipv6 bool) {
	bits := eventsOf(change)
	if bits == 0 {
		return
	}
	sh := s.shard()
	c := &sh.peers[Family(ipv6)]
	for i := range numPeerEvents {
		if bits&(1<<i) != 0 {
			c[i].Add(1)
		}
	}
	s.put(sh)
}

// RecordReap records an expiry pass: per family, the leechers and seeders
// removed, and the swarms removed.
func (s *Stats) RecordReap(leechers, seeders [2]int, swarms int) {
	for f := range 2 {
		s.reapedLeechers[f].Add(int64(leechers[f]))
		s.reapedSeeders[f].Add(int64(seeders[f]))
	}
	s.reapedSwarms.Add(int64(swarms))
}

// RecordConn records a connection opened (true) or closed (false).
func (s *Stats) RecordConn(open bool) {
	sh := s.shard()
	if open {
		sh.connsOpened.Add(1)
	} else {
		sh.connsClosed.Add(1)
	}
	s.put(sh)
}

// The indexes of the peerEvents bits in shard.peers, in the order of the
// bits (TestPeerEventBits checks it).
const (
	bitLeecherJoined = iota
	bitSeederJoined
	bitLeecherLeft
	bitSeederLeft
	bitLeecherToSeeder
	bitSeederToLeecher
	bitCompleted
	bitSwarmAdded
	bitSwarmRemoved
	numPeerEvents
)

// Snapshot returns the figures as of now; ResponseTime and Memory as of the
// collector's last pass.
func (s *Stats) Snapshot() Snapshot {
	snap := Snapshot{Started: s.started, Goroutines: runtime.NumGoroutine()}
	// Counts of things ending (connections closed, peers leaving) are read
	// before those of things beginning, so that while requests go on a
	// current figure (opened minus closed) is never below zero.
	var peers [2][numPeerEvents]uint64
	var opened, closed uint64
	for i := range s.shards {
		sh := &s.shards[i]
		closed += sh.connsClosed.Load()
		for f := range peers {
			for _, e := range [...]int{bitLeecherLeft, bitSeederLeft, bitSwarmRemoved} {
				peers[f][e] += sh.peers[f][e].Load()
			}
		}
	}
	for i := range s.shards {
		sh := &s.shards[i]
		opened += sh.connsOpened.Load()
		for f := range peers {
			for e := range numPeerEvents {
				switch e {
				case bitLeecherLeft, bitSeederLeft, bitSwarmRemoved:
				default:
					peers[f][e] += sh.peers[f][e].Load()
				}
			}
		}
		for tr := range NumTransports {
			tc := &snap.Transports[tr]
			for k := range NumKinds {
				for o := range NumOutcomes {
					tc.Requests[k][o] += int64(sh.requests[tr][k][o].Load())
				}
				h := &tc.Latency[k]
				h.Sum += time.Duration(sh.latencySum[tr][k].Load())
				for b := range NumLatencyBuckets {
					h.Buckets[b] += sh.latency[tr][k][b].Load()
				}
				h.Count += sh.latency[tr][k][NumLatencyBuckets].Load() // +Inf, made cumulative below
			}
		}
		for e, n := range [...]*int64{
			UDPConnect:         &snap.UDP.Connects,
			UDPBadConnectionID: &snap.UDP.BadConnectionIDs,
			UDPError:           &snap.UDP.Errors,
			UDPDropped:         &snap.UDP.Dropped,
		} {
			*n += int64(sh.udp[e].Load())
		}
	}

	for tr := range NumTransports {
		tc := &snap.Transports[tr]
		for k := range NumKinds {
			for o := range NumOutcomes {
				n := tc.Requests[k][o]
				snap.Requests[k][o] += n
				snap.RequestsHandled += n
				switch Outcome(o) {
				case ClientError:
					snap.RequestsBad += n
				case ServerError:
					snap.RequestsErrored += n
				}
			}
			h := &tc.Latency[k]
			for b := 1; b < NumLatencyBuckets; b++ {
				h.Buckets[b] += h.Buckets[b-1]
			}
			h.Count += h.Buckets[NumLatencyBuckets-1]
			all := &snap.Latency[k]
			all.Count += h.Count
			all.Sum += h.Sum
			for b := range NumLatencyBuckets {
				all.Buckets[b] += h.Buckets[b]
			}
		}
	}
	snap.Announces = snap.Requests[Announce][OK]
	snap.Scrapes = snap.Requests[Scrape][OK]

	for f := range peers {
		p := &peers[f]
		n := func(i int) int64 { return int64(p[i]) }
		fc := &snap.Peers[f]
		fc.Leechers = PeerCounts{Joined: n(bitLeecherJoined), Left: n(bitLeecherLeft), Reaped: s.reapedLeechers[f].Load()}
		fc.Seeders = PeerCounts{Joined: n(bitSeederJoined), Left: n(bitSeederLeft), Reaped: s.reapedSeeders[f].Load()}
		fc.Leechers.Current = fc.Leechers.Joined - fc.Leechers.Left - fc.Leechers.Reaped - n(bitLeecherToSeeder) + n(bitSeederToLeecher)
		fc.Seeders.Current = fc.Seeders.Joined - fc.Seeders.Left - fc.Seeders.Reaped + n(bitLeecherToSeeder) - n(bitSeederToLeecher)
		fc.Completed = n(bitCompleted)
		snap.TorrentsAdded += n(bitSwarmAdded)
		snap.TorrentsRemoved += n(bitSwarmRemoved)
	}
	snap.TorrentsReaped = s.reapedSwarms.Load()
	snap.Torrents = snap.TorrentsAdded - snap.TorrentsRemoved - snap.TorrentsReaped

	snap.ConnectionsAccepted = int64(opened)
	snap.ConnectionsOpen = int64(opened) - int64(closed)

	s.mu.Lock()
	snap.ResponseTime = s.responseTime
	snap.Memory = s.memory
	s.mu.Unlock()
	return snap
}

// Flush makes the collector fold in, now, every response time recorded
// before the call and read the memory statistics, so that the next
// Snapshot's ResponseTime and Memory include them. Tests use it. After
// Close it does nothing.
func (s *Stats) Flush() {
	ack := make(chan struct{})
	select {
	case s.flush <- ack:
		<-ack
	case <-s.done:
	}
}

// Close stops the collector. Recording goes on working; ResponseTime and
// Memory stop changing.
func (s *Stats) Close() {
	s.once.Do(func() { close(s.done) })
}

// collect is the collector goroutine.
func (s *Stats) collect() {
	fold := time.NewTicker(foldInterval)
	defer fold.Stop()
	mem := time.NewTicker(MemStatsInterval)
	defer mem.Stop()
	w := new(window)
	now := new([numFine]uint64)
	update := func(tick bool) {
		for i := range now {
			now[i] = 0
		}
		for i := range s.shards {
			for b := range now {
				now[b] += s.shards[i].fine[b].Load()
			}
		}
		p, ok := percentiles(w.fold(now, tick))
		if ok {
			s.mu.Lock()
			s.responseTime = p
			s.mu.Unlock()
		}
	}
	setMemory := func() {
		m := readMemStats()
		s.mu.Lock()
		s.memory = m
		s.mu.Unlock()
	}
	for {
		select {
		case <-fold.C:
			update(true)
		case <-mem.C:
			setMemory()
		case ack := <-s.flush:
			update(false)
			setMemory()
			close(ack)
		case <-s.done:
			return
		}
	}
}

func readMemStats() MemStats {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return MemStats{
		Alloc:        m.Alloc,
		TotalAlloc:   m.TotalAlloc,
		Sys:          m.Sys,
		Lookups:      m.Lookups,
		Mallocs:      m.Mallocs,
		Frees:        m.Frees,
		HeapAlloc:    m.HeapAlloc,
		HeapSys:      m.HeapSys,
		HeapIdle:     m.HeapIdle,
		HeapInuse:    m.HeapInuse,
		HeapReleased: m.HeapReleased,
		HeapObjects:  m.HeapObjects,
		PauseTotalNs: m.PauseTotalNs,
	}
}
