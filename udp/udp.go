// Package udp is the tracker's UDP frontend: BEP 15 (connect, announce,
// scrape, error) with BEP 41's URL data, which carries a private tracker's
// /<passkey>/announce. It answers on the same tracker.Tracker as the HTTP
// frontend, under the same rules.
//
// Connection IDs are a keyed MAC (SipHash-2-4) of the client's address and
// the time, checked without any per-client state (see connid.go). The
// server never answers an address that has not shown a valid connection ID
// with more bytes than it sent, so it cannot be used to amplify a flood.
//
// Each socket has one reader goroutine, which reads a batch of datagrams
// (recvmmsg on Linux), answers each in turn and sends the answers in one
// batch (sendmmsg): no goroutine and, in steady state, no allocation per
// packet. Listen opens one SO_REUSEPORT socket per CPU, so that the
// kernel spreads the packets over as many readers.
package udp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/stats"
	"github.com/chihaya/chihaya/tracker"
	"github.com/golang/glog"
)

// Server answers BEP 15 requests on any number of sockets.
type Server struct {
	tracker *tracker.Tracker
	stats   *stats.Stats
	keys    keys

	mu     sync.Mutex
	conns  map[*net.UDPConn]struct{} // being served
	closed bool
	active sync.WaitGroup // Serve loops
}

// NewServer returns a server for tkr; Serve starts it on a socket.
// Reloadable keys (udp_secret among them) are read from tkr.Config(), once
// per packet; cfg is the configuration at start.
func NewServer(cfg *config.Config, tkr *tracker.Tracker, st *stats.Stats) (*Server, error) {
	if tkr == nil || st == nil {
		return nil, errors.New("udp: NewServer needs a tracker and statistics")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{tracker: tkr, stats: st, conns: make(map[*net.UDPConn]struct{})}
	s.keys.ring = keyring{secret: cfg.UDPSecret, cur: deriveKey(cfg.UDPSecret)}
	return s, nil
}

// batchSize is how many datagrams one system call reads or writes.
var batchSize = 32

// maxReadFailures is how many reads in a row may fail before Serve gives
// up on its socket.
const maxReadFailures = 100

// Serve answers requests on conn until Shutdown, then closes conn and
// returns nil. It may be called on several sockets at once, each in its own
// goroutine.
func (s *Server) Serve(conn *net.UDPConn) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.Close()
		return nil
	}
	s.conns[conn] = struct{}{}
	s.active.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		conn.Close()
		s.active.Done()
	}()

	b, err := newBatcher(conn, batchSize)
	if err != nil {
		return err
	}
	w := newWorker(s)
	ps := b.packets()
	failures := 0 // consecutive read errors
	for {
		n, err := b.read()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			// A read can fail for one datagram's sake (Windows reports an
			// oversize one as an error): go on, unless the socket is gone
			// or nothing but errors comes.
			if failures++; errors.Is(err, net.ErrClosed) || failures > maxReadFailures {
				return fmt.Errorf("udp: reading %v: %w", conn.LocalAddr(), err)
			}
			glog.Warningf("udp: reading %v: %v", conn.LocalAddr(), err)
			s.stats.RecordUDP(stats.UDPDropped)
			continue
		}
		failures = 0
		now := time.Now()
		for i := range ps[:n] {
			p := &ps[i]
			p.out = w.handle(p.in, p.from, now, p.out)
		}
		b.write(n)
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Shutdown stops every Serve loop once it has answered the packets it
// holds, and waits for them until ctx ends; then it closes the sockets
// outright and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.SetReadDeadline(time.Unix(1, 0)) // wakes the reader
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.active.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

// packet is one datagram of a batch and its answer.
type packet struct {
	in   []byte // as received: up to maxPacket+1 bytes, so that longer ones show
	from netip.AddrPort
	out  []byte // the answer; empty for none
}

// A batcher reads datagrams into its packets and sends their answers.
type batcher interface {
	// packets returns the batch's packets, which read fills and write sends.
	packets() []packet
	// read receives at least one datagram into packets()[:n].
	read() (n int, err error)
	// write sends the answers of packets()[:n] that are not empty, each to
	// where its request came from. A datagram that cannot be sent is
	// dropped, as the network might have.
	write(n int)
}

// newPackets returns n packets with their buffers.
func newPackets(n int) []packet {
	ps := make([]packet, n)
	for i := range ps {
		ps[i].in = make([]byte, maxPacket+1)
		ps[i].out = make([]byte, 0, 1024)
	}
	return ps
}

// single is the portable batcher: one datagram per system call.
type single struct {
	conn *net.UDPConn
	ps   []packet
}

func newSingle(conn *net.UDPConn) *single { return &single{conn: conn, ps: newPackets(1)} }

func (b *single) packets() []packet { return b.ps }

func (b *single) read() (int, error) {
	p := &b.ps[0]
	n, _, _, from, err := b.conn.ReadMsgUDPAddrPort(p.in[:cap(p.in)], nil)
	if err != nil {
		return 0, err
	}
	p.in, p.from = p.in[:n], from
	return 1, nil
}

func (b *single) write(n int) {
	if p := &b.ps[0]; n == 1 && len(p.out) > 0 {
		b.conn.WriteToUDPAddrPort(p.out, p.from)
	}
}
