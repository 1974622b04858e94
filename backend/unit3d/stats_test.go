package unit3d_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/internal/mariadbtest"
	"github.com/chihaya/chihaya/internal/metricstest"
)

// The addresses peers announce from, through X-Real-IP (never dialled:
// the connectivity check is off).
var (
	addr4 = map[string]string{"u2": "10.0.0.2", "u3": "10.0.0.3", "u9": "10.0.0.9"}
	addr6 = map[string]string{"u2": "2001:db8::2", "u3": "2001:db8::3", "u8": "2001:db8::8", "u9": "2001:db8::9", "u3b": "2001:db8::33"}
)

// realIP trusts X-Real-IP from the loopback test client, so that one
// client announces as any IPv4 or IPv6 peer.
func realIP(dualStacked bool) func(*config.Config) {
	return func(cfg *config.Config) {
		cfg.RealIPHeader = config.XRealIP
		cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		cfg.DualStackedPeers = dualStacked
	}
}

// peerPort is the port of user's peer n.
func peerPort(user, n int) int { return 10000 + 10*user + n }

// from announces user's peer n on torrent tor from ip.
func (b *bed) from(ip string, user, n, tor int, left uint64, event string) string {
	b.t.Helper()
	extra := ""
	if event != "" {
		extra = "event=" + event
	}
	return b.announceH(pk(user), query(ih(tor), pid(user, n), peerPort(user, n), 0, 0, left, extra), map[string]string{"X-Real-IP": ip})
}

// endpoints lists a compact peer string's "ip:port", sorted.
func endpoints(peers string, size int) []string {
	var out []string
	for i := 0; i+size <= len(peers); i += size {
		a, _ := netip.AddrFromSlice([]byte(peers[i : i+size-2]))
		out = append(out, netip.AddrPortFrom(a, uint16(peers[i+size-2])<<8|uint16(peers[i+size-1])).String())
	}
	slices.Sort(out)
	return out
}

func ep(ip string, user, n int) string {
	return netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(peerPort(user, n))).String()
}

// TestStatsAndDualStackedPeers runs a scripted sequence of UNIT3D
// announces, dual-stacked peers among them, and a reap: /stats and
// /metrics count the swarms' peers, seeders, completions and torrents as
// the tracker's own store does, a dual-stacked peer once; an IPv4
// announcer gets a dual-stacked peer's IPv4 address, an IPv6 one its IPv6
// address; the database holds one row per peer, with its last address.
func TestStatsAndDualStackedPeers(t *testing.T) {
	b := newBedConfig(t, mariadbtest.Shared(t), "", "", realIP(true))
	steps := []struct {
		what             string
		ip               string
		user, n, tor     int
		left             uint64
		event            string
		peers, peers6    []string // nil: not checked
		complete, incomp int
	}{
		{"u2 leecher starts over IPv4: torrent 1 added", addr4["u2"], 2, 1, 1, 100, "started", nil, nil, 0, 1},
		{"u3 seeder starts over IPv4", addr4["u3"], 3, 1, 1, 0, "started",
			[]string{ep(addr4["u2"], 2, 1)}, []string{}, 1, 1},
		{"u8 leecher starts over IPv6", addr6["u8"], 8, 1, 1, 100, "started",
			[]string{ep(addr4["u2"], 2, 1), ep(addr4["u3"], 3, 1)}, []string{}, 1, 2},
		{"u2 announces over IPv6 too: one peer, not limited, counted once", addr6["u2"], 2, 1, 1, 100, "started",
			[]string{ep(addr4["u3"], 3, 1)}, []string{ep(addr6["u8"], 8, 1)}, 1, 2},
		{"u3 announces over IPv6 too: IPv6 addresses for an IPv6 announcer", addr6["u3"], 3, 1, 1, 0, "started",
			[]string{}, []string{ep(addr6["u2"], 2, 1), ep(addr6["u8"], 8, 1)}, 1, 2},
		{"u9 leecher over IPv4: IPv4 addresses where peers have them", addr4["u9"], 9, 1, 1, 100, "started",
			[]string{ep(addr4["u2"], 2, 1), ep(addr4["u3"], 3, 1)}, []string{ep(addr6["u8"], 8, 1)}, 1, 3},
		{"u9's second peer over IPv6: IPv6 addresses, its own peer left out", addr6["u9"], 9, 2, 1, 100, "started",
			[]string{}, []string{ep(addr6["u2"], 2, 1), ep(addr6["u3"], 3, 1), ep(addr6["u8"], 8, 1)}, 1, 4},
		{"u2 completes over IPv4: a seeder, a completion", addr4["u2"], 2, 1, 1, 0, "completed", nil, nil, 2, 3},
		{"u8 stops", addr6["u8"], 8, 1, 1, 100, "stopped", nil, nil, 2, 2},
		{"u3's second peer seeds torrent 6 over IPv6: torrent 6 added", addr6["u3b"], 3, 2, 6, 0, "started", nil, nil, 1, 0},
		{"and stops: torrent 6 removed", addr6["u3b"], 3, 2, 6, 0, "stopped", nil, nil, 0, 0},
	}
	for _, s := range steps {
		r := parse(t, b.from(s.ip, s.user, s.n, s.tor, s.left, s.event))
		if r.hasWarning || r.complete != s.complete || r.incomplete != s.incomp {
			t.Errorf("%s: complete %d, incomplete %d, warning %q; want %d, %d, none", s.what, r.complete, r.incomplete, r.warning, s.complete, s.incomp)
		}
		if got := endpoints(r.peers, 6); s.peers != nil && !slices.Equal(got, s.peers) && len(got)+len(s.peers) > 0 {
			t.Errorf("%s: peers %v, want %v", s.what, got, s.peers)
		}
		if got := endpoints(r.peers6, 18); s.peers6 != nil && !slices.Equal(got, s.peers6) && len(got)+len(s.peers6) > 0 {
			t.Errorf("%s: peers6 %v, want %v", s.what, got, s.peers6)
		}
	}
	if body := b.from(addr4["u9"], 9, 3, 1, 0, "stopped"); !strings.Contains(body, "Stopped peer doesn't exist.") {
		t.Errorf("unknown peer's stopped: %q", body)
	}
	if body := b.announceH(pk(2), fmt.Sprintf("info_hash=%s&peer_id=%s&uploaded=0&downloaded=0&left=0", escape(ih(1)), escape(pid(2, 1))),
		map[string]string{"X-Real-IP": addr4["u2"]}); !strings.Contains(body, "failure reason") {
		t.Errorf("announce without port: %q", body)
	}

	// The site's figures count the dual-stacked peers once.
	if _, body := b.api("GET", "torrents/1", ""); !strings.Contains(body, `"seeders":2,`) || !strings.Contains(body, `"leechers":2,`) {
		t.Errorf("torrent 1: %s", body)
	}
	b.flush()
	for _, c := range []struct {
		user int
		ip   string
	}{{2, addr4["u2"]}, {3, addr6["u3"]}, {8, addr6["u8"]}} {
		var n int64
		var ip string
		if err := b.db.QueryRow("SELECT COUNT(*), MAX(INET6_NTOA(ip)) FROM peers WHERE user_id = ? AND torrent_id = 1", c.user).Scan(&n, &ip); err != nil {
			t.Fatal(err)
		}
		if n != 1 || ip != c.ip {
			t.Errorf("user %d's peers rows: %d, ip %s; want 1, %s (its last announce's)", c.user, n, ip, c.ip)
		}
	}

	requests := []figure{
		{"Tracker.Announces", "chihaya_requests_total", "transport=http,kind=announce,outcome=ok", 12},
		{"Requests.Bad", "chihaya_requests_total", "transport=http,kind=announce,outcome=client_error", 1},
		{"Requests.Handled", "chihaya_request_duration_seconds", "transport=http,kind=announce", 13},
	}
	b.checkFigures("before the reap", append(requests,
		figure{"Torrents.Added", "chihaya_torrent_events_total", "event=added", 2},
		figure{"Torrents.Removed", "chihaya_torrent_events_total", "event=removed", 1},
		figure{"Torrents.Size", "chihaya_torrents", "", 1},
		// IPv4: leechers u2 and u9 joined, u2 became a seeder; seeder u3.
		figure{"Peers.IPv4.Peers.Current", "chihaya_peers", "family=ipv4,role=leecher", 1},
		figure{"Peers.IPv4.Peers.Joined", "chihaya_peer_events_total", "family=ipv4,role=leecher,event=joined", 2},
		figure{"Peers.IPv4.Seeds.Current", "chihaya_peers", "family=ipv4,role=seeder", 2},
		figure{"Peers.IPv4.Seeds.Joined", "chihaya_peer_events_total", "family=ipv4,role=seeder,event=joined", 1},
		figure{"Peers.IPv4.Completed", "chihaya_completed_total", "family=ipv4", 1},
		// IPv6: leechers u8 (stopped) and u9's second; u3's second seeder
		// joined and left. u2 and u3 announced over IPv6 too: not counted
		// again.
		figure{"Peers.IPv6.Peers.Current", "chihaya_peers", "family=ipv6,role=leecher", 1},
		figure{"Peers.IPv6.Peers.Joined", "chihaya_peer_events_total", "family=ipv6,role=leecher,event=joined", 2},
		figure{"Peers.IPv6.Peers.Left", "chihaya_peer_events_total", "family=ipv6,role=leecher,event=left", 1},
		figure{"Peers.IPv6.Seeds.Current", "chihaya_peers", "family=ipv6,role=seeder", 0},
		figure{"Peers.IPv6.Seeds.Joined", "chihaya_peer_events_total", "family=ipv6,role=seeder,event=joined", 1},
		figure{"Peers.IPv6.Seeds.Left", "chihaya_peer_events_total", "family=ipv6,role=seeder,event=left", 1},
		figure{"Peers.IPv6.Completed", "chihaya_completed_total", "family=ipv6", 0},
	))

	// active_peer_ttl later, the reaper takes every peer out of the
	// lists, and torrent 1 with them.
	b.c.Reap(time.Now().Add(2*time.Hour + time.Minute))
	b.checkFigures("after the reap", append(requests,
		figure{"Torrents.Reaped", "chihaya_torrent_events_total", "event=reaped", 1},
		figure{"Torrents.Size", "chihaya_torrents", "", 0},
		figure{"Peers.IPv4.Peers.Current", "chihaya_peers", "family=ipv4,role=leecher", 0},
		figure{"Peers.IPv4.Peers.Reaped", "chihaya_peer_events_total", "family=ipv4,role=leecher,event=reaped", 1},
		figure{"Peers.IPv4.Seeds.Current", "chihaya_peers", "family=ipv4,role=seeder", 0},
		figure{"Peers.IPv4.Seeds.Reaped", "chihaya_peer_events_total", "family=ipv4,role=seeder,event=reaped", 2},
		figure{"Peers.IPv6.Peers.Current", "chihaya_peers", "family=ipv6,role=leecher", 0},
		figure{"Peers.IPv6.Peers.Reaped", "chihaya_peer_events_total", "family=ipv6,role=leecher,event=reaped", 1},
		figure{"Peers.IPv6.Seeds.Reaped", "chihaya_peer_events_total", "family=ipv6,role=seeder,event=reaped", 0},
	))

	// A restart finds the swarms in the database, and counts them: the
	// peers rows active and visible (u2, u3 and u9's two).
	b.exec("UPDATE peers SET updated_at = UTC_TIMESTAMP()")
	if err := b.close(); err != nil {
		t.Fatal(err)
	}
	b.open("")
	b.checkFigures("after a restart", []figure{
		{"Torrents.Size", "chihaya_torrents", "", 1},
		{"Peers.IPv4.Peers.Current", "chihaya_peers", "family=ipv4,role=leecher", 1},
		{"Peers.IPv4.Seeds.Current", "chihaya_peers", "family=ipv4,role=seeder", 1},
		{"Peers.IPv6.Peers.Current", "chihaya_peers", "family=ipv6,role=leecher", 1},
		{"Peers.IPv6.Seeds.Current", "chihaya_peers", "family=ipv6,role=seeder", 1},
	})
}

// Without dual_stacked_peers, a peer_id's announce over the other family
// replaces its address, as in UNIT3D-Announce: the peer is listed by its
// last address only, and counted once, in its first address's family.
func TestNotDualStacked(t *testing.T) {
	b := newBedConfig(t, mariadbtest.Shared(t), "", "", realIP(false))
	b.from(addr4["u2"], 2, 1, 1, 100, "started")
	if r := parse(t, b.from(addr6["u2"], 2, 1, 1, 100, "started")); r.complete != 0 || r.incomplete != 0 {
		t.Errorf("u2 over IPv6 at once: rate-limited as in UNIT3D-Announce, got complete %d, incomplete %d", r.complete, r.incomplete)
	}
	r := parse(t, b.from(addr4["u3"], 3, 1, 1, 0, "started"))
	if got, got6 := endpoints(r.peers, 6), endpoints(r.peers6, 18); len(got) != 0 || !slices.Equal(got6, []string{ep(addr6["u2"], 2, 1)}) {
		t.Errorf("seeder's list: peers %v, peers6 %v; want u2's IPv6 address only", got, got6)
	}
	b.checkFigures("", []figure{
		{"Peers.IPv4.Peers.Current", "chihaya_peers", "family=ipv4,role=leecher", 1},
		{"Peers.IPv4.Seeds.Current", "chihaya_peers", "family=ipv4,role=seeder", 1},
		{"Peers.IPv6.Peers.Current", "chihaya_peers", "family=ipv6,role=leecher", 0},
	})
}

// figure is one figure as /stats?flatten and /metrics show it.
type figure struct {
	stat   string // flattened /stats key
	metric string // metric name
	labels string // "k=v,k=v"
	want   int64
}

func (b *bed) checkFigures(when string, want []figure) {
	t := b.t
	t.Helper()
	b.st.Flush()
	status, _, body := b.get(b.adm.URL+"/stats?flatten", nil)
	if status != 200 {
		t.Fatalf("/stats: status %d", status)
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	var flat map[string]any
	if err := dec.Decode(&flat); err != nil {
		t.Fatalf("/stats: %v", err)
	}
	status, _, body = b.get(b.adm.URL+"/metrics", nil)
	if status != 200 {
		t.Fatalf("/metrics: status %d", status)
	}
	mfs := metricstest.Parse(t, strings.NewReader(body))
	for _, f := range want {
		if n, ok := flat[f.stat].(json.Number); !ok {
			t.Errorf("%s: /stats has no %s", when, f.stat)
		} else if v, _ := n.Int64(); v != f.want {
			t.Errorf("%s: /stats %s = %d, want %d", when, f.stat, v, f.want)
		}
		if v, ok := metricstest.Value(mfs, f.metric, f.labels); !ok {
			t.Errorf("%s: /metrics has no %s{%s}", when, f.metric, f.labels)
		} else if v != float64(f.want) {
			t.Errorf("%s: /metrics %s{%s} = %v, want %d", when, f.metric, f.labels, v, f.want)
		}
	}
}
