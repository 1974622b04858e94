package chihaya

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	httpTracker "github.com/anacrolix/torrent/tracker/http"
	"github.com/anacrolix/torrent/tracker/shared"
	"github.com/anacrolix/torrent/types/infohash"
	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/tracker"
)

func TestAnacrolixClient(t *testing.T) {
	addr, _ := start(t, nil)
	u, _ := url.Parse("http://" + addr + "/announce")
	cl := httpTracker.NewClient(u, httpTracker.NewClientOpts{})
	ctx := context.Background()
	ih1, ih2 := infohash.T{1, 2, 3}, infohash.T{4, 5, 6}

	announce := func(ih infohash.T, id string, port uint16, left int64, ev shared.AnnounceEvent) httpTracker.AnnounceResponse {
		t.Helper()
		req := httpTracker.AnnounceRequest{InfoHash: ih, Left: left, Event: ev, Port: port, NumWant: -1, Key: -12345}
		copy(req.PeerId[:], id)
		resp, err := cl.Announce(ctx, req, httpTracker.AnnounceOpt{})
		if err != nil {
			t.Fatalf("announce %s: %v", id, err)
		}
		return resp
	}
	r := announce(ih1, "-GO0001-seeder000001", 6001, 0, shared.Started)
	if r.Seeders != 1 || r.Leechers != 0 || len(r.Peers) != 0 || r.Interval != 1800 {
		t.Errorf("seeder's announce: %+v", r)
	}
	r = announce(ih1, "-GO0001-leecher00001", 6002, 1000, shared.Started)
	if r.Seeders != 1 || r.Leechers != 1 || len(r.Peers) != 1 {
		t.Fatalf("leecher's announce: %+v", r)
	}
	if p := r.Peers[0]; !p.IP.Equal(net.IPv4(127, 0, 0, 1)) || p.Port != 6001 {
		t.Errorf("leecher was given %v, want 127.0.0.1:6001", p)
	}
	announce(ih1, "-GO0001-leecher00001", 6002, 0, shared.Completed)
	announce(ih2, "-GO0001-leecher00002", 6003, 1000, shared.Started)

	sr, err := cl.Scrape(ctx, []infohash.T{ih1, ih2, {9}})
	if err != nil {
		t.Fatal(err)
	}
	if len(sr) != 3 {
		t.Fatalf("scrape of 3 hashes gave %d results", len(sr))
	}
	for i, want := range []struct{ seeders, completed, leechers int32 }{{2, 1, 0}, {0, 0, 1}, {0, 0, 0}} {
		if got := sr[i]; got.Seeders != want.seeders || got.Completed != want.completed || got.Leechers != want.leechers {
			t.Errorf("scrape result %d: %+v, want %+v", i, got, want)
		}
	}

	announce(ih1, "-GO0001-seeder000001", 6001, 0, shared.Stopped)
	if r := announce(ih1, "-GO0001-leecher00001", 6002, 0, shared.None); r.Seeders != 1 {
		t.Errorf("after a stop: %+v", r)
	}
}

// TestDualStackListener checks that ":PORT" serves IPv4 and IPv6 clients
// and that each is seen with its own family. Only loopback addresses are
// ever dialled.
func TestDualStackListener(t *testing.T) {
	needIPv6Loopback(t)
	addr, _ := start(t, func(c *config.Config) { c.Addr = ":0" })
	_, port, _ := net.SplitHostPort(addr)
	get := func(host, id string) map[string]any {
		t.Helper()
		resp := rawGet(t, net.JoinHostPort(host, port), "GET /announce?info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id="+id+
			"&port=7000&uploaded=0&downloaded=0&left=5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		return decodeBody(t, resp)
	}
	get("127.0.0.1", "-TT0001-000000000004")
	m := get("::1", "-TT0001-000000000006")
	if m["peers"] != "\x7f\x00\x00\x01\x1b\x58" {
		t.Errorf("IPv6 client's peers %q, want the IPv4 one", m["peers"])
	}
	m = get("127.0.0.1", "-TT0001-000000000004")
	if m["peers6"] != strings.Repeat("\x00", 15)+"\x01\x1b\x58" {
		t.Errorf("IPv4 client's peers6 %q, want ::1 port 7000", m["peers6"])
	}
}

func TestHTTPConnections(t *testing.T) {
	addr, _ := start(t, func(c *config.Config) {
		c.ReadTimeout.Duration = 300 * time.Millisecond
	})

	t.Run("HTTP10WithoutHost", func(t *testing.T) { // as ctorrent sends it
		resp := rawGet(t, addr, "GET "+announceTarget+" HTTP/1.0\r\nUser-Agent: Enhanced-CTorrent/dnh3.3.2\r\n\r\n")
		if m := decodeBody(t, resp); m["incomplete"] != int64(1) {
			t.Errorf("answer %v", m)
		}
	})

	t.Run("KeepAliveThenClose", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		for i, conn := range []string{"keep-alive", "close"} {
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: %s\r\n\r\n", announceTarget, conn)
			status, _ := br.ReadString('\n')
			if !strings.HasPrefix(status, "HTTP/1.1 200") {
				t.Fatalf("request %d: status %q", i, status)
			}
			var length int
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				fmt.Sscanf(line, "Content-Length: %d", &length)
				if line == "\r\n" {
					break
				}
			}
			if _, err := io.ReadFull(br, make([]byte, length)); err != nil {
				t.Fatalf("request %d body: %v", i, err)
			}
		}
		if n, err := br.ReadByte(); err != io.EOF {
			t.Errorf("after Connection: close the server sent %q, %v; want EOF", n, err)
		}
	})

	t.Run("OversizedRequestLine", func(t *testing.T) {
		resp := rawGet(t, addr, "GET /announce?x="+strings.Repeat("a", 20000)+" HTTP/1.1\r\nHost: t\r\n\r\n")
		if !strings.HasPrefix(resp, "HTTP/1.1 414") {
			t.Errorf("a 20 kB request line got %.40q", resp)
		}
	})

	t.Run("GarbageThenService", func(t *testing.T) {
		for _, junk := range []string{"\x00\x01\x02\xff\r\n\r\n", "GET\r\n\r\n", "HELLO / SMTP/9\r\n\r\n", strings.Repeat("\xfe", 5000)} {
			resp := rawGet(t, addr, junk)
			if resp != "" && !strings.HasPrefix(resp, "HTTP/1.1 400") {
				t.Errorf("junk %.20q answered %.40q", junk, resp)
			}
		}
		decodeBody(t, rawGet(t, addr, "GET "+announceTarget+" HTTP/1.0\r\n\r\n"))
	})

	t.Run("SlowClientIsCutOff", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /announce HTTP/1.1\r\nHost: t\r\n") // and never the end of the headers
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		io.ReadAll(c)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("a stalled request held its connection for %v", d)
		}
	})

	t.Run("UnknownPathIs404", func(t *testing.T) {
		if resp := rawGet(t, addr, "GET /nothing HTTP/1.0\r\n\r\n"); !strings.HasPrefix(resp, "HTTP/1.0 404") {
			t.Errorf("got %.40q", resp)
		}
	})
}

func TestSilentPeersExpire(t *testing.T) {
	addr, _ := start(t, func(c *config.Config) {
		c.Announce.Duration, c.MinAnnounce.Duration = 200*time.Millisecond, 100*time.Millisecond
	})
	decodeBody(t, rawGet(t, addr, "GET "+announceTarget+" HTTP/1.0\r\n\r\n"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := decodeBody(t, rawGet(t, addr, "GET /scrape?info_hash=aaaaaaaaaaaaaaaaaaaa HTTP/1.0\r\n\r\n"))
		f := m["files"].(map[string]any)["aaaaaaaaaaaaaaaaaaaa"].(map[string]any)
		if f["incomplete"] == int64(0) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("peer still there after 5s with a lifetime of 400ms: %v", f)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAdminCheck(t *testing.T) {
	_, admin := start(t, nil)
	if resp := rawGet(t, admin, "GET /check HTTP/1.0\r\n\r\n"); !strings.HasPrefix(resp, "HTTP/1.0 200") || !strings.HasSuffix(resp, "STILL-ALIVE") {
		t.Errorf("/check: %q", resp)
	}
	// Disabled admin listener: nothing but the public one starts.
	pub, none := start(t, func(c *config.Config) { c.AdminAddr = "" })
	if none != "" || pub == "" {
		t.Errorf("admin_addr \"\": listeners %q %q", pub, none)
	}
}

func TestRunRefusesUnknownDrivers(t *testing.T) {
	for _, tc := range []struct {
		mutate func(*config.Config)
		want   string
	}{
		{func(c *config.Config) { c.Tracker.Name = "redis9" }, `tracker.driver: unknown driver "redis9" (forgotten import?)`},
		{func(c *config.Config) { c.Backend.Name = "mysql9" }, `backend.driver: unknown driver "mysql9" (forgotten import?)`},
		{func(c *config.Config) { c.Tracker.Params = json.RawMessage(`{"shards": 3}`) }, `tracker.params: shards`},
		{func(c *config.Config) { c.Addr = "127.0.0.1:99999" }, `addr:`},
		{func(c *config.Config) {
			c.Private, c.TrackerSecret, c.AdminAddr = true, strings.Repeat("s", 32), "127.0.0.1:0"
		}, `backend.driver: "noop" cannot serve a private tracker`},
	} {
		cfg := loopbackConfig()
		cfg.AdminAddr = ""
		tc.mutate(cfg)
		err := Run(context.Background(), cfg, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
		if tc.want[0] == 't' && !errors.Is(err, tracker.ErrUnknownDriver) && strings.Contains(tc.want, "unknown") {
			t.Errorf("%v does not wrap tracker.ErrUnknownDriver", err)
		}
	}
}

func TestGCPercent(t *testing.T) {
	for _, tc := range []struct {
		percent int
		live    uint64
		want    int
	}{
		{25, 0, 25},          // nothing measured yet
		{25, 50 << 20, 25},   // a large heap: 25% is 12.5 MiB, above the floor
		{25, 2 << 20, 200},   // a small one: 4 MiB of headroom, not 0.5
		{25, 16 << 10, 1000}, // an empty one: capped
		{100, 2 << 20, 200},  // the floor applies at any percentage
		{300, 2 << 20, 300},  // and never lowers it
	} {
		if got := gcPercent(tc.percent, tc.live); got != tc.want {
			t.Errorf("gcPercent(%d, %d) = %d, want %d", tc.percent, tc.live, got, tc.want)
		}
	}
}
