//go:build !race

// The race detector makes sync.Pool drop items on purpose, so allocation
// counts are only meaningful without it: `make test` runs this file in a
// pass of its own.

package udp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"
)

// The packet handler allocates nothing once warm: connects, announces
// (IPv4 and IPv6, public and private) and scrapes.
func TestSteadyStateHandlerAllocatesNothing(t *testing.T) {
	pub := newWorker(newTestServer(t, nil, nil))
	priv := newWorker(newTestServer(t, nil, newSite()))
	for n := range 60 {
		newClient(t, pub, "10.0.0.1:1").announce(ann{ih: hash(1), peer: peer(n), left: uint64(n % 2), port: uint16(6000 + n)})
		newClient(t, pub, "[2001:db8::1]:1").announce(ann{ih: hash(1), peer: peer(100 + n), left: uint64(n % 2), port: uint16(6000 + n)})
	}
	for _, tc := range []struct {
		name   string
		w      *worker
		from   string
		packet func(c *client) []byte
	}{
		{"Connect", pub, "10.0.0.7:1", func(c *client) []byte { p := c.header(0); binary.BigEndian.PutUint64(p, protocolID); return p }},
		{"AnnounceIPv4", pub, "10.0.0.7:1", func(c *client) []byte {
			return c.announcePacket(ann{ih: hash(1), peer: peer(7), left: 1, numWant: 50, port: 7007})
		}},
		{"AnnounceIPv6", pub, "[2001:db8::7]:1", func(c *client) []byte {
			return c.announcePacket(ann{ih: hash(1), peer: peer(107), left: 1, numWant: 50, port: 7007, options: urlData("/announce", 255)})
		}},
		{"AnnouncePrivate", priv, "10.0.0.7:1", func(c *client) []byte {
			return c.announcePacket(ann{ih: hash(1), peer: peer(7), left: 1, numWant: 50, port: 7007, options: urlData("/"+pkAlice+"/announce", 20)})
		}},
		{"Scrape", pub, "10.0.0.7:1", func(c *client) []byte { return c.scrapePacket(hash(1), hash(2), hash(3)) }},
		{"BadID", pub, "10.0.0.7:1", func(c *client) []byte { c.id++; return c.scrapePacket(hash(1)) }},
	} {
		c := newClient(t, tc.w, tc.from)
		p := tc.packet(c)
		from := netip.MustParseAddrPort(tc.from)
		out := tc.w.handle(p, from, t0, nil) // warm the buffers
		if len(out) == 0 {
			t.Fatalf("%s: no answer", tc.name)
		}
		if n := testing.AllocsPerRun(200, func() { out = tc.w.handle(p, from, t0, out) }); n != 0 {
			t.Errorf("%s: the handler allocates %v times per packet", tc.name, n)
		}
	}
}

// Reading a batch, answering it and sending the answers allocate nothing,
// batched (recvmmsg, sendmmsg) or one datagram at a time.
func TestServeLoopAllocatesNothing(t *testing.T) {
	s := newTestServer(t, nil, nil)
	for _, size := range []int{1, batchSize} {
		srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		cl, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		b, err := newBatcher(srv, size)
		if err != nil {
			t.Fatal(err)
		}
		w := newWorker(s)
		c := newClient(t, w, cl.LocalAddr().String())
		p := c.announcePacket(ann{ih: hash(1), peer: peer(1), port: 6001})
		to := srv.LocalAddr().(*net.UDPAddr).AddrPort()
		buf := make([]byte, 2048)
		cl.SetReadDeadline(time.Now().Add(10 * time.Second))
		srv.SetReadDeadline(time.Now().Add(10 * time.Second))
		round := func() {
			cl.WriteToUDPAddrPort(p, to)
			n, err := b.read()
			if err != nil || n != 1 {
				t.Fatalf("batch of %d: read %d, %v", size, n, err)
			}
			ps := b.packets()
			ps[0].out = w.handle(ps[0].in, ps[0].from, t0, ps[0].out)
			b.write(n)
			if n, _, err := cl.ReadFromUDPAddrPort(buf); err != nil || n != peersAt {
				t.Fatalf("batch of %d: answer of %d bytes, %v", size, n, err)
			}
		}
		round()
		if n := testing.AllocsPerRun(100, round); n != 0 {
			t.Errorf("batch of %d: %v allocations per round trip", size, n)
		}
	}
}
