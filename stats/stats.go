// Package stats counts what the tracker does. Recording is a non-blocking
// send on a buffered channel: a request never waits for the collector, and
// when the buffer is full the event is dropped and counted as dropped. One
// collector goroutine folds the events into the counters.
package stats

import (
	"sync"
	"sync/atomic"
	"time"
)

// Kind is the kind of request being recorded.
type Kind uint8

// Request kinds.
const (
	Announce Kind = iota
	Scrape
	Other
)

// Outcome is how a request ended.
type Outcome uint8

// Request outcomes.
const (
	OK          Outcome = iota // answered normally
	ClientError                // the client's fault: answered with a failure reason
	ServerError                // the tracker's fault
)

// PeerEvents are the bits of what one announce did to a swarm.
type PeerEvents uint16

// The bits of PeerEvents.
const (
	LeecherJoined   PeerEvents = 1 << iota // a new peer joined as a leecher
	SeederJoined                           // a new peer joined as a seeder
	LeecherLeft                            // a leecher sent stopped
	SeederLeft                             // a seeder sent stopped
	LeecherToSeeder                        // a known leecher now has everything
	SeederToLeecher                        // a known seeder now misses data
	Completed                              // a download was counted as complete
	SwarmAdded                             // a torrent got its first peer
	SwarmRemoved                           // a torrent lost its last peer and was removed
)

// Family is an address family index: 0 for IPv4, 1 for IPv6.
func Family(ipv6 bool) int {
	if ipv6 {
		return 1
	}
	return 0
}

type op uint8

const (
	opRequest op = iota
	opPeer
	opReap
	opConn
	opFlush
)

// event is what travels on the channel: small, pointer-free.
type event struct {
	op      op
	kind    Kind
	outcome Outcome
	family  uint8
	bits    PeerEvents
	n       [3]int32 // opReap: leechers, seeders, swarms
	d       time.Duration
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

// Snapshot is a consistent copy of every counter.
type Snapshot struct {
	Started time.Time

	ConnectionsOpen     int64
	ConnectionsAccepted int64

	RequestsHandled int64 // every request answered
	RequestsErrored int64 // server errors
	RequestsBad     int64 // client errors

	Announces int64
	Scrapes   int64

	TorrentsAdded   int64
	TorrentsRemoved int64
	TorrentsReaped  int64

	// Peers is indexed by Family.
	Peers [2]FamilyCounts

	// Dropped counts events lost to a full buffer.
	Dropped uint64
}

// Stats collects events. Its methods are safe for concurrent use.
type Stats struct {
	events  chan event
	dropped atomic.Uint64
	flushed chan struct{}
	done    chan struct{}
	once    sync.Once

	mu   sync.Mutex
	snap Snapshot // guarded by mu
}

// New starts a collector whose queue holds bufferSize events.
func New(bufferSize int) *Stats {
	s := &Stats{events: make(chan event, bufferSize), flushed: make(chan struct{}), done: make(chan struct{})}
	s.snap.Started = time.Now()
	go s.collect()
	return s
}

func (s *Stats) send(e event) {
	select {
	case s.events <- e:
	default:
		s.dropped.Add(1)
	}
}

// RecordRequest records one answered request and how long it took.
func (s *Stats) RecordRequest(kind Kind, outcome Outcome, d time.Duration) {
	s.send(event{op: opRequest, kind: kind, outcome: outcome, d: d})
}

// RecordPeer records what one announce did to its swarm.
func (s *Stats) RecordPeer(bits PeerEvents, ipv6 bool) {
	if bits != 0 {
		s.send(event{op: opPeer, bits: bits, family: uint8(Family(ipv6))})
	}
}

// RecordReap records an expiry pass: per family, the leechers and seeders
// removed, and the swarms removed.
func (s *Stats) RecordReap(leechers, seeders [2]int, swarms int) {
	for f := range 2 {
		s.send(event{op: opReap, family: uint8(f), n: [3]int32{int32(leechers[f]), int32(seeders[f])}})
	}
	s.send(event{op: opReap, n: [3]int32{2: int32(swarms)}})
}

// RecordConn records a connection opened (true) or closed (false).
func (s *Stats) RecordConn(open bool) {
	var b PeerEvents
	if open {
		b = 1
	}
	s.send(event{op: opConn, bits: b})
}

// Snapshot returns a copy of the counters as of the last event collected.
func (s *Stats) Snapshot() Snapshot {
	s.mu.Lock()
	snap := s.snap
	s.mu.Unlock()
	snap.Dropped = s.dropped.Load()
	return snap
}

// Flush waits until every event sent before the call has been collected.
// Tests use it to read exact figures. It must not race with Close.
func (s *Stats) Flush() {
	s.events <- event{op: opFlush} // the queue is FIFO: what came before is applied first
	<-s.flushed
}

// Close stops the collector. Events recorded afterwards are dropped.
func (s *Stats) Close() {
	s.once.Do(func() { close(s.done) })
}

func (s *Stats) collect() {
	for {
		select {
		case e := <-s.events:
			s.mu.Lock()
			s.apply(e)
			// Fold in whatever else is queued under the same lock.
			for more := true; more; {
				select {
				case e = <-s.events:
					s.apply(e)
				default:
					more = false
				}
			}
			s.mu.Unlock()
		case <-s.done:
			return
		}
	}
}

// apply folds one event into the snapshot; s.mu is held.
func (s *Stats) apply(e event) {
	c := &s.snap
	switch e.op {
	case opRequest:
		c.RequestsHandled++
		switch e.outcome {
		case ClientError:
			c.RequestsBad++
		case ServerError:
			c.RequestsErrored++
		}
		if e.outcome == OK {
			switch e.kind {
			case Announce:
				c.Announces++
			case Scrape:
				c.Scrapes++
			}
		}
	case opPeer:
		f := &c.Peers[e.family]
		b := e.bits
		if b&LeecherJoined != 0 {
			f.Leechers.Joined++
			f.Leechers.Current++
		}
		if b&SeederJoined != 0 {
			f.Seeders.Joined++
			f.Seeders.Current++
		}
		if b&LeecherLeft != 0 {
			f.Leechers.Left++
			f.Leechers.Current--
		}
		if b&SeederLeft != 0 {
			f.Seeders.Left++
			f.Seeders.Current--
		}
		if b&LeecherToSeeder != 0 {
			f.Leechers.Current--
			f.Seeders.Current++
		}
		if b&SeederToLeecher != 0 {
			f.Seeders.Current--
			f.Leechers.Current++
		}
		if b&Completed != 0 {
			f.Completed++
		}
		if b&SwarmAdded != 0 {
			c.TorrentsAdded++
		}
		if b&SwarmRemoved != 0 {
			c.TorrentsRemoved++
		}
	case opReap:
		f := &c.Peers[e.family]
		f.Leechers.Reaped += int64(e.n[0])
		f.Leechers.Current -= int64(e.n[0])
		f.Seeders.Reaped += int64(e.n[1])
		f.Seeders.Current -= int64(e.n[1])
		c.TorrentsReaped += int64(e.n[2])
	case opFlush:
		s.flushed <- struct{}{}
	case opConn:
		if e.bits != 0 {
			c.ConnectionsAccepted++
			c.ConnectionsOpen++
		} else {
			c.ConnectionsOpen--
		}
	}
}
