package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testOptions are the options for target with n peers, checked.
func testOptions(t *testing.T, target string, mod func(o *options)) *options {
	t.Helper()
	o := &options{peers: 100, torrents: 10, numwant: 50, window: 8, conns: 4, mmsg: true, timeout: 2 * time.Second, lost: 200 * time.Millisecond}
	if mod != nil {
		mod(o)
	}
	if err := o.check(target, time.Second, time.Minute); err != nil {
		t.Fatal(err)
	}
	return o
}

func loadPhase(o *options) *tally {
	return run(o, &phase{once: true, peers: int64(o.peers), deadline: time.Now().Add(time.Minute)})
}

// trackerHandler answers announces as a tracker would; peer 13's with a
// failure reason.
func trackerHandler(t *testing.T, seen *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/announce" || len(q.Get("info_hash")) != 20 || len(q.Get("peer_id")) != 20 || q.Get("compact") != "1" || q.Get("numwant") != "50" {
			t.Errorf("unexpected announce %s", r.URL)
		}
		seen.Add(1)
		if q.Get("peer_id") == "-BM0001-000000000013" {
			w.Write([]byte("d14:failure reason4:nopee"))
			return
		}
		w.Write([]byte("d8:intervali1800e5:peers0:e"))
	})
}

func TestHTTP(t *testing.T) {
	for _, close := range []bool{false, true} {
		t.Run(fmt.Sprintf("close=%v", close), func(t *testing.T) {
			var seen atomic.Int64
			srv := httptest.NewServer(trackerHandler(t, &seen))
			defer srv.Close()
			o := testOptions(t, srv.URL, func(o *options) { o.close = close })
			got := loadPhase(o)
			if got.ok != 99 || got.failed != 1 || got.errors != 0 || seen.Load() != 100 {
				t.Errorf("ok %d, failed %d, errors %d (%v), server saw %d; want 99, 1, 0, 100", got.ok, got.failed, got.errors, got.firstErr, seen.Load())
			}
			if got.lat.quantile(0.5) <= 0 {
				t.Error("no latency recorded")
			}
			line := got.report("load", o)
			want := "mode=keepalive"
			if close {
				want = "mode=close"
			}
			if !strings.Contains(line, want) || !strings.Contains(line, " failed=1 errors=0 ") {
				t.Errorf("report %q lacks %s or the counts", line, want)
			}
		})
	}
}

// TestHTTPServerCloses is a server that answers HTTP/1.0 without a length
// and closes every connection, as opentracker does.
func TestHTTPServerCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				c.Write([]byte("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nd8:intervali1800e5:peers0:e"))
			}()
		}
	}()
	o := testOptions(t, "http://"+ln.Addr().String()+"/announce", nil)
	if got := loadPhase(o); got.ok != 100 || got.errors != 0 || got.bytes != 100*27 {
		t.Errorf("ok %d, errors %d (%v), bytes %d; want 100, 0, 2700", got.ok, got.errors, got.firstErr, got.bytes)
	}
}

func TestHTTPNothingListens(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	o := testOptions(t, "http://"+addr, func(o *options) { o.peers = 3; o.conns = 1 })
	if got := loadPhase(o); got.ok != 0 || got.errors != 3 || got.firstErr == nil {
		t.Errorf("ok %d, errors %d (%v); want 0, 3 and the error", got.ok, got.errors, got.firstErr)
	}
}

// udpTracker answers BEP 15 connects and announces on loopback; it drops
// peer 7's announces and answers peer 13's with an error.
func udpTracker(t *testing.T) (addr string, announces *atomic.Int64) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	announces = new(atomic.Int64)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			b := buf[:n]
			switch {
			case n == 16 && binary.BigEndian.Uint64(b) == protocolID:
				out := binary.BigEndian.AppendUint32(nil, actionConnect)
				out = append(out, b[12:16]...)
				out = binary.BigEndian.AppendUint64(out, 0xc0ffee)
				c.WriteTo(out, from)
			case n >= 98 && binary.BigEndian.Uint64(b) == 0xc0ffee && binary.BigEndian.Uint32(b[8:]) == actionAnnounce:
				announces.Add(1)
				out := binary.BigEndian.AppendUint32(nil, actionAnnounce)
				switch string(b[36:56]) {
				case "-BM0001-000000000007":
					continue
				case "-BM0001-000000000013":
					out = binary.BigEndian.AppendUint32(nil, actionError)
					out = append(out, b[12:16]...)
					out = append(out, "not today"...)
				default:
					out = append(out, b[12:16]...)
					out = append(out, make([]byte, 12)...) // interval, leechers, seeders; no peers
				}
				c.WriteTo(out, from)
			default:
				t.Errorf("unexpected datagram %x", b)
			}
		}
	}()
	return c.LocalAddr().String(), announces
}

func TestUDP(t *testing.T) {
	for _, mmsg := range []bool{true, false} {
		t.Run(fmt.Sprintf("mmsg=%v", mmsg), func(t *testing.T) {
			addr, announces := udpTracker(t)
			o := testOptions(t, "udp://"+addr, func(o *options) { o.mmsg = mmsg })
			got := loadPhase(o)
			if got.ok != 98 || got.failed != 1 || got.errors != 1 || announces.Load() != 100 {
				t.Errorf("ok %d, failed %d, errors %d (%v), tracker saw %d; want 98, 1, 1, 100", got.ok, got.failed, got.errors, got.firstErr, announces.Load())
			}
			if got.bytes != 98*20+1*17 {
				t.Errorf("%d bytes of answers, want %d", got.bytes, 98*20+17)
			}
		})
	}
}

func TestTimedPhaseCycles(t *testing.T) {
	addr, announces := udpTracker(t)
	o := testOptions(t, "udp://"+addr, func(o *options) { o.peers = 20; o.conns = 1 })
	got := run(o, &phase{peers: int64(o.peers), deadline: time.Now().Add(300 * time.Millisecond)})
	if announces.Load() <= 20 || got.ok == 0 {
		t.Errorf("%d announces, %d answered, in 300ms over 20 peers: the timed phase should cycle", announces.Load(), got.ok)
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		target string
		mod    func(o *options)
		err    string // "" for none
	}{
		{"http://127.0.0.1:6881/announce", nil, ""},
		{"http://localhost:6881", nil, ""},
		{"udp://[::1]:6881", nil, ""},
		{"http://127.0.0.2:6881/abcdef/announce?x=1", nil, ""},
		{"", nil, "-target is required"},
		{"http://10.0.0.1:6881/announce", nil, "not a loopback address"},
		{"udp://[2001:db8::1]:6881", nil, "not a loopback address"},
		{"http://127.0.0.1/announce", nil, "needs a port"},
		{"https://127.0.0.1:443/announce", nil, "scheme must be http or udp"},
		{"udp://127.0.0.1:6881", func(o *options) { o.close = true }, "-close applies to HTTP"},
		{"http://127.0.0.1:6881", func(o *options) { o.peers = 0 }, "-peers 0"},
		{"http://127.0.0.1:6881", func(o *options) { o.conns = maxConns + 1 }, "-conns"},
		{"http://127.0.0.1:6881", func(o *options) { o.timeout = 0 }, "-timeout"},
		{"udp://127.0.0.1:6881", func(o *options) { o.lost = 0 }, "-lost"},
	} {
		o := &options{peers: 10, torrents: 10, window: 1, numwant: 50, timeout: time.Second, lost: time.Second}
		if tc.mod != nil {
			tc.mod(o)
		}
		err := o.check(tc.target, time.Second, time.Second)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("check(%q) = %v, want %q", tc.target, err, tc.err)
		}
	}
}

func TestAppendRequest(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:6881/announce")
	w := newHTTPWorker(&options{target: u, torrents: 20000, numwant: 50, close: true})
	got := string(w.appendRequest(nil, 1))
	want := "GET /announce?info_hash=%43%95%F2%60%11%BD%74%5A%2C%D3%C7%8E%00%E9%D3%F2%01%92%CD%D2" +
		"&peer_id=-BM0001-000000000001&port=1025&uploaded=1024&downloaded=16&left=0&compact=1&numwant=50 HTTP/1.1\r\n" +
		"Host: 127.0.0.1:6881\r\nConnection: close\r\n\r\n"
	if got != want {
		t.Errorf("request 1:\n%q\nwant\n%q", got, want)
	}
}
