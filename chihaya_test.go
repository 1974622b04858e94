package chihaya_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	httpTracker "github.com/anacrolix/torrent/tracker/http"
	"github.com/anacrolix/torrent/tracker/shared"
	"github.com/anacrolix/torrent/types/infohash"
	"github.com/chihaya/chihaya"
	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/tracker"
)

// start runs the daemon in-process on loopback ports and stops it when the
// test ends, checking that it shut down cleanly.
func start(t *testing.T, mutate func(*config.Config)) (public, admin string) {
	t.Helper()
	cfg := config.Default()
	cfg.Addr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() {
		done <- chihaya.Run(ctx, cfg, func(p, a net.Addr) {
			addrs := [2]string{p.String()}
			if a != nil {
				addrs[1] = a.String()
			}
			ready <- addrs
		})
	}()
	select {
	case addrs := <-ready:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run returned %v after shutdown", err)
			}
		})
		return addrs[0], addrs[1]
	case err := <-done:
		cancel()
		t.Fatalf("Run: %v", err)
	}
	return "", ""
}

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
	if l, err := net.Listen("tcp", "[::1]:0"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI must have an IPv6 loopback: %v", err)
		}
		t.Skipf("this machine has no IPv6 loopback: %v", err)
	} else {
		l.Close()
	}
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

func rawGet(t *testing.T, addr, request string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, request)
	b, _ := io.ReadAll(c)
	return string(b)
}

func decodeBody(t *testing.T, resp string) map[string]any {
	t.Helper()
	_, body, ok := strings.Cut(resp, "\r\n\r\n")
	if !ok || !strings.HasPrefix(resp, "HTTP/1.") || !strings.Contains(resp, " 200 OK\r\n") {
		t.Fatalf("response %q", resp)
	}
	var m map[string]any
	if err := bencode.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	return m
}

const announceTarget = "/announce?info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=-CD0303-aaaaaaaaaaaa&port=6882&uploaded=0&downloaded=0&left=5"

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
		if !strings.HasPrefix(resp, "HTTP/1.1 431") {
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
		cfg := config.Default()
		cfg.Addr, cfg.AdminAddr = "127.0.0.1:0", ""
		tc.mutate(cfg)
		err := chihaya.Run(context.Background(), cfg, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
		if tc.want[0] == 't' && !errors.Is(err, tracker.ErrUnknownDriver) && strings.Contains(tc.want, "unknown") {
			t.Errorf("%v does not wrap tracker.ErrUnknownDriver", err)
		}
	}
}

// TestBinarySignals builds the command and checks SIGTERM and SIGINT each
// end it cleanly, and that a bad config stops it with the key named.
func TestBinarySignals(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "chihaya")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/chihaya").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.json")
	os.WriteFile(cfgPath, []byte(`{"addr": "127.0.0.1:0", "admin_addr": "127.0.0.1:0"}`), 0o644)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(bin, "-config", cfgPath)
		var stderr lockedBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		serving := regexp.MustCompile(`serving announces on (127\.0\.0\.1:\d+)`)
		deadline := time.Now().Add(10 * time.Second)
		var addr string
		for addr == "" && time.Now().Before(deadline) {
			if m := serving.FindStringSubmatch(stderr.String()); m != nil {
				addr = m[1]
			}
			time.Sleep(20 * time.Millisecond)
		}
		if addr == "" {
			cmd.Process.Kill()
			t.Fatalf("never served: %s", stderr.String())
		}
		decodeBody(t, rawGet(t, addr, "GET "+announceTarget+" HTTP/1.0\r\n\r\n"))
		cmd.Process.Signal(sig)
		errc := make(chan error, 1)
		go func() { errc <- cmd.Wait() }()
		select {
		case err := <-errc:
			if err != nil || !strings.Contains(stderr.String(), "shut down cleanly") {
				t.Errorf("%v: exit %v, log:\n%s", sig, err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%v: still running after 10s", sig)
		}
	}

	os.WriteFile(cfgPath, []byte(`{"announce": "half an hour"}`), 0o644)
	out, err := exec.Command(bin, "-config", cfgPath).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !bytes.Contains(out, []byte("announce:")) {
		t.Errorf("bad config: %v, output %s", err, out)
	}
}

// lockedBuffer is a bytes.Buffer safe for exec.Cmd's writer goroutine and
// the test reading it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
