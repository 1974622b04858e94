//go:build soak

// Package soak runs the daemon for a long while under a steady mix of
// load and checks that it neither fails nor leaks: `make soak` (about ten
// minutes; SOAK_DURATION=2m make soak for a shorter run). It is not part of
// `make test`.
//
// The daemon is the real binary, built from this tree and run as a child
// process with a short announce interval, so that expiry runs many times.
// Load comes from a few keep-alive clients behind a "trusted proxy"
// (loopback, with X-Forwarded-For), so that thousands of peers each have
// their own address, IPv4 and IPv6, and their own rate-limit bucket:
//
//   - announces with churn: peers join (started), re-announce, complete,
//     leave (stopped) or go silent and expire;
//   - scrapes of one to five torrents;
//   - bad requests, each with the answer it must get: missing and
//     malformed parameters (a failure reason), too many scrape hashes and
//     an over-long request line (414), an unknown path (404), and one
//     abusive address over its rate limit (a failure with retry in).
//
// At the end every request that should have succeeded did; once the load
// stops and every peer has expired, the Go heap (after a collection),
// the goroutines and the open file descriptors are within 10% of their
// level at the start, and resident memory did not grow from the middle of
// the run to its end.
package soak

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/prometheus/common/expfmt"
)

const (
	announceInterval = 5 * time.Second // peers expire 10s after their last announce
	peers            = 4000
	torrents         = 200
	workers          = 4
	perWorkerRate    = 100 // requests per second per worker
	abuser           = "192.0.2.250"
)

// figures are one reading of the daemon's health.
type figures struct {
	heap, goroutines, fds, rss float64
}

func (f figures) String() string {
	return fmt.Sprintf("heap %.2f MiB, %v goroutines, %v fds, RSS %.1f MiB", f.heap/(1<<20), f.goroutines, f.fds, f.rss/(1<<20))
}

func TestSoak(t *testing.T) {
	duration := 10 * time.Minute
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SOAK_DURATION=%q: %v", v, err)
		}
		duration = d
	}
	d := startDaemon(t)

	// Warm up the lazily made parts (the rate limiter's table, the
	// metrics registry, the pools), then take the starting figures.
	l := newLoad(d, 0)
	for i := range 50 {
		l.announce(i%peers, "started")
	}
	for i := range 50 {
		l.announce(i%peers, "stopped")
	}
	l.client.CloseIdleConnections()
	time.Sleep(time.Second)
	start := d.figures(t, true)
	t.Logf("start: %v", start)

	// The load, with RSS sampled every two seconds.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	loads := make([]*load, workers)
	for w := range workers {
		loads[w] = newLoad(d, w)
		wg.Go(func() { loads[w].run(stop) })
	}
	type sample struct {
		at  time.Duration
		rss float64
	}
	var samples []sample
	began := time.Now()
	for tick := time.NewTicker(2 * time.Second); time.Since(began) < duration; <-tick.C {
		samples = append(samples, sample{time.Since(began), d.rss(t)})
	}
	close(stop)
	wg.Wait()
	ran := time.Since(began)
	rssMid, rssEnd, rssMax2 := 0.0, samples[len(samples)-1].rss, 0.0
	for _, s := range samples {
		if s.at <= ran/2 {
			rssMid = s.rss
		} else {
			rssMax2 = max(rssMax2, s.rss)
		}
	}
	for _, l := range loads {
		l.client.CloseIdleConnections()
	}

	// Totals, and every failure that should not have been.
	var total counts
	for _, l := range loads {
		total.add(&l.counts)
	}
	t.Logf("ran %v: %d requests (%.0f/s): %d announces (%d joined, %d left, %d went silent), %d scrapes, %d bad requests answered as they must be, %d over the rate limit refused",
		ran.Round(time.Second), total.requests, float64(total.requests)/ran.Seconds(), total.announces, total.joined, total.left, total.silent,
		total.scrapes, total.bad, total.limited)
	for _, l := range loads {
		for _, f := range l.failures {
			t.Errorf("failed: %s", f)
		}
	}
	if total.failed > 0 {
		t.Errorf("%d requests failed that should have succeeded (up to 20 per worker shown)", total.failed)
	}
	if total.limited == 0 {
		t.Error("the abusive address was never refused: the rate limit did not apply")
	}

	// Every peer expires: the swarms empty.
	wait := time.Now().Add(4 * announceInterval * 2)
	var left float64
	for time.Now().Before(wait) {
		if left = d.metric(t, "chihaya_peers") + d.metric(t, "chihaya_torrents"); left == 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if left != 0 {
		t.Errorf("%v peers and torrents left after every peer's lifetime", left)
	}
	reaped := d.metric(t, "chihaya_peer_events_total", "event", "reaped")
	time.Sleep(time.Second)
	end := d.figures(t, true)
	t.Logf("end, after every peer expired (%v peers reaped by about %d expiry passes): %v",
		reaped, int(time.Since(began)/(announceInterval/2)), end) // a pass every quarter lifetime (2 × announce)
	t.Logf("RSS: %.1f MiB at the start, %.1f MiB at mid-run, %.1f MiB at most in the second half, %.1f MiB at the end of the load, %.1f MiB after expiry",
		start.rss/(1<<20), rssMid/(1<<20), rssMax2/(1<<20), rssEnd/(1<<20), end.rss/(1<<20))
	t.Logf("ratios, end/start: heap %.3f, goroutines %.3f, fds %.3f; RSS end of load/mid-run %.3f",
		end.heap/start.heap, end.goroutines/start.goroutines, end.fds/start.fds, rssEnd/rssMid)

	for _, c := range []struct {
		name       string
		start, end float64
	}{{"Go heap", start.heap, end.heap}, {"goroutines", start.goroutines, end.goroutines}, {"open fds", start.fds, end.fds}} {
		if c.end > c.start*1.1 {
			t.Errorf("%s: %v at the start, %v at the end: more than 10%% above", c.name, c.start, c.end)
		}
	}
	// RSS may move by the allocator's page-sized steps; growth beyond
	// that, from the middle of the run to its end, is a leak.
	if rssEnd > rssMid*1.05 {
		t.Errorf("RSS grew from %.1f MiB at mid-run to %.1f MiB at the end of the load", rssMid/(1<<20), rssEnd/(1<<20))
	}
	if reaped == 0 {
		t.Error("no peer was ever reaped: expiry did not run")
	}
}

// daemon is the tracker under test, a child process.
type daemon struct {
	cmd           *exec.Cmd
	public, admin string // host:port
	log           string
	http          *http.Client
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startDaemon(t *testing.T) *daemon {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "chihaya")
	build := exec.Command("go", "build", "-o", bin, "github.com/chihaya/chihaya/cmd/chihaya")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the daemon: %v\n%s", err, out)
	}
	d := &daemon{public: freePort(t), admin: freePort(t), log: filepath.Join(dir, "chihaya.log"), http: &http.Client{Timeout: 30 * time.Second}}
	cfg := map[string]any{
		"addr":            d.public,
		"admin_addr":      d.admin,
		"udp_addr":        "",
		"announce":        announceInterval.String(),
		"min_announce":    (announceInterval / 2).String(),
		"trusted_proxies": []string{"127.0.0.1/32"},
		"real_ip_header":  "X-Forwarded-For",
		"rate_limit":      map[string]any{"requests_per_second": 5, "burst": 20},
		"debug_pprof":     true, // its heap profile's ?gc=1 collects before the heap is measured
	}
	raw, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(bin, "-config", cfgPath)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- d.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the daemon exited with %v", err)
			}
		case <-time.After(20 * time.Second):
			d.cmd.Process.Kill()
			t.Error("the daemon did not stop within 20s of SIGINT")
		}
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(d.log); err == nil {
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("the daemon's log ends:\n%s", b)
			}
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := d.http.Get("http://" + d.admin + "/check"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon did not answer /check within 30s")
		}
	}
}

// figures reads the daemon's health; with gc, after two collections.
func (d *daemon) figures(t *testing.T, gc bool) figures {
	t.Helper()
	if gc {
		for range 2 {
			resp, err := d.http.Get("http://" + d.admin + "/debug/pprof/heap?gc=1")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	return figures{
		heap:       d.metric(t, "go_memstats_heap_alloc_bytes"),
		goroutines: d.metric(t, "go_goroutines"),
		fds:        float64(len(fds)),
		rss:        d.rss(t),
	}
}

// rss is the daemon's resident memory, from /proc.
func (d *daemon) rss(t *testing.T) float64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb * 1024
		}
	}
	t.Fatal("no VmRSS in /proc/<pid>/status")
	return 0
}

// metric is the sum of name's samples in /metrics whose label (if given)
// has the value given.
func (d *daemon) metric(t *testing.T, name string, label ...string) float64 {
	t.Helper()
	resp, err := d.http.Get("http://" + d.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p expfmt.TextParser
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	mf, ok := mfs[name]
	if !ok {
		t.Fatalf("/metrics has no %s", name)
	}
	sum := 0.0
next:
	for _, m := range mf.Metric {
		if len(label) == 2 {
			for _, l := range m.Label {
				if l.GetName() == label[0] && l.GetValue() != label[1] {
					continue next
				}
			}
		}
		switch {
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		}
	}
	return sum
}

// counts are a load's tallies.
type counts struct {
	requests, announces, joined, left, silent, scrapes, bad, limited, failed int
}

func (c *counts) add(o *counts) {
	c.requests += o.requests
	c.announces += o.announces
	c.joined += o.joined
	c.left += o.left
	c.silent += o.silent
	c.scrapes += o.scrapes
	c.bad += o.bad
	c.limited += o.limited
	c.failed += o.failed
}

// load is one client: a keep-alive connection's worth of requests, over
// the peers of its share (peer % workers == its number).
type load struct {
	d        *daemon
	n        int
	client   *http.Client
	rng      *rand.Rand
	joined   map[int]bool
	counts   counts
	failures []string
	bads     atomic.Uint64
}

func newLoad(d *daemon, n int) *load {
	return &load{
		d:      d,
		n:      n,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2}},
		rng:    rand.New(rand.NewPCG(uint64(n), 42)),
		joined: map[int]bool{},
	}
}

// addr is peer i's address: IPv4 for even i, IPv6 (its own /64) for odd.
func addr(i int) string {
	if i%2 == 0 {
		return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	}
	return fmt.Sprintf("2001:db8:%x:%x::1", i>>16, i&0xffff)
}

func infoHash(n int) string { return fmt.Sprintf("%-20s", fmt.Sprintf("soak-%d", n)) }

func (l *load) fail(format string, args ...any) {
	l.counts.failed++
	if len(l.failures) < 20 {
		l.failures = append(l.failures, fmt.Sprintf(format, args...))
	}
}

// get sends one request as from, and returns the status and body.
func (l *load) get(from, target string) (int, []byte, error) {
	req, err := http.NewRequest("GET", "http://"+l.d.public+target, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Forwarded-For", from)
	l.counts.requests++
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// answer decodes a 200 answer's bencoded dictionary.
func answer(status int, body []byte, err error) (map[string]any, error) {
	if err != nil {
		return nil, err
	}
	if status != 200 {
		return nil, fmt.Errorf("status %d: %q", status, body)
	}
	var m map[string]any
	if err := bencode.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("answer %q: %v", body, err)
	}
	return m, nil
}

func (l *load) announce(peer int, event string) {
	v := url.Values{}
	v.Set("info_hash", infoHash(peer%torrents))
	v.Set("peer_id", fmt.Sprintf("-SK0001-%012d", peer))
	v.Set("port", strconv.Itoa(1024+peer%60000))
	v.Set("uploaded", "0")
	v.Set("downloaded", "0")
	left := "1000"
	if event == "completed" || peer%3 == 0 {
		left = "0"
	}
	v.Set("left", left)
	v.Set("compact", "1")
	if event != "" {
		v.Set("event", event)
	}
	l.counts.announces++
	m, err := answer(l.get(addr(peer), "/announce?"+v.Encode()))
	switch {
	case err != nil:
		l.fail("announce %s of peer %d: %v", event, peer, err)
	case m["failure reason"] != nil:
		l.fail("announce %s of peer %d: failure %q", event, peer, m["failure reason"])
	case m["interval"] == nil:
		l.fail("announce %s of peer %d: no interval in %v", event, peer, m)
	}
}

func (l *load) scrape() {
	q := ""
	for range 1 + l.rng.IntN(5) {
		q += "&info_hash=" + url.QueryEscape(infoHash(l.rng.IntN(torrents)))
	}
	l.counts.scrapes++
	from := fmt.Sprintf("10.200.%d.%d", l.n, l.rng.IntN(250))
	m, err := answer(l.get(from, "/scrape?"+q[1:]))
	switch {
	case err != nil:
		l.fail("scrape: %v", err)
	case m["failure reason"] != nil || m["files"] == nil:
		l.fail("scrape: %v", m)
	}
}

// bad sends the next bad request and checks its answer.
func (l *load) bad() {
	from := fmt.Sprintf("10.201.%d.%d", l.n, l.rng.IntN(250))
	k := l.bads.Add(1)
	var status int
	var body []byte
	var err error
	want, wantStatus := "", 200
	switch k % 6 {
	case 0:
		status, body, err = l.get(from, "/announce?info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=bbbbbbbbbbbbbbbbbbbb&uploaded=0&downloaded=0&left=0")
		want = "missing port"
	case 1:
		status, body, err = l.get(from, "/announce?info_hash=%zz")
		want = "bad % escape"
	case 2:
		status, body, err = l.get(from, "/scrape?"+strings.Repeat("info_hash=aaaaaaaaaaaaaaaaaaaa&", 65))
		want, wantStatus = "Request-URI Too Long", 414
	case 3:
		status, body, err = l.get(from, "/announce?key="+strings.Repeat("x", 9000))
		want, wantStatus = "Request-URI Too Long", 414
	case 4:
		status, body, err = l.get(from, "/stats")
		want, wantStatus = "", 404
	case 5:
		// The abuser: a burst well over its limit; some are refused.
		for range 10 {
			m, err := answer(l.get(abuser, "/scrape?info_hash=aaaaaaaaaaaaaaaaaaaa"))
			if err != nil {
				l.fail("abuser's scrape: %v", err)
				return
			}
			if r, _ := m["failure reason"].(string); r != "" {
				if n, ok := m["retry in"].(int64); !ok || n < 1 {
					l.fail("abuser refused without retry in: %v", m)
				}
				l.counts.limited++
			}
		}
		return
	}
	switch {
	case err != nil:
		l.fail("bad request %d: %v", k%6, err)
	case status != wantStatus || !bytes.Contains(body, []byte(want)):
		l.fail("bad request %d: %d %q, want %d and %q", k%6, status, body, wantStatus, want)
	default:
		l.counts.bad++
	}
}

// run sends requests at perWorkerRate until stop: announces with churn
// (70%), scrapes (15%) and bad requests (15%).
func (l *load) run(stop <-chan struct{}) {
	tick := time.NewTicker(time.Second / perWorkerRate)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		switch r := l.rng.IntN(100); {
		case r < 70:
			peer := l.rng.IntN(peers/workers)*workers + l.n
			switch c := l.rng.IntN(100); {
			case !l.joined[peer]:
				l.announce(peer, "started")
				l.joined[peer] = true
				l.counts.joined++
			case c < 8:
				l.announce(peer, "stopped")
				delete(l.joined, peer)
				l.counts.left++
			case c < 16: // goes silent: expires, unless it comes back first
				delete(l.joined, peer)
				l.counts.silent++
			case c < 20:
				l.announce(peer, "completed")
			default:
				l.announce(peer, "")
			}
		case r < 85:
			l.scrape()
		default:
			l.bad()
		}
	}
}
