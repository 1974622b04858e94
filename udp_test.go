package chihaya

import (
	"context"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	trackerudp "github.com/anacrolix/torrent/tracker/udp"
	"github.com/anacrolix/torrent/types/infohash"
	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/tracker"
)

// udpAddr is where a daemon started by startDaemon serves UDP, from its
// log.
func (d *daemon) udpAddr(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`serving UDP announces on (\S+) `).FindStringSubmatch(d.log.String())
	if m == nil {
		t.Fatalf("the daemon does not say where it serves UDP:\n%s", d.log.String())
	}
	return m[1]
}

// udpClient is a real BEP 15 client (anacrolix/torrent's) of addr.
func udpClient(t *testing.T, network, addr string) *trackerudp.ConnClient {
	t.Helper()
	cc, err := trackerudp.NewConnClient(trackerudp.NewConnClientOpts{Network: network, Host: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// udpAnnounce announces peer (a 20-byte peer_id) on port to the torrent
// "aaaaaaaaaaaaaaaaaaaa", the info_hash of announceTarget, and returns the
// answer's counts and peers.
func udpAnnounce(t *testing.T, cc *trackerudp.ConnClient, peer string, port uint16, left int64, ev trackerudp.AnnounceEvent) (trackerudp.AnnounceResponseHeader, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := trackerudp.AnnounceRequest{InfoHash: infohash.T([]byte("aaaaaaaaaaaaaaaaaaaa")), Left: left, Event: ev, NumWant: -1, Port: port}
	copy(req.PeerId[:], peer)
	h, peers, err := cc.Announce(ctx, req, trackerudp.Options{RequestUri: "/announce"})
	if err != nil {
		t.Fatalf("UDP announce: %v", err)
	}
	var addrs []string
	for _, p := range peers.NodeAddrs() {
		addrs = append(addrs, p.String())
	}
	return h, addrs
}

// The built daemon serves UDP beside HTTP on one tracker: a peer that
// announced over one transport is handed out over the other, and the
// admin listener counts each transport apart.
func TestUDPBesideHTTP(t *testing.T) {
	d := startDaemon(t, `{"addr": "127.0.0.1:0", "admin_addr": "127.0.0.1:0", "udp_addr": "127.0.0.1:0"}`)
	cc := udpClient(t, "udp4", d.udpAddr(t))

	// A leecher over HTTP (port 6882), then a seeder over UDP, which gets
	// the HTTP leecher.
	decodeBody(t, rawGet(t, d.public, "GET "+announceTarget+" HTTP/1.0\r\n\r\n"))
	h, peers := udpAnnounce(t, cc, "-TR4050-udpseeder0001", 7000, 0, trackerudp.AnnounceEvent(bittorrent.Started))
	if h.Seeders != 1 || h.Leechers != 1 || len(peers) != 1 || peers[0] != "127.0.0.1:6882" {
		t.Errorf("UDP seeder's answer: %+v, peers %v; want 1 seeder, 1 leecher and the HTTP leecher", h, peers)
	}
	// The HTTP leecher gets the UDP seeder.
	m := decodeBody(t, rawGet(t, d.public, "GET "+announceTarget+" HTTP/1.0\r\n\r\n"))
	if p, _ := m["peers"].(string); len(p) != 6 || netip.AddrPortFrom(netip.AddrFrom4([4]byte([]byte(p[:4]))), uint16(p[4])<<8|uint16(p[5])).String() != "127.0.0.1:7000" {
		t.Errorf("HTTP leecher's answer: %v; want the UDP seeder 127.0.0.1:7000", m)
	}

	stats := rawGet(t, d.admin, "GET /stats?flatten HTTP/1.0\r\n\r\n")
	metrics := rawGet(t, d.admin, "GET /metrics HTTP/1.0\r\n\r\n")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`chihaya_requests_total\{kind="announce",outcome="ok",transport="udp"\} 1\b`),
		regexp.MustCompile(`chihaya_requests_total\{kind="announce",outcome="ok",transport="http"\} 2\b`),
	} {
		if !want.MatchString(metrics) {
			t.Errorf("/metrics has no line matching %s", want)
		}
	}
	if !strings.Contains(stats, "UDP") {
		t.Errorf("/stats says nothing of UDP:\n%s", stats)
	}
}

// With "udp_addr": "" the daemon opens no UDP socket.
func TestUDPOff(t *testing.T) {
	d := startDaemon(t, `{"addr": "127.0.0.1:0", "admin_addr": "", "udp_addr": ""}`)
	decodeBody(t, rawGet(t, d.public, "GET "+announceTarget+" HTTP/1.0\r\n\r\n"))
	if strings.Contains(d.log.String(), "UDP") {
		t.Errorf("UDP is off, yet the daemon says:\n%s", d.log.String())
	}
}

// udpRoundTrip sends a BEP 15 connect to addr from c and returns the
// connection ID it is given.
func udpConnect(t *testing.T, c *net.UDPConn) []byte {
	t.Helper()
	req := []byte{0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 1, 2, 3, 4}
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || n != 16 || string(buf[4:8]) != "\x01\x02\x03\x04" {
		t.Fatalf("connect answer %x, %v", buf[:n], err)
	}
	return buf[8:16]
}

// rate_limit is one budget per client address, whatever the transport:
// requests over HTTP and UDP draw on the same bucket.
func TestRateLimitSharedByTransports(t *testing.T) {
	d := startDaemon(t, `{"addr": "127.0.0.1:0", "admin_addr": "", "udp_addr": "127.0.0.1:0", "rate_limit": {"requests_per_second": 0.001, "burst": 2}}`)
	cc := udpClient(t, "udp4", d.udpAddr(t))
	decodeBody(t, rawGet(t, d.public, "GET "+announceTarget+" HTTP/1.0\r\n\r\n"))
	udpAnnounce(t, cc, "-TR4050-udpseeder0001", 7000, 0, trackerudp.AnnounceEvent(bittorrent.Started))
	m := decodeBody(t, rawGet(t, d.public, "GET "+announceTarget+" HTTP/1.0\r\n\r\n"))
	if m["failure reason"] != string(tracker.ErrRateLimited) {
		t.Errorf("third request from 127.0.0.1 (burst 2, one over HTTP, one over UDP): %v, want %q", m, tracker.ErrRateLimited)
	}
}
