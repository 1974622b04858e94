package udp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chihaya/chihaya/backend"
	_ "github.com/chihaya/chihaya/backend/noop"
	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/stats"
	_ "github.com/chihaya/chihaya/tracker/memory"
	"github.com/chihaya/chihaya/tracker/trackertest"
)

// newTestServer returns a server over a fresh memory store and the noop
// backend (or site, if given: a private tracker's), with cfg adjusted by
// mutate.
func newTestServer(t testing.TB, mutate func(*config.Config), site backend.Conn) *Server {
	t.Helper()
	cfg := config.Default()
	if site != nil {
		cfg.Private, cfg.TrackerSecret = true, strings.Repeat("s", bittorrent.PasskeyLen)
	}
	if mutate != nil {
		mutate(cfg)
	}
	tkr, st := trackertest.NewTracker(t, cfg, site)
	s, err := NewServer(cfg, tkr, st)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// client is one address talking to a worker of s, at a time of the test's
// choosing.
type client struct {
	t    testing.TB
	w    *worker
	from netip.AddrPort
	now  time.Time
	id   uint64
	tx   uint32
}

var t0 = time.Date(2026, 12, 1, 15, 0, 30, 0, time.UTC)

func newClient(t testing.TB, w *worker, from string) *client {
	c := &client{t: t, w: w, from: netip.MustParseAddrPort(from), now: t0}
	c.connect()
	return c
}

// send hands p to the worker and returns the answer (nil for none), after
// checking what every answer must be: echoing the transaction ID, and never
// longer than the request unless the sender has shown a valid ID.
func (c *client) send(p []byte) []byte {
	c.t.Helper()
	out := c.w.handle(p, c.from, c.now, nil)
	if len(out) == 0 {
		return nil
	}
	if len(out) < answerLen || !bytes.Equal(out[4:8], p[12:16]) {
		c.t.Fatalf("answer % x does not echo the transaction ID % x", out, p[12:16])
	}
	action := binary.BigEndian.Uint32(out)
	verified := c.w.ring.valid(binary.BigEndian.Uint64(p), c.from.Addr().Unmap(), bucketOf(c.now))
	if !verified && action != actionConnect && len(out) > len(p) {
		c.t.Fatalf("%d-byte answer (action %d) to a %d-byte request from an unproven address", len(out), action, len(p))
	}
	return out
}

// header returns a request header with the client's connection ID.
func (c *client) header(action uint32) []byte {
	c.tx++
	p := binary.BigEndian.AppendUint64(nil, c.id)
	p = binary.BigEndian.AppendUint32(p, action)
	return binary.BigEndian.AppendUint32(p, c.tx)
}

func (c *client) connect() []byte {
	c.t.Helper()
	p := c.header(actionConnect)
	binary.BigEndian.PutUint64(p, protocolID)
	out := c.send(p)
	if len(out) != connectLen || binary.BigEndian.Uint32(out) != actionConnect {
		c.t.Fatalf("connect answered % x", out)
	}
	c.id = binary.BigEndian.Uint64(out[8:])
	return out
}

// ann is an announce's fields.
type ann struct {
	ih, peer       string // 20 bytes each
	down, left, up uint64
	event          uint32
	ip             [4]byte
	numWant        int32 // 0 sends -1, the default
	port           uint16
	options        []byte
}

func (c *client) announcePacket(a ann) []byte {
	p := c.header(actionAnnounce)
	p = append(p, a.ih...)
	p = append(p, a.peer...)
	p = binary.BigEndian.AppendUint64(p, a.down)
	p = binary.BigEndian.AppendUint64(p, a.left)
	p = binary.BigEndian.AppendUint64(p, a.up)
	p = binary.BigEndian.AppendUint32(p, a.event)
	p = append(p, a.ip[:]...)
	p = binary.BigEndian.AppendUint32(p, 0xdeadbeef) // key
	p = binary.BigEndian.AppendUint32(p, uint32(a.numWant))
	p = binary.BigEndian.AppendUint16(p, a.port)
	if len(p) != announceLen {
		c.t.Fatalf("announce of %d bytes", len(p))
	}
	return append(p, a.options...)
}

// announced is a decoded announce answer.
type announced struct {
	interval, leechers, seeders uint32
	peers                       []netip.AddrPort
	err                         string // an error answer's message
}

func decodeAnswer(t testing.TB, out []byte, want uint32, peerSize int) announced {
	t.Helper()
	var r announced
	switch action := binary.BigEndian.Uint32(out); {
	case action == actionError:
		r.err = string(out[answerLen:])
		return r
	case action != want:
		t.Fatalf("answer action %d, want %d: % x", action, want, out)
	}
	if want != actionAnnounce {
		return r
	}
	if len(out) < peersAt || (len(out)-peersAt)%peerSize != 0 {
		t.Fatalf("announce answer of %d bytes, with %d-byte peers", len(out), peerSize)
	}
	r.interval = binary.BigEndian.Uint32(out[8:])
	r.leechers = binary.BigEndian.Uint32(out[12:])
	r.seeders = binary.BigEndian.Uint32(out[16:])
	for b := out[peersAt:]; len(b) > 0; b = b[peerSize:] {
		e := b[:peerSize]
		port := binary.BigEndian.Uint16(e[peerSize-2:])
		if peerSize == bittorrent.PackedIPv4 {
			r.peers = append(r.peers, netip.AddrPortFrom(netip.AddrFrom4([4]byte(e)), port))
		} else {
			r.peers = append(r.peers, netip.AddrPortFrom(netip.AddrFrom16([16]byte(e)), port))
		}
	}
	return r
}

func (c *client) announce(a ann) announced {
	c.t.Helper()
	if a.numWant == 0 {
		a.numWant = -1
	}
	size := bittorrent.PackedIPv4
	if c.from.Addr().Unmap().Is6() {
		size = bittorrent.PackedIPv6
	}
	out := c.send(c.announcePacket(a))
	if out == nil {
		c.t.Fatal("announce not answered")
	}
	return decodeAnswer(c.t, out, actionAnnounce, size)
}

func (c *client) scrapePacket(hashes ...string) []byte {
	p := c.header(actionScrape)
	for _, h := range hashes {
		p = append(p, h...)
	}
	return p
}

type scraped struct{ seeders, completed, leechers uint32 }

// scrape returns the figures of each hash, or the error answer.
func (c *client) scrape(hashes ...string) ([]scraped, string) {
	c.t.Helper()
	out := c.send(c.scrapePacket(hashes...))
	if out == nil {
		c.t.Fatal("scrape not answered")
	}
	if binary.BigEndian.Uint32(out) == actionError {
		return nil, string(out[answerLen:])
	}
	if binary.BigEndian.Uint32(out) != actionScrape || (len(out)-answerLen)%scrapeEntry != 0 {
		c.t.Fatalf("scrape answered % x", out)
	}
	var r []scraped
	for b := out[answerLen:]; len(b) > 0; b = b[scrapeEntry:] {
		r = append(r, scraped{binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint32(b[8:])})
	}
	return r, ""
}

func hash(n int) string { return fmt.Sprintf("%-20s", fmt.Sprintf("torrent-%d", n)) }
func peer(n int) string { return fmt.Sprintf("-TT0001-%012d", n) }

const leecher = 1000 // a left that is not 0

func TestConnect(t *testing.T) {
	s := newTestServer(t, nil, nil)
	w := newWorker(s)
	c := newClient(t, w, "10.0.0.1:4000")
	for _, tc := range []struct {
		name   string
		packet func() []byte
		answer bool
	}{
		{"Connect", func() []byte { p := c.header(0); binary.BigEndian.PutUint64(p, protocolID); return p }, true},
		{"TrailingBytes", func() []byte { p := c.header(0); binary.BigEndian.PutUint64(p, protocolID); return append(p, 1, 2, 3) }, true},
		{"WrongProtocolID", func() []byte { p := c.header(0); binary.BigEndian.PutUint64(p, protocolID+1); return p }, false},
		{"Short", func() []byte { p := c.header(0); binary.BigEndian.PutUint64(p, protocolID); return p[:15] }, false},
		{"Empty", func() []byte { return nil }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.packet()
			out := w.handle(p, c.from, c.now, nil)
			switch {
			case !tc.answer && len(out) != 0:
				t.Fatalf("answered % x", out)
			case tc.answer && (len(out) != connectLen || binary.BigEndian.Uint32(out) != actionConnect || !bytes.Equal(out[4:8], p[12:16])):
				t.Fatalf("answer % x to % x", out, p)
			case tc.answer && binary.BigEndian.Uint64(out[8:]) != c.id:
				t.Errorf("a second connect within the minute got ID %x, want %x", out[8:], c.id)
			}
		})
	}
	// The ID is the address's: another address, even IPv4-mapped, gets its
	// own; the same address over IPv6 mapping gets the same.
	other := newClient(t, w, "10.0.0.2:4000")
	mapped := newClient(t, w, "[::ffff:10.0.0.1]:4001")
	if other.id == c.id || mapped.id != c.id {
		t.Errorf("IDs: 10.0.0.1 %x, 10.0.0.2 %x, ::ffff:10.0.0.1 %x", c.id, other.id, mapped.id)
	}
}

func TestAnnounce(t *testing.T) {
	for _, tc := range []struct {
		name, a, b string // two announcers' source addresses
		size       int
		wantA      netip.AddrPort // a as b sees it
	}{
		{"IPv4", "10.0.0.1:5000", "10.0.0.2:5000", bittorrent.PackedIPv4, netip.MustParseAddrPort("10.0.0.1:6001")},
		{"IPv6", "[2001:db8::1]:5000", "[2001:db8::2]:5000", bittorrent.PackedIPv6, netip.MustParseAddrPort("[2001:db8::1]:6001")},
		{"IPv4Mapped", "[::ffff:10.0.0.1]:5000", "[::ffff:10.0.0.2]:5000", bittorrent.PackedIPv4, netip.MustParseAddrPort("10.0.0.1:6001")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, nil, nil)
			w := newWorker(s)
			a, b := newClient(t, w, tc.a), newClient(t, w, tc.b)
			r := a.announce(ann{ih: hash(1), peer: peer(1), left: 0, port: 6001, event: uint32(bittorrent.Started)})
			if r.err != "" || r.interval != 1800 || r.seeders != 1 || r.leechers != 0 || len(r.peers) != 0 {
				t.Fatalf("first announce: %+v", r)
			}
			out := b.send(b.announcePacket(ann{ih: hash(1), peer: peer(2), left: leecher, port: 6002, numWant: -1}))
			if (len(out)-peersAt)%tc.size != 0 {
				t.Fatalf("answer of %d bytes for %d-byte peers", len(out), tc.size)
			}
			r = decodeAnswer(t, out, actionAnnounce, tc.size)
			if r.seeders != 1 || r.leechers != 1 || len(r.peers) != 1 || r.peers[0] != tc.wantA {
				t.Errorf("second announce: %+v, want the first peer %v", r, tc.wantA)
			}
		})
	}
}

// An announce over IPv6 gets the swarm's IPv6 peers, over IPv4 its IPv4
// ones: BEP 15 answers in the family of the request.
func TestAnnounceFamilies(t *testing.T) {
	s := newTestServer(t, nil, nil)
	w := newWorker(s)
	v4, v6 := newClient(t, w, "10.0.0.1:1"), newClient(t, w, "[2001:db8::1]:1")
	v4.announce(ann{ih: hash(1), peer: peer(1), port: 6001})
	v6.announce(ann{ih: hash(1), peer: peer(2), port: 6002})
	for _, c := range []struct {
		cl   *client
		want string
	}{{newClient(t, w, "10.0.0.9:1"), "10.0.0.1:6001"}, {newClient(t, w, "[2001:db8::9]:1"), "[2001:db8::1]:6002"}} {
		r := c.cl.announce(ann{ih: hash(1), peer: peer(9), left: leecher, port: 6009})
		if len(r.peers) != 1 || r.peers[0].String() != c.want {
			t.Errorf("%v got %v, want %s", c.cl.from, r.peers, c.want)
		}
	}
}

// An announce's answer fits in one unfragmented datagram on a 1500-byte
// link whatever num_want and max_num_want say: at most 242 IPv4 peers
// (1472 bytes) and 79 IPv6 peers (1452 bytes).
func TestAnswerFitsADatagram(t *testing.T) {
	s := newTestServer(t, func(c *config.Config) { c.DefaultNumWant, c.MaxNumWant = 1000, 1000 }, nil)
	w := newWorker(s)
	for n := range 300 {
		newClient(t, w, fmt.Sprintf("10.0.%d.%d:1", n/200, n%200+1)).announce(ann{ih: hash(1), peer: peer(n), port: 6000})
		newClient(t, w, fmt.Sprintf("[2001:db8::%x]:1", n+1)).announce(ann{ih: hash(1), peer: peer(1000 + n), port: 6000})
	}
	for _, tc := range []struct {
		from    string
		numWant int32
		want    int
	}{
		{"10.9.0.1:1", -1, maxPeers4}, {"10.9.0.1:1", 1000, maxPeers4}, {"10.9.0.1:1", 10, 10},
		{"[2001:db8::ffff]:1", -1, maxPeers6}, {"[2001:db8::ffff]:1", 1000, maxPeers6},
	} {
		r := newClient(t, w, tc.from).announce(ann{ih: hash(1), peer: peer(5000), left: leecher, port: 7000, numWant: tc.numWant})
		if len(r.peers) != tc.want {
			t.Errorf("from %s, num_want %d: %d peers, want %d", tc.from, tc.numWant, len(r.peers), tc.want)
		}
	}
	if maxPeers4 != 242 || maxPeers6 != 79 {
		t.Errorf("maxPeers4 %d, maxPeers6 %d: want 242 and 79", maxPeers4, maxPeers6)
	}
}

func TestAnnounceFields(t *testing.T) {
	s := newTestServer(t, func(c *config.Config) { c.DefaultNumWant, c.MaxNumWant = 3, 5 }, nil)
	w := newWorker(s)
	for n := range 8 { // eight seeders
		newClient(t, w, fmt.Sprintf("10.0.1.%d:1", n)).announce(ann{ih: hash(1), peer: peer(n), port: uint16(6000 + n)})
	}
	c := newClient(t, w, "10.0.0.1:1")
	for _, tc := range []struct {
		numWant int32
		want    int
	}{{-1, 3}, {-7, 3}, {1, 1}, {4, 4}, {100, 5}} {
		if r := c.announce(ann{ih: hash(1), peer: peer(100), left: leecher, port: 7000, numWant: tc.numWant}); len(r.peers) != tc.want {
			t.Errorf("num_want %d: %d peers, want %d", tc.numWant, len(r.peers), tc.want)
		}
	}

	// Events: completed counts a download, stopped leaves.
	c.announce(ann{ih: hash(2), peer: peer(1), left: leecher, port: 7001, event: uint32(bittorrent.Started)})
	if got, _ := c.scrape(hash(2)); got[0] != (scraped{0, 0, 1}) {
		t.Errorf("after started: %+v", got)
	}
	c.announce(ann{ih: hash(2), peer: peer(1), left: 0, port: 7001, event: uint32(bittorrent.Completed)})
	if got, _ := c.scrape(hash(2)); got[0] != (scraped{1, 1, 0}) {
		t.Errorf("after completed: %+v", got)
	}
	c.announce(ann{ih: hash(2), peer: peer(1), left: 0, port: 7001, event: uint32(bittorrent.Stopped)})
	if got, _ := c.scrape(hash(2)); got[0] != (scraped{}) { // the last peer left: the swarm went with it
		t.Errorf("after stopped: %+v", got)
	}

	// Refusals change nothing.
	for _, tc := range []struct {
		name string
		a    ann
		want string
	}{
		{"Paused", ann{event: uint32(bittorrent.Paused)}, "unknown event"},
		{"Event9", ann{event: 9}, "unknown event"},
		{"HugeEvent", ann{event: 1 << 31}, "unknown event"},
		{"NegativeLeft", ann{left: 1 << 63}, "must not be negative"},
		{"NegativeUploaded", ann{up: ^uint64(0)}, "must not be negative"},
		{"NegativeDownloaded", ann{down: 1 << 63}, "must not be negative"},
		{"Port0", ann{port: 0}, "invalid port"},
		{"TruncatedOption", ann{options: []byte{optionURLData, 10, 'a'}}, "truncated BEP 41 option"},
		{"OptionWithoutLength", ann{options: []byte{optionNOP, optionURLData}}, "truncated BEP 41 option"},
	} {
		a := tc.a
		a.ih, a.peer = hash(3), peer(3)
		if a.port == 0 && tc.name != "Port0" {
			a.port = 7003
		}
		if r := c.announce(a); !strings.Contains(r.err, tc.want) {
			t.Errorf("%s: answered %+v, want an error with %q", tc.name, r, tc.want)
		}
	}
	if got, _ := c.scrape(hash(3)); got[0] != (scraped{}) {
		t.Errorf("refused announces changed the swarm: %+v", got)
	}
	short := c.announcePacket(ann{ih: hash(3), peer: peer(3), port: 7003})[:97]
	if r := decodeAnswer(t, c.send(short), actionAnnounce, 6); !strings.Contains(r.err, "98 bytes") {
		t.Errorf("a 97-byte announce: %+v", r)
	}
}

// The ip field counts only with allow_ip_spoofing.
func TestAnnounceIPField(t *testing.T) {
	for _, allow := range []bool{false, true} {
		s := newTestServer(t, func(c *config.Config) { c.AllowIPSpoofing = allow }, nil)
		w := newWorker(s)
		newClient(t, w, "10.0.0.1:1").announce(ann{ih: hash(1), peer: peer(1), port: 6001, ip: [4]byte{192, 0, 2, 7}})
		r := newClient(t, w, "10.0.0.2:1").announce(ann{ih: hash(1), peer: peer(2), left: leecher, port: 6002})
		want := "10.0.0.1:6001"
		if allow {
			want = "192.0.2.7:6001"
		}
		if len(r.peers) != 1 || r.peers[0].String() != want {
			t.Errorf("allow_ip_spoofing %v: peers %v, want %s", allow, r.peers, want)
		}
	}
}

func TestBEP41Options(t *testing.T) {
	s := newTestServer(t, nil, nil)
	w := newWorker(s)
	url := func(s string) []byte { return append([]byte{optionURLData, byte(len(s))}, s...) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name string
		opt  []byte
		want string // the URL data read
		err  bool
	}{
		{"None", nil, "", false},
		{"OldExtensionsField", []byte{0, 0}, "", false},
		{"URL", url("/announce"), "/announce", false},
		{"Split", cat(url("/ann"), url("ounce?a=1")), "/announce?a=1", false},
		{"NOPs", cat([]byte{optionNOP, optionNOP}, url("/x"), []byte{optionNOP}, url("/y")), "/x/y", false},
		{"EndStops", cat(url("/x"), []byte{optionEnd}, url("/y")), "/x", false},
		{"EndThenGarbage", cat([]byte{optionEnd, 7, 255}), "", false},
		{"UnknownSkipped", cat([]byte{9, 2, 'a', 'b'}, url("/z")), "/z", false},
		{"Empty URL", url(""), "", false},
		{"Max", url(strings.Repeat("u", 255)), strings.Repeat("u", 255), false},
		{"TruncatedData", []byte{optionURLData, 5, 'a'}, "", true},
		{"NoLength", []byte{optionURLData}, "", true},
		{"UnknownTruncated", []byte{7, 3}, "", true},
	} {
		got, err := w.options(tc.opt)
		if (err != nil) != tc.err || (!tc.err && string(got) != tc.want) {
			t.Errorf("%s: options(% x) = %q, %v; want %q, error %v", tc.name, tc.opt, got, err, tc.want, tc.err)
		}
	}
	// A public tracker ignores the URL data.
	c := newClient(t, w, "10.0.0.1:1")
	if r := c.announce(ann{ih: hash(1), peer: peer(1), port: 6001, options: cat(url("/whatever"), url("/else"))}); r.err != "" {
		t.Errorf("public announce with URL data: %+v", r)
	}
}

func TestScrape(t *testing.T) {
	s := newTestServer(t, func(c *config.Config) { c.MaxScrapeInfoHashes = maxScrapeHashes }, nil)
	w := newWorker(s)
	c := newClient(t, w, "10.0.0.1:1")
	c.announce(ann{ih: hash(1), peer: peer(1), port: 6001})                // a seeder of 1
	c.announce(ann{ih: hash(2), peer: peer(2), left: leecher, port: 6002}) // a leecher of 2
	c.announce(ann{ih: hash(2), peer: peer(3), left: leecher, port: 6003}) // another
	got, errMsg := c.scrape(hash(2), hash(9), hash(1), hash(2))
	want := []scraped{{0, 0, 2}, {}, {1, 0, 0}, {0, 0, 2}}
	if errMsg != "" || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("scrape: %v %q, want %v in the order asked", got, errMsg, want)
	}
	var all []string
	for n := range maxScrapeHashes {
		all = append(all, hash(n))
	}
	if got, errMsg := c.scrape(all...); len(got) != maxScrapeHashes || got[1] != (scraped{1, 0, 0}) {
		t.Errorf("a %d-hash scrape: %d answers, %q", maxScrapeHashes, len(got), errMsg)
	}
	if p := c.scrapePacket(append(all, hash(99))...); c.send(p) != nil {
		t.Errorf("a %d-byte scrape (%d hashes) was answered", len(p), maxScrapeHashes+1)
	}
	for _, tc := range []struct {
		name   string
		packet []byte
		want   string
	}{
		{"NoHash", c.scrapePacket(), "no info_hash"},
		{"PartHash", c.scrapePacket(hash(1), "short"), "20-byte info_hashes"},
	} {
		if r := decodeAnswer(t, c.send(tc.packet), actionScrape, 0); !strings.Contains(r.err, tc.want) {
			t.Errorf("%s: %+v, want %q", tc.name, r, tc.want)
		}
	}
	// The tracker's own limit holds: max_scrape_infohashes.
	s = newTestServer(t, func(c *config.Config) { c.MaxScrapeInfoHashes = 3 }, nil)
	c = newClient(t, newWorker(s), "10.0.0.1:1")
	if got, errMsg := c.scrape(all[:4]...); got != nil || !strings.Contains(errMsg, "too many") {
		t.Errorf("4 hashes over a limit of 3: %v %q", got, errMsg)
	}
}

// Requests whose connection ID is forged, expired, or another address's
// get a short error, or none when the error would be longer than the
// request, and change nothing.
func TestConnectionIDs(t *testing.T) {
	s := newTestServer(t, nil, nil)
	w := newWorker(s)
	good := newClient(t, w, "10.0.0.1:1")
	other := newClient(t, w, "10.0.0.2:1")
	var bucket = bucketOf(t0)
	for _, tc := range []struct {
		name string
		id   uint64
		at   time.Time
		ok   bool
	}{
		{"Fresh", good.id, t0, true},
		{"NextBucket", good.id, t0.Add(idBucket), true},
		{"Expired", good.id, t0.Add(idLifetime), false},
		{"Future", good.ring().mint(good.from.Addr(), bucket+1), t0, false},
		{"PreviousBucket", good.ring().mint(good.from.Addr(), bucket-1), t0, true},
		{"TwoBucketsOld", good.ring().mint(good.from.Addr(), bucket-2), t0, false},
		{"OtherAddress", other.id, t0, false},
		{"Forged", good.id ^ 1, t0, false},
		{"Zero", 0, t0, false},
		{"ProtocolID", protocolID, t0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := *good
			c.id, c.now = tc.id, tc.at
			before := s.stats.Snapshot().UDP
			r := c.announce(ann{ih: hash(7), peer: peer(7), left: leecher, port: 6007})
			sc, scErr := c.scrape(hash(7))
			after := s.stats.Snapshot().UDP
			if tc.ok {
				if r.err != "" || scErr != "" || sc[0].leechers != 1 {
					t.Errorf("refused: %+v %v %q", r, sc, scErr)
				}
				c.announce(ann{ih: hash(7), peer: peer(7), left: leecher, port: 6007, event: uint32(bittorrent.Stopped)})
				return
			}
			if r.err != string(errBadConnectionID) || scErr != string(errBadConnectionID) {
				t.Errorf("answered %+v and %q, want %q", r, scErr, errBadConnectionID)
			}
			if n := after.BadConnectionIDs - before.BadConnectionIDs; n != 2 {
				t.Errorf("%d bad connection IDs counted, want 2", n)
			}
			if got, _ := good.scrape(hash(7)); got[0] != (scraped{}) {
				t.Errorf("the swarm changed: %+v", got)
			}
			// Too short for even the error: silence.
			if out := c.send(c.header(actionAnnounce)); out != nil {
				t.Errorf("a bare 16-byte header with a bad ID was answered % x", out)
			}
		})
	}
}

// ring returns the client's worker's keys.
func (c *client) ring() *keyring { return &c.w.ring }

// Instances with the same udp_secret take each other's IDs; without one,
// each process has its own key.
func TestSharedSecret(t *testing.T) {
	secret := func(s string) func(*config.Config) { return func(c *config.Config) { c.UDPSecret = s } }
	k1, k2 := strings.Repeat("k", 32), strings.Repeat("K", 40)
	for _, tc := range []struct {
		name   string
		a, b   func(*config.Config)
		shared bool
	}{
		{"SameSecret", secret(k1), secret(k1), true},
		{"OtherSecret", secret(k1), secret(k2), false},
		{"NoSecrets", nil, nil, false},
	} {
		a, b := newWorker(newTestServer(t, tc.a, nil)), newWorker(newTestServer(t, tc.b, nil))
		c := newClient(t, a, "10.0.0.1:1")
		c.w = b
		r := c.announce(ann{ih: hash(1), peer: peer(1), port: 6001})
		if (r.err == "") != tc.shared {
			t.Errorf("%s: an ID from one instance at the other: %+v", tc.name, r)
		}
	}
}

// A reload that changes udp_secret mints with the new key at once and
// still takes the old key's IDs for their lifetime.
func TestSecretReload(t *testing.T) {
	for _, tc := range []struct{ from, to string }{
		{strings.Repeat("a", 32), strings.Repeat("b", 32)},
		{"", strings.Repeat("b", 32)},
		{strings.Repeat("a", 32), ""},
	} {
		s := newTestServer(t, func(c *config.Config) { c.UDPSecret = tc.from }, nil)
		w := newWorker(s)
		old := newClient(t, w, "10.0.0.1:1")
		next := *s.tracker.Config()
		next.UDPSecret = tc.to
		s.tracker.Reload(&next)
		fresh := newClient(t, w, "10.0.0.1:1")
		if fresh.id == old.id {
			t.Errorf("%q -> %q: the new secret mints the old ID", tc.from, tc.to)
		}
		for _, c := range []struct {
			cl   *client
			at   time.Duration
			want bool
		}{
			{old, 0, true}, {old, idBucket, true}, {old, idLifetime, false},
			{fresh, 0, true}, {fresh, idBucket, true}, {fresh, idLifetime, false},
		} {
			cl := *c.cl
			cl.now = t0.Add(c.at)
			if r := cl.announce(ann{ih: hash(1), peer: peer(1), port: 6001}); (r.err == "") != c.want {
				t.Errorf("%q -> %q: ID %x at +%v: %+v, want accepted %v", tc.from, tc.to, cl.id, c.at, r, c.want)
			}
		}
		// A reload that keeps the secret keeps the key.
		same := *s.tracker.Config()
		s.tracker.Reload(&same)
		if again := newClient(t, w, "10.0.0.1:1"); again.id != fresh.id {
			t.Errorf("%q -> %q: reloading the same secret changed the key", tc.from, tc.to)
		}
	}
}

func TestUnknownAction(t *testing.T) {
	s := newTestServer(t, nil, nil)
	c := newClient(t, newWorker(s), "10.0.0.1:1")
	for _, action := range []uint32{actionError, 4, 1 << 31} {
		p := append(c.header(action), make([]byte, 40)...)
		if r := decodeAnswer(t, c.send(p), 99, 0); r.err != string(errUnknownAction) {
			t.Errorf("action %d: %+v", action, r)
		}
	}
	snap := s.stats.Snapshot()
	if n := snap.Transports[stats.UDP].Requests[stats.Other][stats.ClientError]; n != 3 {
		t.Errorf("%d unknown actions counted, want 3", n)
	}
}

// Malformed packets from an address that never connected get nothing but
// a short error about the ID; from a connected one, an error; never a
// crash, never a change.
func TestMalformedPackets(t *testing.T) {
	s := newTestServer(t, nil, nil)
	w := newWorker(s)
	good := newClient(t, w, "10.0.0.1:1")
	stranger := *good
	stranger.from, stranger.id = netip.MustParseAddrPort("192.0.2.1:1"), good.id
	full := good.announcePacket(ann{ih: hash(1), peer: peer(1), port: 6001, options: []byte{optionURLData, 3, 'a', 'b', 'c'}})
	for _, c := range []*client{good, &stranger} {
		for n := range len(full) + 1 {
			c.send(full[:n]) // send checks the size of any answer
		}
		c.send(make([]byte, maxPacket+1))
		c.send(bytes.Repeat([]byte{0xff}, maxPacket))
	}
	if got, _ := good.scrape(hash(1)); got[0] != (scraped{1, 0, 0}) {
		t.Errorf("after the announce and its truncations: %+v, want one seeder", got)
	}
	if out := good.send(append(good.scrapePacket(), make([]byte, maxPacket)...)); out != nil {
		t.Errorf("an oversize packet was answered: % x", out)
	}
}

// Every step is counted: connects, bad IDs, error packets, drops and the
// UDP requests by kind.
func TestStats(t *testing.T) {
	s := newTestServer(t, nil, nil)
	c := newClient(t, newWorker(s), "10.0.0.1:1")
	c.announce(ann{ih: hash(1), peer: peer(1), port: 6001})
	c.scrape(hash(1))
	c.announce(ann{ih: hash(1), peer: peer(1), port: 0})
	bad := *c
	bad.id++
	bad.scrape(hash(1))
	c.send([]byte("short"))
	snap := s.stats.Snapshot()
	if want := (stats.UDPCounts{Connects: 1, BadConnectionIDs: 1, Errors: 2, Dropped: 1}); snap.UDP != want {
		t.Errorf("UDP counts %+v, want %+v", snap.UDP, want)
	}
	udp := snap.Transports[stats.UDP].Requests
	if udp[stats.Announce][stats.OK] != 1 || udp[stats.Announce][stats.ClientError] != 1 || udp[stats.Scrape][stats.OK] != 1 {
		t.Errorf("UDP requests %v", udp)
	}
	if snap.Transports[stats.HTTP].Requests != ([stats.NumKinds][stats.NumOutcomes]int64{}) {
		t.Errorf("HTTP requests counted: %v", snap.Transports[stats.HTTP].Requests)
	}
}

// A worker is one goroutine's; workers of one server share the key ring
// and the tracker safely (run under -race).
func TestWorkersConcurrently(t *testing.T) {
	s := newTestServer(t, nil, nil)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(t, newWorker(s), fmt.Sprintf("10.0.0.%d:1", g+1))
			for i := range 200 {
				c.announce(ann{ih: hash(i % 7), peer: peer(g), left: uint64(i % 2), port: 6001})
				if i == 100 && g == 0 {
					next := *s.tracker.Config()
					next.UDPSecret = strings.Repeat("r", 32)
					s.tracker.Reload(&next)
				}
			}
		}()
	}
	wg.Wait()
}
