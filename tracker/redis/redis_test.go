package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"

	"github.com/chihaya/chihaya/internal/redistest"
	"github.com/chihaya/chihaya/tracker"
	"github.com/chihaya/chihaya/tracker/trackertest"
	"github.com/prometheus/client_golang/prometheus"
)

var prefixes atomic.Int64

// opener returns trackertest's open on the servers at addrs: each store
// gets a key prefix of its own, so it starts empty.
func opener(addrs ...string) func(t *testing.T, o tracker.Options) tracker.Pool {
	return func(t *testing.T, o tracker.Options) tracker.Pool {
		t.Helper()
		return openStore(t, o, nil, addrs...)
	}
}

func TestConformance(t *testing.T) {
	t.Run("Server", func(t *testing.T) {
		s := redistest.Start(t)
		trackertest.Run(t, opener(s.Addr))
	})
	t.Run("Cluster", func(t *testing.T) {
		c := redistest.StartCluster(t)
		trackertest.Run(t, opener(c.Addrs()...))
	})
}

// openStore opens a store on the servers at addrs with the given parameters
// besides the address, and closes it when the test ends.
func openStore(t testing.TB, o tracker.Options, params map[string]any, addrs ...string) *Store {
	t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	if _, ok := params["key_prefix"]; !ok {
		params["key_prefix"] = fmt.Sprintf("t%d:", prefixes.Add(1))
	}
	if len(addrs) == 1 {
		params["addr"] = addrs[0]
	} else {
		params["addrs"] = addrs
	}
	o.Params, _ = json.Marshal(params)
	pool, err := tracker.Open("redis", o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { pool.Close() }) // a second Close is harmless
	return pool.(*Store)
}

func TestOpenParams(t *testing.T) {
	s := redistest.Start(t)
	dead := deadAddr(t)
	locked := redistest.Start(t)
	if _, err := locked.Do("CONFIG", "SET", "requirepass", "secret"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		params string
		err    string // empty: no error
	}{
		{`{"addr": "` + s.Addr + `"}`, ""},
		{`{"addr": "` + s.Addr + `", "db": 3, "pool_size": 4, "timeout": "250ms", "key_prefix": "x:"}`, ""},
		{`{"addr": "` + s.Addr + `", "key_prefix": ""}`, ""},
		{`{"addr": "` + s.Addr + `", "addrs": ["` + s.Addr + `"]}`, "addr and addrs: give one"},
		{`{"addr": "localhost"}`, `addr: "localhost" is not host:port`},
		{`{"addrs": ["` + s.Addr + `", "nowhere"]}`, `addrs[1]: "nowhere" is not host:port`},
		{`{"addrs": ["` + s.Addr + `"], "db": 1}`, "db: a Redis Cluster has database 0 only"},
		{`{"addr": "` + s.Addr + `", "db": -1}`, "db: -1 is negative"},
		{`{"addr": "` + s.Addr + `", "db": 99}`, "addr " + s.Addr + ":"},
		{`{"addr": "` + s.Addr + `", "pool_size": -1}`, "pool_size: -1 is negative"},
		{`{"addr": "` + s.Addr + `", "timeout": "-1s"}`, "timeout: -1s is negative"},
		{`{"addr": "` + s.Addr + `", "timeout": "soon"}`, "tracker.params: timeout"},
		{`{"addr": "` + s.Addr + `", "key_prefix": "a{b}:"}`, "key_prefix: \"a{b}:\" has a brace"},
		{`{"addr": "` + s.Addr + `", "adr": "x"}`, `unknown key "adr"`},
		{`{"addr": "` + dead + `", "timeout": "300ms"}`, "tracker.params: addr " + dead + ": "},
		{`{"addr": "` + locked.Addr + `"}`, "tracker.params: addr " + locked.Addr + ": NOAUTH"},
		{`{"addr": "` + locked.Addr + `", "password": "wrong"}`, "tracker.params: addr " + locked.Addr + ": WRONGPASS"},
		{`{"addr": "` + locked.Addr + `", "password": "secret"}`, ""},
	} {
		start := time.Now()
		pool, err := tracker.Open("redis", tracker.Options{Params: json.RawMessage(tc.params)})
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("%s: Open took %v", tc.params, took)
		}
		if tc.err == "" && err != nil {
			t.Errorf("%s: %v", tc.params, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: error %v, want one containing %q", tc.params, err, tc.err)
		}
		if err == nil {
			pool.Close()
		}
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestOpenRefusesAClusterNodeAsAddr(t *testing.T) {
	c := redistest.StartCluster(t)
	_, err := tracker.Open("redis", tracker.Options{Params: json.RawMessage(`{"addr": "` + c.Nodes[0].Addr + `"}`)})
	if err == nil || !strings.Contains(err.Error(), "is a node of a Redis Cluster: give the cluster's nodes as addrs") {
		t.Errorf("error %v", err)
	}
}

func announceTo(t *testing.T, s *Store, a *tracker.Announce, want int) (tracker.AnnounceResponse, error) {
	t.Helper()
	var r tracker.AnnounceResponse
	err := s.Announce(context.Background(), a, tracker.Update{Event: a.Event, Want: want}, &r)
	return r, err
}

// TestSharedSwarms: two stores on one Redis, as two trackers, see one
// set of swarms.
func TestSharedSwarms(t *testing.T) {
	srv := redistest.Start(t)
	params := map[string]any{"key_prefix": "shared:"}
	a := openStore(t, tracker.Options{}, params, srv.Addr)
	b := openStore(t, tracker.Options{}, params, srv.Addr)
	other := openStore(t, tracker.Options{}, map[string]any{"key_prefix": "other:"}, srv.Addr)
	h := trackertest.Hash(1)
	if _, err := announceTo(t, a, trackertest.Seeder(h, 1, "10.0.0.1"), 50); err != nil {
		t.Fatal(err)
	}
	r, err := announceTo(t, b, trackertest.Leecher(h, 2, "10.0.0.2"), 50)
	if err != nil || len(r.PeerList()) != 1 || r.PeerList()[0].Addr.String() != "10.0.0.1:1001" {
		t.Fatalf("B got %v, %v; want A's seeder", r.PeerList(), err)
	}
	out, err := a.Scrape(context.Background(), []bittorrent.InfoHash{h}, nil)
	if err != nil || out[0].Counts != (tracker.Counts{Complete: 1, Incomplete: 1}) {
		t.Errorf("A's scrape %+v, %v", out, err)
	}
	out, err = other.Scrape(context.Background(), []bittorrent.InfoHash{h}, nil)
	if err != nil || out[0].Counts != (tracker.Counts{}) {
		t.Errorf("another key_prefix sees %+v, %v", out, err)
	}
}

// A key_prefix of any length works: keys were once built in a fixed
// 128-byte buffer, and a prefix past 86 bytes panicked every announce.
func TestLongKeyPrefix(t *testing.T) {
	srv := redistest.Start(t)
	s := openStore(t, tracker.Options{}, map[string]any{"key_prefix": strings.Repeat("p", 300) + ":"}, srv.Addr)
	h := trackertest.Hash(1)
	if _, err := announceTo(t, s, trackertest.Seeder(h, 1, "10.0.0.1"), 50); err != nil {
		t.Fatal(err)
	}
	out, err := s.Scrape(context.Background(), []bittorrent.InfoHash{h}, nil)
	if err != nil || out[0].Counts != (tracker.Counts{Complete: 1}) {
		t.Errorf("scrape %+v, %v", out, err)
	}
}

// TestScriptsReloaded: a server that lost its scripts (restarted, SCRIPT
// FLUSH) gets them again; no call fails.
func TestScriptsReloaded(t *testing.T) {
	srv := redistest.Start(t)
	s := openStore(t, tracker.Options{}, nil, srv.Addr)
	h := trackertest.Hash(1)
	if _, err := announceTo(t, s, trackertest.Leecher(h, 1, "10.0.0.1"), 50); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Do("SCRIPT", "FLUSH"); err != nil {
		t.Fatal(err)
	}
	if _, err := announceTo(t, s, trackertest.Leecher(h, 2, "10.0.0.2"), 50); err != nil {
		t.Fatalf("announce after SCRIPT FLUSH: %v", err)
	}
	if _, err := srv.Do("SCRIPT", "FLUSH"); err != nil {
		t.Fatal(err)
	}
	p, err := s.Purge(context.Background(), time.Now().Add(2*time.Second), true)
	if err != nil || p.Peers[0] != 2 || p.Swarms != 1 {
		t.Fatalf("purge after SCRIPT FLUSH: %+v, %v", p, err)
	}
}

// TestTwoReapers: two trackers purging one Redis at once remove each
// expired peer once between them, and leave nothing behind.
func TestTwoReapers(t *testing.T) {
	srv := redistest.Start(t)
	params := map[string]any{"key_prefix": "reap:"}
	a := openStore(t, tracker.Options{}, params, srv.Addr)
	b := openStore(t, tracker.Options{}, params, srv.Addr)
	const swarms, perSwarm = 2000, 3
	old := time.Now().Add(-time.Hour)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := w; n < swarms; n += 8 {
				for p := range perSwarm {
					an := trackertest.Leecher(trackertest.Hash(n), p, "10.0.0.1")
					an.Time = old
					if _, err := announceTo(t, a, an, 0); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	// One swarm big enough to take several batches.
	big := trackertest.Hash(swarms)
	for p := range 2*purgeBatch + 10 {
		an := trackertest.Seeder(big, p, "2001:db8::1")
		an.Time = old
		announceTo(t, a, an, 0)
	}
	var pa, pb tracker.Purged
	var ea, eb error
	wg.Add(2)
	go func() { defer wg.Done(); pa, ea = a.Purge(context.Background(), time.Now(), true) }()
	go func() { defer wg.Done(); pb, eb = b.Purge(context.Background(), time.Now(), true) }()
	wg.Wait()
	if ea != nil || eb != nil {
		t.Fatal(ea, eb)
	}
	pa.Add(pb)
	if pa.Peers != [2]int{swarms * perSwarm, 2*purgeBatch + 10} || pa.Seeders[1] != 2*purgeBatch+10 || pa.Swarms != swarms+1 || len(pa.Emptied) != swarms+1 {
		t.Errorf("the reapers removed %v peers (%v seeders), %d swarms, emptied %d; want %d+%d peers, %d swarms",
			pa.Peers, pa.Seeders, pa.Swarms, len(pa.Emptied), swarms*perSwarm, 2*purgeBatch+10, swarms+1)
	}
	if keys, err := srv.Do("DBSIZE"); err != nil || keys != ":1" {
		t.Errorf("after the purge DBSIZE = %q, %v; want nothing left but the totals", keys, err)
	}
	if n, s, l, ok, err := a.Totals(context.Background()); !ok || err != nil || n != 0 || s != 0 || l != 0 {
		t.Errorf("after the purge totals %d swarms, %d seeders, %d leechers (%v, %v); want none", n, s, l, ok, err)
	}
}

// TestPausedServer: a Redis that stops answering (SIGSTOP) fails each
// announce within the timeout, without piling up goroutines, and the store
// recovers by itself when it answers again.
func TestPausedServer(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 200 * time.Millisecond
	s := openStore(t, tracker.Options{}, map[string]any{"timeout": "200ms", "pool_size": 4}, srv.Addr)
	h := trackertest.Hash(1)
	if _, err := announceTo(t, s, trackertest.Leecher(h, 0, "10.0.0.1"), 50); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	const clients, each = 32, 4
	var wg sync.WaitGroup
	var slowest atomic.Int64
	var failed atomic.Int32
	peak := 0
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range each {
				start := time.Now()
				_, err := announceTo(t, s, trackertest.Leecher(h, 1+c*each+k, "10.0.0.2"), 50)
				took := time.Since(start)
				if took > time.Duration(slowest.Load()) {
					slowest.Store(int64(took))
				}
				if err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	for range 10 {
		time.Sleep(timeout / 4)
		peak = max(peak, runtime.NumGoroutine())
	}
	wg.Wait()
	if n := failed.Load(); n != clients*each {
		t.Errorf("%d of %d announces to a stopped Redis failed, want all", n, clients*each)
	}
	// A second of slack for a busy shared machine's scheduler.
	if d := time.Duration(slowest.Load()); d > timeout+time.Second {
		t.Errorf("the slowest announce to a stopped Redis took %v, with a timeout of %v", d, timeout)
	}
	// Each client is a goroutine, and so, for a moment, is the expiry of
	// its context's deadline (time.AfterFunc): nothing else may be.
	if peak > before+2*clients+8 {
		t.Errorf("goroutines: %d before, %d with %d clients waiting on a stopped Redis", before, peak, clients)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := announceTo(t, s, trackertest.Leecher(h, 999, "10.0.0.3"), 50)
		if err == nil {
			if r.Incomplete < 2 {
				t.Errorf("after recovery: counts %+v", r.Counts)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing 5s after Redis continued: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before+4 {
		t.Errorf("goroutines: %d before the outage, %d after", before, after)
	}
}

// TestClusterNodeKilled: with one master of three gone, no announce
// hangs; once it is back the store serves every swarm again by itself.
func TestClusterNodeKilled(t *testing.T) {
	c := redistest.StartCluster(t)
	s := openStore(t, tracker.Options{}, map[string]any{"timeout": "300ms"}, c.Addrs()...)
	const swarms = 60
	for n := range swarms {
		if _, err := announceTo(t, s, trackertest.Leecher(trackertest.Hash(n), 1, "10.0.0.1"), 50); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Nodes[1].Kill(); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for n := range swarms {
		start := time.Now()
		_, err := announceTo(t, s, trackertest.Leecher(trackertest.Hash(n), 2, "10.0.0.2"), 50)
		if took := time.Since(start); took > time.Second {
			t.Fatalf("an announce with a master down took %v (timeout 300ms)", took)
		}
		if err != nil {
			failed++
		}
	}
	if failed == 0 {
		t.Error("no announce failed with a master down")
	}
	if err := c.Nodes[1].Restart(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitOK(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	deadline := time.Now().Add(20 * time.Second)
	for n := 0; n < swarms; {
		_, err := announceTo(t, s, trackertest.Leecher(trackertest.Hash(n), 9, "10.0.0.9"), 50)
		if err == nil {
			n++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("swarm %d still failing 20s after the node came back: %v", n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d of %d announces failed with a master down; every swarm was served %v after the cluster was ok again", failed, swarms, time.Since(back))
	if _, err := s.Purge(context.Background(), time.Now().Add(time.Hour), true); err != nil {
		t.Errorf("purge after the node came back: %v", err)
	}
	if err := s.Check(context.Background()); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// TestMemoryPerPeer loads 100,000 peers over 10,000 torrents, skewed as
// the benchmark's (../shared/bench/announce.lua: a few swarms of
// thousands, a long tail of small ones; 3 in 10 seeders), and checks that
// Redis holds each in at most 150 bytes (INFO's used_memory).
func TestMemoryPerPeer(t *testing.T) {
	srv := redistest.Start(t)
	// A generous timeout: this test measures memory, on a shared machine.
	s := openStore(t, tracker.Options{Peering: tracker.Peering{DualStacked: true}}, map[string]any{"timeout": "10s"}, srv.Addr)
	used := func() int {
		v, err := srv.Info("used_memory")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(v)
		return n
	}
	const peers, torrents = 100_000, 10_000
	before := used()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1 + w; i <= peers; i += 8 {
				u := math.Mod(float64(i)*0.6180339887498949, 1)
				k := int(u*u*torrents) + 1
				a := trackertest.Leecher(trackertest.Hash(k), i, fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
				if i%10 < 3 {
					a.Left = 0
				}
				if _, err := announceTo(t, s, a, 50); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	after := used()
	stored := 0
	hashes := make([]bittorrent.InfoHash, 0, 64)
	for k := 1; k <= torrents; k++ {
		hashes = append(hashes, trackertest.Hash(k))
		if len(hashes) == cap(hashes) || k == torrents {
			out, err := s.Scrape(context.Background(), hashes, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, sc := range out {
				stored += sc.Complete + sc.Incomplete
			}
			hashes = hashes[:0]
		}
	}
	if stored != peers {
		t.Fatalf("%d peers stored, want %d", stored, peers)
	}
	perPeer := float64(after-before) / peers
	t.Logf("used_memory %d -> %d bytes: %.1f bytes per peer", before, after, perPeer)
	if perPeer > 150 {
		t.Errorf("%.1f bytes of Redis memory per peer, want at most 150", perPeer)
	}
}

// TestClosed: a closed store answers at once, with an error.
func TestClosed(t *testing.T) {
	srv := redistest.Start(t)
	s := openStore(t, tracker.Options{}, nil, srv.Addr)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := announceTo(t, s, trackertest.Leecher(trackertest.Hash(1), 1, "10.0.0.1"), 50); err == nil {
		t.Error("a closed store took an announce")
	}
	if _, err := s.Scrape(context.Background(), []bittorrent.InfoHash{trackertest.Hash(1)}, nil); err == nil {
		t.Error("a closed store answered a scrape")
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("a closed store took %v to answer", took)
	}
}

// TestTotalsAndMetrics: the totals two trackers made through one server
// follow joins, role changes, stops and expiry; the store's metrics
// count round trips and errors and report the totals.
func TestTotalsAndMetrics(t *testing.T) {
	srv := redistest.Start(t)
	params := map[string]any{"key_prefix": "totals:"}
	a := openStore(t, tracker.Options{Peering: tracker.Peering{DualStacked: true}}, params, srv.Addr)
	b := openStore(t, tracker.Options{Peering: tracker.Peering{DualStacked: true}}, params, srv.Addr)
	want := func(what string, swarms, seeders, leechers int64) {
		t.Helper()
		n, s, l, ok, err := b.Totals(context.Background())
		if err != nil || !ok || n != swarms || s != seeders || l != leechers {
			t.Errorf("%s: totals %d swarms, %d seeders, %d leechers (%v, %v); want %d, %d, %d", what, n, s, l, ok, err, swarms, seeders, leechers)
		}
	}
	h1, h2 := trackertest.Hash(1), trackertest.Hash(2)
	announceTo(t, a, trackertest.Leecher(h1, 1, "10.0.0.1"), 0)
	announceTo(t, b, trackertest.Leecher(h1, 1, "2001:db8::1"), 0) // the same peer, dual-stacked
	announceTo(t, b, trackertest.Seeder(h2, 2, "10.0.0.2"), 0)
	want("joined", 2, 1, 1)
	done := trackertest.Seeder(h1, 1, "10.0.0.1")
	done.Event = bittorrent.Completed
	announceTo(t, a, done, 0)
	want("completed", 2, 2, 0)
	stop := trackertest.Seeder(h2, 2, "10.0.0.2")
	stop.Event = bittorrent.Stopped
	var r tracker.AnnounceResponse
	if err := a.Announce(context.Background(), stop, tracker.Update{Event: bittorrent.Stopped, PurgeEmpty: true}, &r); err != nil {
		t.Fatal(err)
	}
	want("stopped, swarm removed", 1, 1, 0)
	if _, err := b.Purge(context.Background(), time.Now().Add(2*time.Second), false); err != nil {
		t.Fatal(err)
	}
	want("expired, swarm kept", 1, 0, 0)

	reg := prometheus.NewRegistry()
	reg.MustRegister(a)
	srv.Pause()
	announceTo(t, a, trackertest.Leecher(h1, 3, "10.0.0.3"), 0) // fails: counted
	srv.Resume()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "/" + l.GetValue()
			}
			switch {
			case m.GetHistogram() != nil:
				got[key] = float64(m.GetHistogram().GetSampleCount())
			case m.GetCounter() != nil:
				got[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[key] = m.GetGauge().GetValue()
			}
		}
	}
	for key, min := range map[string]float64{
		"chihaya_redis_round_trip_seconds/announce": 3,
		"chihaya_redis_round_trip_seconds/batch":    3,
		"chihaya_redis_errors_total/announce":       1,
		"chihaya_redis_swarms":                      1,
		"chihaya_redis_peers/seeder":                0,
	} {
		if v, ok := got[key]; !ok || v < min {
			t.Errorf("metric %s = %v (present %v), want at least %v", key, v, ok, min)
		}
	}
}
