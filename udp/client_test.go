package udp

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	trackerudp "github.com/anacrolix/torrent/tracker/udp"
	"github.com/anacrolix/torrent/types/infohash"
	"github.com/chihaya/chihaya/stats"
)

// listenLoopback opens a socket on network's loopback, or fails the test
// where CI must have it; elsewhere a missing IPv6 loopback skips.
func listenLoopback(t *testing.T, network, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(mustAddrPort(addr)))
	if err != nil {
		if os.Getenv("CI") == "" && network == "udp6" {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		t.Fatal(err)
	}
	return c
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// serve runs s on conns until the test ends, checking that Serve returns
// nil after Shutdown.
func serve(t *testing.T, s *Server, conns ...*net.UDPConn) {
	t.Helper()
	errs := make(chan error, len(conns))
	for _, c := range conns {
		go func() { errs <- s.Serve(c) }()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		for range conns {
			if err := <-errs; err != nil {
				t.Errorf("Serve: %v", err)
			}
		}
	})
}

// A real client (anacrolix/torrent's) announces started, completed and
// stopped, and scrapes, over IPv4 and IPv6 loopback.
func TestAnacrolixClient(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{{"udp4", "127.0.0.1:0"}, {"udp6", "[::1]:0"}} {
		t.Run(tc.network, func(t *testing.T) {
			s := newTestServer(t, nil, nil)
			conn := listenLoopback(t, tc.network, tc.addr)
			serve(t, s, conn)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			newClient := func() *trackerudp.ConnClient {
				cc, err := trackerudp.NewConnClient(trackerudp.NewConnClientOpts{Network: tc.network, Host: conn.LocalAddr().String()})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { cc.Close() })
				return cc
			}
			seeder, leecher := newClient(), newClient()
			ih := infohash.T([]byte(hash(1)))
			announce := func(cc *trackerudp.ConnClient, id string, port uint16, left int64, ev trackerudp.AnnounceEvent) (trackerudp.AnnounceResponseHeader, []string) {
				t.Helper()
				req := trackerudp.AnnounceRequest{InfoHash: ih, Left: left, Event: ev, NumWant: -1, Port: port}
				copy(req.PeerId[:], id)
				h, peers, err := cc.Announce(ctx, req, trackerudp.Options{RequestUri: "/announce"})
				if err != nil {
					t.Fatalf("announce %v: %v", ev, err)
				}
				var got []string
				for _, p := range peers.NodeAddrs() {
					got = append(got, p.String())
				}
				return h, got
			}
			loop := "127.0.0.1"
			if tc.network == "udp6" {
				loop = "[::1]"
			}
			h, peers := announce(seeder, peer(1), 6001, 0, trackerudp.AnnounceEvent(2)) // started
			if h.Seeders != 1 || h.Leechers != 0 || len(peers) != 0 || h.Interval != 1800 {
				t.Errorf("seeder started: %+v %v", h, peers)
			}
			h, peers = announce(leecher, peer(2), 6002, 100, trackerudp.AnnounceEvent(2))
			if h.Seeders != 1 || h.Leechers != 1 || len(peers) != 1 || peers[0] != loop+":6001" {
				t.Errorf("leecher started: %+v %v, want the seeder at %s:6001", h, peers, loop)
			}
			h, _ = announce(leecher, peer(2), 6002, 0, trackerudp.AnnounceEvent(1)) // completed
			if h.Seeders != 2 || h.Leechers != 0 {
				t.Errorf("leecher completed: %+v", h)
			}
			sc, err := leecher.Client.Scrape(ctx, []trackerudp.InfoHash{ih, trackerudp.InfoHash([]byte(hash(9)))})
			if err != nil || len(sc) != 2 || sc[0].Seeders != 2 || sc[0].Completed != 1 || sc[0].Leechers != 0 || sc[1] != (trackerudp.ScrapeInfohashResult{}) {
				t.Errorf("scrape: %+v, %v", sc, err)
			}
			announce(seeder, peer(1), 6001, 0, trackerudp.AnnounceEvent(3)) // stopped
			sc, err = seeder.Client.Scrape(ctx, []trackerudp.InfoHash{ih})
			if err != nil || len(sc) != 1 || sc[0].Seeders != 1 {
				t.Errorf("scrape after stopped: %+v, %v", sc, err)
			}
			if snap := s.stats.Snapshot(); snap.UDP.Connects < 2 || snap.Transports[stats.UDP].Requests[stats.Announce][stats.OK] != 4 {
				t.Errorf("stats: %+v, UDP requests %v", snap.UDP, snap.Transports[stats.UDP].Requests)
			}
		})
	}
}

// Listen opens SO_REUSEPORT sockets on one port, each served.
func TestListen(t *testing.T) {
	s := newTestServer(t, nil, nil)
	conns, err := listen("127.0.0.1:0", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != 3 {
		t.Fatalf("%d sockets", len(conns))
	}
	for _, c := range conns[1:] {
		if c.LocalAddr().String() != conns[0].LocalAddr().String() {
			t.Fatalf("sockets on %v and %v", conns[0].LocalAddr(), c.LocalAddr())
		}
	}
	serve(t, s, conns...)
	// Clients from many ports land on several sockets; each is answered.
	for i := range 20 {
		cl, err := net.DialUDP("udp4", nil, conns[0].LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		req := connectRequest(uint32(i))
		cl.SetDeadline(time.Now().Add(5 * time.Second))
		cl.Write(req)
		buf := make([]byte, 64)
		n, err := cl.Read(buf)
		cl.Close()
		if err != nil || n != connectLen {
			t.Fatalf("connect %d: %d bytes, %v", i, n, err)
		}
	}
	if all, err := Listen("127.0.0.1:0"); err != nil || len(all) == 0 {
		t.Errorf("Listen: %d sockets, %v", len(all), err)
	} else {
		for _, c := range all {
			c.Close()
		}
	}
	if _, err := Listen("127.0.0.1:99999"); err == nil || !strings.Contains(err.Error(), "udp_addr") {
		t.Errorf("Listen on port 99999: %v, want an error naming udp_addr", err)
	}
}

func connectRequest(tx uint32) []byte {
	p := make([]byte, 16)
	p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7] = 0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80
	p[12], p[13], p[14], p[15] = byte(tx>>24), byte(tx>>16), byte(tx>>8), byte(tx)
	return p
}

// Shutdown answers what was read, stops every Serve loop (which return
// nil), and a Serve after Shutdown returns at once.
func TestShutdown(t *testing.T) {
	s := newTestServer(t, nil, nil)
	conn := listenLoopback(t, "udp4", "127.0.0.1:0")
	errs := make(chan error, 1)
	go func() { errs <- s.Serve(conn) }()
	cl, err := net.DialUDP("udp4", nil, conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cl.SetDeadline(time.Now().Add(5 * time.Second))
	cl.Write(connectRequest(1))
	if n, err := cl.Read(make([]byte, 64)); err != nil || n != connectLen {
		t.Fatalf("connect: %d, %v", n, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Errorf("Serve after Shutdown: %v", err)
	}
	late := listenLoopback(t, "udp4", "127.0.0.1:0")
	if err := s.Serve(late); err != nil {
		t.Errorf("Serve after Shutdown: %v", err)
	}
	if _, err := late.WriteToUDP([]byte("x"), conn.LocalAddr().(*net.UDPAddr)); err == nil {
		t.Error("Serve after Shutdown left its socket open")
	}
}

// Serve returns an error, not nil, when its socket is closed under it
// without a Shutdown.
func TestServeClosedSocket(t *testing.T) {
	s := newTestServer(t, nil, nil)
	conn := listenLoopback(t, "udp4", "127.0.0.1:0")
	errs := make(chan error, 1)
	go func() { errs <- s.Serve(conn) }()
	time.Sleep(10 * time.Millisecond)
	conn.Close()
	select {
	case err := <-errs:
		if err == nil || !strings.Contains(err.Error(), "udp: reading") {
			t.Errorf("Serve on a closed socket: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve goes on on a closed socket")
	}
}

// ":PORT" is one dual-stack socket per CPU: IPv4 clients arrive as
// IPv4-mapped addresses and are answered as IPv4 ones (6-byte peers).
func TestDualStack(t *testing.T) {
	s := newTestServer(t, nil, nil)
	conns, err := Listen(":0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s, conns...)
	port := conns[0].LocalAddr().(*net.UDPAddr).Port
	for _, tc := range []struct {
		network, host string
		size          int
	}{{"udp4", "127.0.0.1", 6}, {"udp6", "::1", 18}} {
		cl, err := net.DialUDP(tc.network, nil, &net.UDPAddr{IP: net.ParseIP(tc.host), Port: port})
		if err != nil {
			if os.Getenv("CI") == "" && tc.network == "udp6" {
				t.Logf("no IPv6 loopback: %v", err)
				continue
			}
			t.Fatal(err)
		}
		defer cl.Close()
		cl.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 2048)
		cl.Write(connectRequest(1))
		n, err := cl.Read(buf)
		if err != nil || n != connectLen {
			t.Fatalf("%s connect: %d bytes, %v", tc.network, n, err)
		}
		c := &client{t: t, id: binary.BigEndian.Uint64(buf[8:])}
		for i := range 2 { // the second announce gets the first as its peer
			cl.Write(c.announcePacket(ann{ih: hash(1), peer: peer(i), left: 1, numWant: -1, port: uint16(6000 + i)}))
			if n, err = cl.Read(buf); err != nil {
				t.Fatalf("%s announce: %v", tc.network, err)
			}
		}
		r := decodeAnswer(t, buf[:n], actionAnnounce, tc.size)
		if len(r.peers) != 1 || r.peers[0].Addr().String() != tc.host || r.peers[0].Port() != 6000 {
			t.Errorf("%s: peers %v, want %s port 6000", tc.network, r.peers, tc.host)
		}
	}
}
