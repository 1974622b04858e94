package http

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya/backend"
	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/internal/metricstest"
	"github.com/chihaya/chihaya/stats"
	"github.com/chihaya/chihaya/tracker"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// adminFixture is a public server over a fresh memory store and its admin
// server, built as chihaya.Run builds them.
type adminFixture struct {
	srv   *Server
	admin *Admin
	tkr   *tracker.Tracker
	stats *stats.Stats
}

// newAdminFixture builds the servers with newTestServer (http_test.go).
func newAdminFixture(t *testing.T, mutate func(*config.Config)) *adminFixture {
	t.Helper()
	s := newTestServer(t, mutate)
	return &adminFixture{srv: s, admin: NewAdmin(s.tracker, s.stats), tkr: s.tracker, stats: s.stats}
}

// public serves one client request from remote and returns the body.
func (f *adminFixture) public(t *testing.T, remote, target string) string {
	t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("GET %s: status %d", target, rec.Code)
	}
	return rec.Body.String()
}

// adminGet serves one admin request.
func (f *adminFixture) adminGet(t *testing.T, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	f.admin.Handler().ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
	return rec
}

// flatStats returns /stats?flatten, decoded.
func (f *adminFixture) flatStats(t *testing.T) map[string]any {
	t.Helper()
	rec := f.adminGet(t, "/stats?flatten")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("/stats?flatten: status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	dec := json.NewDecoder(rec.Body)
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("/stats?flatten: %v", err)
	}
	return m
}

// metrics returns /metrics, parsed.
func (f *adminFixture) metrics(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	rec := f.adminGet(t, "/metrics")
	if rec.Code != 200 {
		t.Fatalf("/metrics: status %d: %s", rec.Code, rec.Body)
	}
	return metricstest.Parse(t, rec.Body)
}

// announceURL is an announce of peer n (its port is 10000+n) to torrent ih.
func announceURL(ih string, n int, left int, event string) string {
	v := url.Values{}
	v.Set("info_hash", ih)
	v.Set("peer_id", "-AT0001-"+strings.Repeat("0", 12-len(strconv.Itoa(n)))+strconv.Itoa(n))
	v.Set("port", strconv.Itoa(10000+n))
	v.Set("uploaded", "0")
	v.Set("downloaded", "0")
	v.Set("left", strconv.Itoa(left))
	if event != "" {
		v.Set("event", event)
	}
	return "/announce?" + v.Encode()
}

const (
	torrentA = "AAAAAAAAAAAAAAAAAAAA"
	torrentB = "BBBBBBBBBBBBBBBBBBBB"
	torrentC = "CCCCCCCCCCCCCCCCCCCC"
	v4       = "198.51.100.7:40000"
	v6       = "[2001:db8::7]:40000"
)

// expectation is one figure as /stats?flatten and /metrics show it.
type expectation struct {
	stat   string // flattened /stats key; "" when /stats has no such figure
	metric string // metric name; "" when /metrics has no such series
	labels string
	want   int64
}

func checkFigures(t *testing.T, f *adminFixture, when string, want []expectation) {
	t.Helper()
	flat := f.flatStats(t)
	mfs := f.metrics(t)
	for _, e := range want {
		if e.stat != "" {
			got, ok := flat[e.stat].(json.Number)
			if !ok {
				t.Errorf("%s: /stats has no number %q (%v)", when, e.stat, flat[e.stat])
			} else if n, _ := got.Int64(); n != e.want {
				t.Errorf("%s: /stats %s = %d, want %d", when, e.stat, n, e.want)
			}
		}
		if e.metric != "" {
			got, ok := metricstest.Value(mfs, e.metric, e.labels)
			if !ok {
				t.Errorf("%s: /metrics has no %s{%s}", when, e.metric, e.labels)
			} else if got != float64(e.want) {
				t.Errorf("%s: /metrics %s{%s} = %v, want %d", when, e.metric, e.labels, got, e.want)
			}
		}
	}
}

// TestScriptedSequence drives announces, stops, scrapes, bad requests and a
// reap through the real handlers, and checks every figure of /stats and
// /metrics against what happened.
func TestScriptedSequence(t *testing.T) {
	f := newAdminFixture(t, nil)
	steps := []struct {
		what   string
		remote string
		target string
		fails  bool // answered with a failure reason
	}{
		{"v4 leecher 1 starts: torrent A added", v4, announceURL(torrentA, 1, 100, "started"), false},
		{"v4 leecher 2 starts", v4, announceURL(torrentA, 2, 100, "started"), false},
		{"v4 seeder 3 starts", v4, announceURL(torrentA, 3, 0, "started"), false},
		{"v6 leecher 4 starts", v6, announceURL(torrentA, 4, 50, "started"), false},
		{"v6 seeder 5 starts", v6, announceURL(torrentA, 5, 0, "started"), false},
		{"v4 leecher 1 completes: now a seeder", v4, announceURL(torrentA, 1, 0, "completed"), false},
		{"v4 leecher 2 stops", v4, announceURL(torrentA, 2, 100, "stopped"), false},
		{"v6 seeder 5 stops", v6, announceURL(torrentA, 5, 0, "stopped"), false},
		{"v6 seeder 6 starts: torrent B added", v6, announceURL(torrentB, 6, 0, "started"), false},
		{"v6 seeder 6 stops: torrent B, empty, goes (purge_inactive_torrents)", v6, announceURL(torrentB, 6, 0, "stopped"), false},
		{"v4 leecher 7 starts: torrent C added", v4, announceURL(torrentC, 7, 10, "started"), false},
		{"v6 leecher 4 re-announces: nothing changes", v6, announceURL(torrentA, 4, 40, ""), false},
		{"v4 leecher 1 sends completed again: not counted twice", v4, announceURL(torrentA, 1, 0, "completed"), false},
		{"unknown peer stops: nothing changes", v4, announceURL(torrentA, 99, 0, "stopped"), false},
		{"announce without port: bad", v4, "/announce?info_hash=" + torrentA + "&peer_id=-AT0001-000000000008&uploaded=0&downloaded=0&left=1", true},
		{"unknown event: bad", v6, announceURL(torrentA, 9, 1, "exploded"), true},
		{"scrape A and C", v4, "/scrape?info_hash=" + torrentA + "&info_hash=" + torrentC, false},
		{"scrape without info_hash: bad", v6, "/scrape", true},
	}
	for _, s := range steps {
		body := f.public(t, s.remote, s.target)
		if got := strings.Contains(body, "failure reason"); got != s.fails {
			t.Fatalf("%s: answer %q", s.what, body)
		}
	}
	f.stats.Flush()

	// 15 answered announces and 1 scrape; 3 bad requests.
	requests := []expectation{
		{"Requests.Handled", "", "", 18},
		{"Requests.Errored", "", "", 0},
		{"Requests.Bad", "", "", 3},
		{"Tracker.Announces", "chihaya_requests_total", "transport=http,kind=announce,outcome=ok", 14},
		{"Tracker.Scrapes", "chihaya_requests_total", "transport=http,kind=scrape,outcome=ok", 1},
		{"", "chihaya_requests_total", "transport=http,kind=announce,outcome=client_error", 2},
		{"", "chihaya_requests_total", "transport=http,kind=scrape,outcome=client_error", 1},
		{"", "chihaya_requests_total", "transport=http,kind=announce,outcome=server_error", 0},
		{"", "chihaya_requests_total", "transport=http,kind=other,outcome=ok", 0},
		{"", "chihaya_request_duration_seconds", "transport=http,kind=announce", 16},
		{"", "chihaya_request_duration_seconds", "transport=http,kind=scrape", 2},
		{"", "chihaya_request_duration_seconds", "transport=http,kind=other", 0},
		{"Connections.Open", "chihaya_connections_open", "", 0},
		{"Connections.Accepted", "chihaya_connections_accepted_total", "", 0},
		// Every request came over HTTP: UDP's figures are there, at zero.
		{"Requests.HTTP.Handled", "", "", 18},
		{"Requests.HTTP.Bad", "", "", 3},
		{"Requests.HTTP.Announces", "", "", 14},
		{"Requests.UDP.Announces", "chihaya_requests_total", "transport=udp,kind=announce,outcome=ok", 0},
		{"Requests.UDP.Handled", "", "", 0},
		{"", "chihaya_request_duration_seconds", "transport=udp,kind=announce", 0},
		{"Requests.UDP.Connects", "chihaya_udp_connects_total", "", 0},
		{"Requests.UDP.BadConnectionIDs", "chihaya_udp_bad_connection_ids_total", "", 0},
		{"Requests.UDP.ErrorPackets", "chihaya_udp_errors_total", "", 0},
		{"Requests.UDP.Dropped", "chihaya_udp_dropped_total", "", 0},
	}
	before := append(requests, []expectation{
		// Torrents: A, B and C added; B removed by the stopped of its last
		// peer, since purge_inactive_torrents is on.
		{"Torrents.Added", "chihaya_torrent_events_total", "event=added", 3},
		{"Torrents.Removed", "chihaya_torrent_events_total", "event=removed", 1},
		{"Torrents.Reaped", "chihaya_torrent_events_total", "event=reaped", 0},
		{"Torrents.Size", "chihaya_torrents", "", 2},
		// IPv4: leechers 1, 2, 7 joined, 2 left, 1 became a seeder; seeder 3.
		{"Peers.IPv4.Peers.Current", "chihaya_peers", "family=ipv4,role=leecher", 1},
		{"Peers.IPv4.Peers.Joined", "chihaya_peer_events_total", "family=ipv4,role=leecher,event=joined", 3},
		{"Peers.IPv4.Peers.Left", "chihaya_peer_events_total", "family=ipv4,role=leecher,event=left", 1},
		{"Peers.IPv4.Peers.Reaped", "chihaya_peer_events_total", "family=ipv4,role=leecher,event=reaped", 0},
		{"Peers.IPv4.Seeds.Current", "chihaya_peers", "family=ipv4,role=seeder", 2},
		{"Peers.IPv4.Seeds.Joined", "chihaya_peer_events_total", "family=ipv4,role=seeder,event=joined", 1},
		{"Peers.IPv4.Seeds.Left", "chihaya_peer_events_total", "family=ipv4,role=seeder,event=left", 0},
		{"Peers.IPv4.Seeds.Reaped", "chihaya_peer_events_total", "family=ipv4,role=seeder,event=reaped", 0},
		{"Peers.IPv4.Completed", "chihaya_completed_total", "family=ipv4", 1},
		// IPv6: leecher 4; seeders 5 and 6 joined and left.
		{"Peers.IPv6.Peers.Current", "chihaya_peers", "family=ipv6,role=leecher", 1},
		{"Peers.IPv6.Peers.Joined", "chihaya_peer_events_total", "family=ipv6,role=leecher,event=joined", 1},
		{"Peers.IPv6.Peers.Left", "chihaya_peer_events_total", "family=ipv6,role=leecher,event=left", 0},
		{"Peers.IPv6.Peers.Reaped", "chihaya_peer_events_total", "family=ipv6,role=leecher,event=reaped", 0},
		{"Peers.IPv6.Seeds.Current", "chihaya_peers", "family=ipv6,role=seeder", 0},
		{"Peers.IPv6.Seeds.Joined", "chihaya_peer_events_total", "family=ipv6,role=seeder,event=joined", 2},
		{"Peers.IPv6.Seeds.Left", "chihaya_peer_events_total", "family=ipv6,role=seeder,event=left", 2},
		{"Peers.IPv6.Seeds.Reaped", "chihaya_peer_events_total", "family=ipv6,role=seeder,event=reaped", 0},
		{"Peers.IPv6.Completed", "chihaya_completed_total", "family=ipv6", 0},
	}...)
	checkFigures(t, f, "before the reap", before)

	// Everybody left expires: seeders 1 and 3 and leecher 7 (IPv4),
	// leecher 4 (IPv6), and with them torrents A and C.
	later := time.Now().Add(f.tkr.Config().Lifetime() + time.Minute)
	p, err := f.tkr.Reap(context.Background(), later)
	if err != nil {
		t.Fatal(err)
	}
	if p.Swarms != 2 || p.Peers != [2]int{3, 1} {
		t.Fatalf("reaped %+v, want 2 swarms, 3 IPv4 and 1 IPv6 peers", p)
	}
	f.stats.Flush()
	after := append(requests, []expectation{
		{"Torrents.Added", "chihaya_torrent_events_total", "event=added", 3},
		{"Torrents.Removed", "chihaya_torrent_events_total", "event=removed", 1},
		{"Torrents.Reaped", "chihaya_torrent_events_total", "event=reaped", 2},
		{"Torrents.Size", "chihaya_torrents", "", 0},
		{"Peers.IPv4.Peers.Current", "chihaya_peers", "family=ipv4,role=leecher", 0},
		{"Peers.IPv4.Peers.Joined", "chihaya_peer_events_total", "family=ipv4,role=leecher,event=joined", 3},
		{"Peers.IPv4.Peers.Left", "chihaya_peer_events_total", "family=ipv4,role=leecher,event=left", 1},
		{"Peers.IPv4.Peers.Reaped", "chihaya_peer_events_total", "family=ipv4,role=leecher,event=reaped", 1},
		{"Peers.IPv4.Seeds.Current", "chihaya_peers", "family=ipv4,role=seeder", 0},
		{"Peers.IPv4.Seeds.Joined", "chihaya_peer_events_total", "family=ipv4,role=seeder,event=joined", 1},
		{"Peers.IPv4.Seeds.Left", "chihaya_peer_events_total", "family=ipv4,role=seeder,event=left", 0},
		{"Peers.IPv4.Seeds.Reaped", "chihaya_peer_events_total", "family=ipv4,role=seeder,event=reaped", 2},
		{"Peers.IPv4.Completed", "chihaya_completed_total", "family=ipv4", 1},
		{"Peers.IPv6.Peers.Current", "chihaya_peers", "family=ipv6,role=leecher", 0},
		{"Peers.IPv6.Peers.Joined", "chihaya_peer_events_total", "family=ipv6,role=leecher,event=joined", 1},
		{"Peers.IPv6.Peers.Left", "chihaya_peer_events_total", "family=ipv6,role=leecher,event=left", 0},
		{"Peers.IPv6.Peers.Reaped", "chihaya_peer_events_total", "family=ipv6,role=leecher,event=reaped", 1},
		{"Peers.IPv6.Seeds.Current", "chihaya_peers", "family=ipv6,role=seeder", 0},
		{"Peers.IPv6.Seeds.Joined", "chihaya_peer_events_total", "family=ipv6,role=seeder,event=joined", 2},
		{"Peers.IPv6.Seeds.Left", "chihaya_peer_events_total", "family=ipv6,role=seeder,event=left", 2},
		{"Peers.IPv6.Seeds.Reaped", "chihaya_peer_events_total", "family=ipv6,role=seeder,event=reaped", 0},
		{"Peers.IPv6.Completed", "chihaya_completed_total", "family=ipv6", 0},
	}...)
	checkFigures(t, f, "after the reap", after)

	// The rest of /stats: response times, memory, runtime, uptime.
	flat := f.flatStats(t)
	for _, key := range []string{"ResponseTime.P50", "ResponseTime.P90", "ResponseTime.P95", "ResponseTime.P99",
		"Memory.Alloc", "Memory.HeapAlloc", "Memory.Sys", "Runtime.GoRoutines"} {
		n, ok := flat[key].(json.Number)
		if v, err := n.Float64(); !ok || err != nil || v <= 0 {
			t.Errorf("/stats %s = %v, want a positive number", key, flat[key])
		}
	}
	p50, _ := flat["ResponseTime.P50"].(json.Number).Float64()
	p99, _ := flat["ResponseTime.P99"].(json.Number).Float64()
	if p50 > p99 || p99 > 10000 {
		t.Errorf("response time P50 %vms, P99 %vms", p50, p99)
	}
	if up, ok := flat["Uptime"].(json.Number); !ok || up.String() == "" || strings.HasPrefix(up.String(), "-") {
		t.Errorf("/stats Uptime = %v", flat["Uptime"])
	}
	if _, err := time.Parse(time.RFC3339, flat["Started"].(string)); err != nil {
		t.Errorf("/stats Started: %v", err)
	}
	// The histogram's sum and its +Inf bucket agree with the count.
	mfs := f.metrics(t)
	for _, m := range mfs["chihaya_request_duration_seconds"].Metric {
		h := m.Histogram
		if last := h.Bucket[len(h.Bucket)-1]; last.GetCumulativeCount() > h.GetSampleCount() {
			t.Errorf("histogram %v: bucket above the count", m.Label)
		}
		if h.GetSampleCount() > 0 && (h.GetSampleSum() <= 0 || h.GetSampleSum() > 60) {
			t.Errorf("histogram %v: sum %v", m.Label, h.GetSampleSum())
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes"} {
		if _, ok := mfs[name]; !ok {
			t.Errorf("/metrics has no %s", name)
		}
	}
	for _, name := range []string{"chihaya_backend_queue_depth", "chihaya_backend_flush_errors_total"} {
		if _, ok := mfs[name]; ok {
			t.Errorf("/metrics has %s, but the noop backend has no queue", name)
		}
	}
}

// TestConnectionCounts serves real connections and checks the connection
// figures once they are closed.
func TestConnectionCounts(t *testing.T) {
	f := newAdminFixture(t, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.srv.Serve(l) }()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	const n = 5
	for i := range n {
		resp, err := client.Get("http://" + l.Addr().String() + announceURL(torrentA, i, 1, "started"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// The server sees each close a moment after the client.
	deadline := time.Now().Add(5 * time.Second)
	for {
		snap := f.stats.Snapshot()
		if snap.ConnectionsAccepted == n && snap.ConnectionsOpen == 0 && snap.Announces == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("accepted %d, open %d, announces %d; want %d, 0, %d", snap.ConnectionsAccepted, snap.ConnectionsOpen, snap.Announces, n, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkFigures(t, f, "after the connections", []expectation{
		{"Connections.Accepted", "chihaya_connections_accepted_total", "", n},
		{"Connections.Open", "chihaya_connections_open", "", 0},
	})
	if err := f.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestStatsFormats(t *testing.T) {
	f := newAdminFixture(t, nil)
	f.public(t, v4, announceURL(torrentA, 1, 0, "started"))
	f.stats.Flush()
	for _, tc := range []struct {
		target       string
		flat, pretty bool
	}{
		{"/stats", false, false},
		{"/stats?pretty", false, true},
		{"/stats?pretty=1", false, true},
		{"/stats?flatten", true, false},
		{"/stats?flatten=true&pretty", true, true},
		{"/stats?flatten=0&pretty=false", false, false},
	} {
		t.Run(tc.target, func(t *testing.T) {
			rec := f.adminGet(t, tc.target)
			if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
			}
			body := rec.Body.String()
			if got := strings.Contains(body, "\n  \""); got != tc.pretty {
				t.Errorf("indented: %v, want %v:\n%s", got, tc.pretty, body)
			}
			var m map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			if tc.flat {
				for k, v := range m {
					if _, nested := v.(map[string]any); nested {
						t.Errorf("flattened key %q holds an object", k)
					}
				}
				for _, k := range []string{"Peers.IPv4.Seeds.Current", "Peers.IPv6.Peers.Joined", "ResponseTime.P50",
					"ResponseTime.P99", "Memory.HeapAlloc", "Memory.PauseTotalNs", "Runtime.GoRoutines", "Connections.Open", "Uptime"} {
					if _, ok := m[k]; !ok {
						t.Errorf("no key %q", k)
					}
				}
				if got := m["Peers.IPv4.Seeds.Current"]; got != 1.0 {
					t.Errorf("Peers.IPv4.Seeds.Current = %v, want 1", got)
				}
				// Started, Uptime, 2 Connections, 3 Requests, 4 ResponseTime,
				// 2 Tracker, 4 Torrents, 9 per family, 5 HTTP, 9 UDP,
				// 13 Memory, 1 Runtime.
				if len(m) != 63 {
					t.Errorf("%d flattened keys, want 63", len(m))
				}
				return
			}
			// Nested: the 2014 shape.
			want := []string{"Started", "Uptime", "Connections.Open", "Connections.Accepted", "Requests.Handled",
				"Requests.Errored", "Requests.Bad", "ResponseTime", "Tracker.Announces", "Tracker.Scrapes",
				"Torrents.Size", "Torrents.Added", "Torrents.Removed", "Torrents.Reaped", "Peers.IPv4", "Peers.IPv6",
				"Requests.HTTP", "Requests.UDP", "Memory", "Runtime.GoRoutines"}
			if len(m) != len(want) {
				t.Errorf("%d top-level keys, want %d: %v", len(m), len(want), m)
			}
			last := -1
			for _, k := range want {
				i := strings.Index(body, `"`+k+`":`)
				if i < 0 {
					t.Errorf("no key %q", k)
				} else if i < last {
					t.Errorf("key %q out of order", k)
				}
				last = i
			}
			seeds := m["Peers.IPv4"].(map[string]any)["Seeds"].(map[string]any)
			if seeds["Current"] != 1.0 || seeds["Joined"] != 1.0 {
				t.Errorf("Peers.IPv4.Seeds = %v", seeds)
			}
			if len(m["Memory"].(map[string]any)) != 13 {
				t.Errorf("Memory = %v, want the 13 basic fields", m["Memory"])
			}
			rt := m["ResponseTime"].(map[string]any)
			for _, p := range []string{"P50", "P90", "P95", "P99"} {
				if v, ok := rt[p].(float64); !ok || v <= 0 {
					t.Errorf("ResponseTime.%s = %v", p, rt[p])
				}
			}
		})
	}
}

func TestFlattenJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   any
		want string
	}{
		{"Flat", map[string]any{"a": 1, "b": "x"}, `{"a":1,"b":"x"}`},
		{"Nested", map[string]any{"a": map[string]any{"b": map[string]any{"c": 1}, "d": true}}, `{"a.b.c":1,"a.d":true}`},
		{"DottedKeys", map[string]any{"Peers.IPv4": map[string]any{"Seeds": map[string]any{"Current": 2}}}, `{"Peers.IPv4.Seeds.Current":2}`},
		{"EmptyObjectKept", map[string]any{"a": map[string]any{}, "b": 1}, `{"a":{},"b":1}`},
		{"ExactNumbers", map[string]any{"big": uint64(math.MaxUint64), "f": 0.125}, `{"big":18446744073709551615,"f":0.125}`},
		{"ArraysAreLeaves", map[string]any{"a": []int{1, 2}}, `{"a":[1,2]}`},
		{"Empty", map[string]any{}, `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flat, err := flattenJSON(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(flat)
			if string(got) != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	f := newAdminFixture(t, nil)
	for _, method := range []string{"GET", "HEAD"} {
		rec := httptest.NewRecorder()
		f.admin.Handler().ServeHTTP(rec, httptest.NewRequest(method, "/check", nil))
		if rec.Code != 200 {
			t.Fatalf("%s /check: status %d", method, rec.Code)
		}
		if method == "GET" && rec.Body.String() != "STILL-ALIVE" {
			t.Fatalf("/check: %q", rec.Body)
		}
	}
	// Once the daemon starts shutting down, /check fails so that a load
	// balancer looks elsewhere.
	f.admin.Drain()
	if rec := f.adminGet(t, "/check"); rec.Code != http.StatusServiceUnavailable || rec.Body.String() != "SHUTTING-DOWN" {
		t.Fatalf("/check while draining: %d %q", rec.Code, rec.Body)
	}
}

func TestPprof(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run("debug_pprof="+strconv.FormatBool(on), func(t *testing.T) {
			f := newAdminFixture(t, func(c *config.Config) { c.DebugPprof = on })
			want := http.StatusNotFound
			if on {
				want = http.StatusOK
			}
			for _, target := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/heap?debug=1",
				"/debug/pprof/goroutine?debug=1", "/debug/pprof/symbol"} {
				if rec := f.adminGet(t, target); rec.Code != want {
					t.Errorf("GET %s: status %d, want %d", target, rec.Code, want)
				}
			}
			// Never on the public listener.
			rec := httptest.NewRecorder()
			f.srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/", nil))
			if rec.Code != http.StatusNotFound {
				t.Errorf("public /debug/pprof/: status %d", rec.Code)
			}
			for _, target := range []string{"/check", "/stats", "/metrics"} {
				if rec := f.adminGet(t, target); rec.Code != 200 {
					t.Errorf("GET %s: status %d", target, rec.Code)
				}
			}
			if !on {
				if f.admin.srv.WriteTimeout != f.tkr.Config().WriteTimeout.Duration {
					t.Errorf("write timeout %v without pprof", f.admin.srv.WriteTimeout)
				}
				return
			}
			// A CPU profile, through a real server with the admin's
			// timeouts: pprof refuses one that outlasts the write timeout.
			ts := httptest.NewUnstartedServer(nil)
			ts.Config = f.admin.srv
			ts.Start()
			defer ts.Close()
			resp, err := ts.Client().Get(ts.URL + "/debug/pprof/profile?seconds=1")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || len(body) == 0 {
				t.Errorf("CPU profile: status %d: %.200s", resp.StatusCode, body)
			}
		})
	}
}

// queueBackend is a backend with a queue to report.
type queueBackend struct{}

func (queueBackend) RecordAnnounce(backend.Announce) error { return nil }
func (queueBackend) Close() error                          { return nil }
func (queueBackend) QueueDepth() int                       { return 7 }
func (queueBackend) FlushErrors() uint64                   { return 3 }

func TestMetricsBackendQueue(t *testing.T) {
	st := stats.New()
	defer st.Close()
	st.RecordRequest(stats.Announce, stats.OK, time.Millisecond)
	for _, tc := range []struct {
		name    string
		backend backend.Conn
		present bool
	}{
		{"Queueing", queueBackend{}, true},
		{"NoQueue", struct{ backend.Conn }{}, false},
		{"None", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			newMetricsHandler(st, tc.backend).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			mfs := metricstest.Parse(t, rec.Body)
			if v, ok := metricstest.Value(mfs, "chihaya_requests_total", "transport=http,kind=announce,outcome=ok"); v != 1 || !ok {
				t.Errorf("chihaya_requests_total{announce,ok} = %v, %v", v, ok)
			}
			for _, c := range []struct {
				name string
				typ  dto.MetricType
				want float64
			}{
				{"chihaya_backend_queue_depth", dto.MetricType_GAUGE, 7},
				{"chihaya_backend_flush_errors_total", dto.MetricType_COUNTER, 3},
			} {
				v, ok := metricstest.Value(mfs, c.name, "")
				if ok != tc.present {
					t.Errorf("%s present: %v, want %v", c.name, ok, tc.present)
					continue
				}
				if ok && (v != c.want || mfs[c.name].GetType() != c.typ) {
					t.Errorf("%s = %v (%v), want %v (%v)", c.name, v, mfs[c.name].GetType(), c.want, c.typ)
				}
			}
		})
	}
}

// TestMetricsHelp checks that every chihaya series has help text and the
// type its name promises.
func TestMetricsHelp(t *testing.T) {
	rec := httptest.NewRecorder()
	st := stats.New()
	defer st.Close()
	newMetricsHandler(st, queueBackend{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	mfs := metricstest.Parse(t, rec.Body)
	n := 0
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "chihaya_") {
			continue
		}
		n++
		if mf.GetHelp() == "" {
			t.Errorf("%s has no help", name)
		}
		if strings.HasSuffix(name, "_total") != (mf.GetType() == dto.MetricType_COUNTER) {
			t.Errorf("%s is a %v", name, mf.GetType())
		}
	}
	if n != 15 {
		t.Errorf("%d chihaya metric families, want 15", n)
	}
}

// TestGrafanaDashboard checks that the shipped dashboard is JSON and asks
// only for series that /metrics has.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("../dist/grafana/chihaya.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dist/grafana/chihaya.json: %v", err)
	}
	rec := httptest.NewRecorder()
	st := stats.New()
	defer st.Close()
	newMetricsHandler(st, queueBackend{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	exposed := rec.Body.String()
	name := regexp.MustCompile(`\b(chihaya|go|process)_[a-z_]+`)
	n := 0
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			for _, m := range name.FindAllString(q.Expr, -1) {
				n++
				if !strings.Contains(exposed, "\n"+m+"{") && !strings.Contains(exposed, "\n"+m+" ") {
					t.Errorf("panel %q: /metrics has no %s", p.Title, m)
				}
			}
		}
	}
	if n == 0 {
		t.Error("the dashboard queries no metric")
	}
}

// checkingPool is a memory store that says whether its server answers,
// and has metrics of its own, as a store on a server (Redis) has.
type checkingPool struct {
	tracker.Pool
	down error
}

func (p *checkingPool) Check(context.Context) error { return p.down }

var storeUp = prometheus.NewDesc("chihaya_test_store_up", "The test store answers.", nil, nil)

func (p *checkingPool) Describe(ch chan<- *prometheus.Desc) { ch <- storeUp }
func (p *checkingPool) Collect(ch chan<- prometheus.Metric) {
	up := 1.0
	if p.down != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(storeUp, prometheus.GaugeValue, up)
}

// /check fails while the store does not answer, and /metrics carries the
// store's own figures.
func TestCheckAndMetricsOfTheStore(t *testing.T) {
	mem, err := tracker.Open("memory", tracker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pool := &checkingPool{Pool: mem}
	be, _ := backend.Open("noop", nil)
	st := stats.New()
	tkr := tracker.New(config.Default(), pool, be, st)
	t.Cleanup(func() { tkr.Close(); st.Close() })
	admin := NewAdmin(tkr, st)
	get := func(target string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		admin.Handler().ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		return rec
	}
	for _, tc := range []struct {
		down       error
		code       int
		body, gate string
	}{
		{nil, 200, "STILL-ALIVE", "chihaya_test_store_up 1"},
		{errors.New("dial tcp 127.0.0.1:6379: connection refused"), 503, "STORE-DOWN: dial tcp 127.0.0.1:6379: connection refused", "chihaya_test_store_up 0"},
	} {
		pool.down = tc.down
		if rec := get("/check"); rec.Code != tc.code || rec.Body.String() != tc.body {
			t.Errorf("store down %v: /check %d %q, want %d %q", tc.down, rec.Code, rec.Body, tc.code, tc.body)
		}
		if rec := get("/metrics"); !strings.Contains(rec.Body.String(), tc.gate+"\n") {
			t.Errorf("store down %v: /metrics has no %q", tc.down, tc.gate)
		}
	}
}
